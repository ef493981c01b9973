package report_test

import (
	"strings"
	"testing"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func TestAnnotationEscapes(t *testing.T) {
	for _, tt := range []struct {
		name, kind, title, msg, want string
	}{
		{"plain", "error", "runrollback test api: fail (exit 1)", "the broken revision answered healthy",
			"::error title=runrollback test api%3A fail (exit 1)::the broken revision answered healthy"},
		// Percent signs first; colons and commas only in properties.
		{"percent", "warning", "50%, then 100%", "100% of traffic: 3s",
			"::warning title=50%25%2C then 100%25::100%25 of traffic: 3s"},
		// A line break would end the command and let the rest start another:
		// untrusted text is sanitized to one line first, so none is left.
		{"newline", "error", "t", "boom\n::error::forged\r\n::add-mask::x",
			"::error title=t::boom ::error::forged ::add-mask::x"},
		{"title breakout", "error", "a::b,c:d", "m", "::error title=a%3A%3Ab%2Cc%3Ad::m"},
		{"ansi", "notice", "t", "\x1b[31mred", `::notice title=t::\x1b[31mred`},
		{"unknown kind", "debug", "t", "m", "::notice title=t::m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := report.Annotation(tt.kind, tt.title, tt.msg)
			if got != tt.want {
				t.Errorf("Annotation = %q, want %q", got, tt.want)
			}
			if strings.ContainsAny(got, "\r\n") {
				t.Errorf("Annotation %q spans lines", got)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	r := &rollback.Report{Command: "guard", Result: rollback.ResultFail, ExitCode: 1,
		Service: rollback.ReportService{Name: "api"}, Error: "unhealthy: HTTP 503", Hint: "fix, then deploy",
		Warnings: []string{"probes go without an ID token"}}
	got := report.Annotations(r)
	// The message escapes only %, CR and LF: its colons and commas stay.
	want := []string{
		"::error title=runrollback guard api%3A fail (exit 1)::unhealthy: HTTP 503 | hint: fix, then deploy",
		"::warning title=runrollback guard api::probes go without an ID token",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Annotations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := report.Annotations(&rollback.Report{Result: rollback.ResultPass}); len(got) != 0 {
		t.Errorf("a pass without warnings annotates %v", got)
	}
}

func TestGitHubOutputs(t *testing.T) {
	delim := "ghadelimiter_0123456789abcdef"
	got, err := report.GitHubOutputs([]report.Output{{"result", "pass"}, {"report", "/tmp/a b\nc.json"}}, delim)
	if err != nil {
		t.Fatal(err)
	}
	want := "result<<" + delim + "\npass\n" + delim + "\nreport<<" + delim + "\n/tmp/a b\nc.json\n" + delim + "\n"
	if got != want {
		t.Errorf("GitHubOutputs = %q, want %q", got, want)
	}
	if _, err := report.GitHubOutputs([]report.Output{{"x", "a\n" + delim + "\ny"}}, delim); err == nil {
		t.Error("a value holding the delimiter was written")
	}
	if _, err := report.GitHubOutputs([]report.Output{{"a=b", "x"}}, delim); err == nil {
		t.Error("an output name with '=' was written")
	}
	if _, err := report.GitHubOutputs(nil, "EOF"); err == nil {
		t.Error("a short delimiter was accepted")
	}
}

func TestRunOutputs(t *testing.T) {
	guard := &rollback.Report{Command: "guard", Result: rollback.ResultFail,
		Steps: []rollback.StepReport{{Name: rollback.StepRestore, Status: rollback.StepPass}},
		After: &rollback.ReportState{Revision: "api-00002-def"}}
	got := map[string]string{}
	for _, o := range report.RunOutputs([]*rollback.Report{guard}, "fail", 1, "/r/guard.json") {
		got[o.Name] = o.Value
	}
	want := map[string]string{"result": "fail", "exit_code": "1", "rolled_back": "true", "traffic_restored": "false",
		"revision": "api-00002-def", "report": "/r/guard.json"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("outputs %v, want exactly %v", got, want)
	}
}

func TestFleetTable(t *testing.T) {
	pass := &rollback.Report{Command: "test", Result: rollback.ResultPass, Service: rollback.ReportService{Name: "api"}, TrafficRestored: true}
	abort := &rollback.Report{Command: "test", Result: rollback.ResultAborted, Service: rollback.ReportService{Name: "down"}, Error: "unhealthy now"}
	var b strings.Builder
	if err := report.FleetTable(&b, "test", rollback.ResultAborted, []*rollback.Report{pass, abort}, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"\nSERVICE  RESULT", "\napi      PASS", "\ndown     ABORTED", "\nABORTED  test down: unhealthy now\n", "\nABORTED  test: 2 services: 1 pass, 1 aborted\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("fleet table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	_ = report.FleetTable(&b, "test", rollback.ResultPass, []*rollback.Report{pass, pass}, false)
	if !strings.HasSuffix(b.String(), "\nPASS  test: 2 services: 2 pass\n") {
		t.Errorf("passing fleet table ends %q", b.String())
	}
}
