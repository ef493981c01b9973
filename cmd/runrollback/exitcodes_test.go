package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/rollback"
)

// The exit codes are one table (exitcodes.go); every place a user reads them
// says the same: each command's help, the top-level help, README.md's table
// and docs/commands.md's column.
func TestExitCodesDocumented(t *testing.T) {
	e := &env{getenv: func(string) string { return "" }}
	descriptions := map[string]string{}
	for _, c := range []*cli.Command{testCommand(e), guardCommand(e), statusCommand(e), snapshotCommand(e),
		rollbackCommand(e), recoverCommand(e), probeCommand(e), fakeCommand(e)} {
		descriptions[c.Name] = c.Description
	}
	if len(descriptions) != len(commandNames) || len(commandCodes) != len(commandNames) {
		t.Errorf("%d commands, %d names, %d in commandCodes", len(descriptions), len(commandNames), len(commandCodes))
	}
	for _, name := range commandNames {
		uses, ok := commandCodes[name]
		if !ok {
			t.Errorf("%s: no exit codes in commandCodes", name)
			continue
		}
		if !strings.HasSuffix(descriptions[name], exitHelp(name)) {
			t.Errorf("%s --help does not end with its exit codes:\n%s", name, descriptions[name])
		}
		for i, u := range uses {
			if u.code < 0 || u.code >= len(exitMeaning) || (i > 0 && u.code <= uses[i-1].code) {
				t.Errorf("%s: exit codes out of order or unknown: %v", name, uses)
			}
		}
	}

	readme := read(t, "../../README.md")
	section := between(t, readme, "## Exit codes", "\n## ")
	var codes []int
	for _, m := range regexp.MustCompile(`(?m)^\| (\d) \| (.*) \|$`).FindAllStringSubmatch(section, -1) {
		code, _ := strconv.Atoi(m[1])
		codes = append(codes, code)
		if code >= len(exitMeaning) || m[2] != exitMeaning[code] {
			t.Errorf("README.md, exit code %d: %q, want %q (exitcodes.go)", code, m[2], exitMeaning[min(code, len(exitMeaning)-1)])
		}
	}
	if len(codes) != len(exitMeaning) {
		t.Errorf("README.md lists exit codes %v, want 0 to %d", codes, len(exitMeaning)-1)
	}

	commandsMD := read(t, "../../docs/commands.md")
	for _, name := range commandNames {
		m := regexp.MustCompile("(?m)^\\| `" + name + "` \\|.* \\| ([^|]+) \\|$").FindStringSubmatch(commandsMD)
		if m == nil {
			t.Errorf("docs/commands.md: no row for %s", name)
			continue
		}
		if got := strings.ReplaceAll(m[1], "`", ""); got != exitList(name) {
			t.Errorf("docs/commands.md, %s: exit codes %q, want %q (its --help)", name, got, exitList(name))
		}
	}

	design := between(t, read(t, "../../docs/design.md"), "## Exit codes", "\n## ")
	if got := regexp.MustCompile(`(?m)^\| (\d) \|`).FindAllString(design, -1); len(got) != len(exitMeaning) {
		t.Errorf("docs/design.md lists %d exit codes, want %d", len(got), len(exitMeaning))
	}
	if !strings.Contains(exitTable(), "6  it did what was asked, but a report") {
		t.Errorf("top-level help: %s", exitTable())
	}
}

// A fleet exits with the worst code; a fleet none of whose services could be
// read is bad input.
func TestOverallCode(t *testing.T) {
	rep := func(result string, code int) *rollback.Report {
		return &rollback.Report{Result: result, ExitCode: code}
	}
	for _, tt := range []struct {
		reports []*rollback.Report
		want    int
	}{
		{[]*rollback.Report{rep(rollback.ResultPass, exitOK)}, exitOK},
		{[]*rollback.Report{rep(rollback.ResultAborted, exitUsage)}, exitUsage},
		{[]*rollback.Report{rep(rollback.ResultPass, exitOK), rep(rollback.ResultAborted, exitUsage)}, exitAborted},
		{[]*rollback.Report{rep(rollback.ResultAborted, exitUsage), rep(rollback.ResultAborted, exitUsage)}, exitUsage},
		{[]*rollback.Report{rep(rollback.ResultPass, exitOK), rep(rollback.ResultFail, exitFail), rep(rollback.ResultAborted, exitAborted)}, exitFail},
		{[]*rollback.Report{rep(rollback.ResultFail, exitLeftBehind), rep(rollback.ResultFail, exitFail)}, exitLeftBehind},
		{[]*rollback.Report{rep(rollback.ResultFail, exitLeftBehind), rep(rollback.ResultError, exitNotRestored)}, exitNotRestored},
	} {
		if got, _ := overallCode(tt.reports); got != tt.want {
			var in []int
			for _, r := range tt.reports {
				in = append(in, r.ExitCode)
			}
			t.Errorf("overallCode(%v) = %d, want %d", in, got, tt.want)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func between(t *testing.T, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("no %q", start)
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		s = s[:j]
	}
	return s
}
