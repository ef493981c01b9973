package report_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

// RunText ends a run: one verdict per report, or the fleet table for a
// drill over several services.
func TestRunText(t *testing.T) {
	one := passReport()
	var b bytes.Buffer
	if err := report.RunText(&b, "test", []*rollback.Report{one}, false); err != nil {
		t.Fatal(err)
	}
	if want := report.Verdict(one, false) + "\n"; b.String() != want {
		t.Errorf("one report: %q, want its verdict %q", b.String(), want)
	}

	fleet := []*rollback.Report{passReport(), failReport()}
	b.Reset()
	if err := report.RunText(&b, "test", fleet, false); err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := report.FleetTable(&table, "test", rollback.ResultFail, fleet, false); err != nil {
		t.Fatal(err)
	}
	if b.String() != table.String() {
		t.Errorf("a fleet drill: %q, want the fleet table %q", b.String(), table.String())
	}

	b.Reset()
	if err := report.RunText(&b, "recover", fleet, false); err != nil {
		t.Fatal(err)
	}
	if want := report.Verdict(fleet[0], false) + "\n" + report.Verdict(fleet[1], false) + "\n"; b.String() != want {
		t.Errorf("recover of two services: %q, want a verdict each %q", b.String(), want)
	}
}

func TestStatusAll(t *testing.T) {
	var one, two bytes.Buffer
	r := &rollback.Report{Command: "status", Service: rollback.ReportService{Name: "api"},
		Sections: rollback.Sections{Status: &rollback.ServiceStatus{Ready: true, Converged: true}}}
	if err := report.Status(&one, r); err != nil {
		t.Fatal(err)
	}
	if err := report.StatusAll(&two, []*rollback.Report{r, r}); err != nil {
		t.Fatal(err)
	}
	if want := one.String() + "\n" + one.String(); two.String() != want {
		t.Errorf("StatusAll = %q, want two statuses with a blank line between: %q", two.String(), want)
	}
}

func TestHasSummary(t *testing.T) {
	for _, tt := range []struct {
		command, result string
		want            bool
	}{
		{"test", rollback.ResultPass, true},
		{"status", rollback.ResultPass, true},
		{"snapshot", rollback.ResultPass, false},
		{"snapshot", rollback.ResultAborted, true},
	} {
		if got := report.HasSummary(tt.command, tt.result); got != tt.want {
			t.Errorf("HasSummary(%s, %s) = %v, want %v", tt.command, tt.result, got, tt.want)
		}
	}
}

func TestVersionLine(t *testing.T) {
	tool := &rollback.Tool{Name: "runrollback", Version: "v1.2.3", Commit: "0123abc", Modified: true, Go: "go1.26.0"}
	if got, want := report.VersionLine(tool, "linux", "amd64"), "runrollback v1.2.3 commit 0123abc (modified) go1.26.0 linux/amd64"; got != want {
		t.Errorf("VersionLine = %q, want %q", got, want)
	}
	tool = &rollback.Tool{Name: "runrollback", Version: "(devel)", Go: "go1.26.0"}
	if got, want := report.VersionLine(tool, "darwin", "arm64"), "runrollback (devel) go1.26.0 darwin/arm64"; got != want {
		t.Errorf("VersionLine without a commit = %q, want %q", got, want)
	}
}

func TestLost(t *testing.T) {
	if got := report.Lost("test", rollback.ResultPass, 6); got != "the test itself passed, but a report it was asked for is missing: exit 6" {
		t.Errorf("Lost = %q", got)
	}
	if got := report.Lost("status", rollback.ResultFail, 6); !strings.HasPrefix(got, "the status itself finished,") {
		t.Errorf("Lost = %q", got)
	}
}

func TestDelimiter(t *testing.T) {
	a, b := report.Delimiter(), report.Delimiter()
	if a == b || !strings.HasPrefix(a, "ghadelimiter_") || len(a) != len("ghadelimiter_")+32 {
		t.Errorf("Delimiter = %q, %q: want two different ghadelimiter_ and 32 hex digits", a, b)
	}
	if _, err := report.GitHubOutputs([]report.Output{{"result", "pass"}}, a); err != nil {
		t.Errorf("GitHubOutputs refuses Delimiter(): %v", err)
	}
}

func TestNoIDToken(t *testing.T) {
	ev := report.NoIDToken(t0, errors.New("user credentials\nsecond line"))
	if ev.Level != rollback.LevelWarn || !strings.Contains(ev.Message, "--id-token-file") || strings.Contains(ev.Message, "\n") {
		t.Errorf("NoIDToken = %+v", ev)
	}
}
