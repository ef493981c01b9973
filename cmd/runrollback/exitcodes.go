package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Exit codes. This is the one table; README.md and docs/design.md describe it
// for users, and every command's help lists the codes it can return
// (commandCodes).
const (
	// exitOK: the command did what was asked (drill passed, service healthy, nothing in flight).
	exitOK = 0
	// exitFail: the drill failed, the service is unhealthy, or a rollback could not be verified healthy.
	exitFail = 1
	// exitUsage: bad flags or names; nothing was changed.
	exitUsage = 2
	// exitAborted: the run stopped before finishing (refused at preflight, interrupted,
	// a conflict with another writer), and the service is as it was before.
	exitAborted = 3
	// exitNotRestored: the run stopped and the restore of the prior split could not be
	// confirmed; the message says what to run (`runrollback recover`).
	exitNotRestored = 4
	// exitLeftBehind: users are back on the prior split, but something of the run's
	// own stays on the service (a revision Cloud Run refused to delete, a lease that
	// could not be removed, its break in a revision someone else deployed): the
	// report's left_behind lists it and the hint says how to remove it. It takes
	// precedence over 0, 1 and 3; 4 takes precedence over it.
	exitLeftBehind = 5
	// exitReportLost: the command did what was asked, but a report it was asked
	// for (--report, --junit, --out, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY) could
	// not be written; stderr says which. A run that failed keeps its own code.
	exitReportLost = 6
)

// exitMeaning is what each code means, for every command: README.md's table
// says the same (exitcodes_test.go checks it), and the top-level help shows it.
var exitMeaning = []string{
	exitOK:          "it did what was asked: the drill passed, the service is healthy, nothing was in flight",
	exitFail:        "the drill failed, the service is unhealthy, or a rollback could not be verified healthy (the report says whether it rolled back)",
	exitUsage:       "bad input: a flag, a name, a file, a service that does not exist or cannot be read; nothing was changed",
	exitAborted:     "aborted safely: refused, interrupted, or another writer's change kept (with the difference); the service is as it was",
	exitNotRestored: "the restore could not be confirmed: run the `runrollback recover` command printed in the hint",
	exitLeftBehind:  "users are back, but something of the run's own stays on the service (the report's `left_behind`; the hint says how to remove it)",
	exitReportLost:  "it did what was asked, but a report it was asked for could not be written (stderr says which)",
}

// exitTable is the top-level help's list of exit codes.
func exitTable() string {
	var b strings.Builder
	b.WriteString("Exit codes, for every command ('runrollback COMMAND --help' says what each means for it):\n")
	for code, what := range exitMeaning {
		lines := strings.Split(wrap(strings.ReplaceAll(what, "`", "'"), 88), "\n")
		fmt.Fprintf(&b, "\n  %d  %s", code, strings.Join(lines, "\n     "))
	}
	return b.String()
}

// codeUse is what one exit code means for one command.
type codeUse struct {
	code int
	what string
}

// commandCodes lists, for every command, the codes it can return and what
// each means for it. Each command's help, and the table in docs/commands.md,
// are made from (or checked against) it; README.md gives the meaning of each
// code for all commands.
var commandCodes = map[string][]codeUse{
	"test": {{exitOK, "pass"}, {exitFail, "fail"}, {exitUsage, "usage (or a service that cannot be read)"},
		{exitAborted, "aborted safely"}, {exitNotRestored, "restore not confirmed"},
		{exitLeftBehind, "restored, but something of the drill's left on the service"}, {exitReportLost, "a report lost"}},
	"guard": {{exitOK, "healthy"}, {exitFail, "unhealthy (the report says whether it rolled back)"},
		{exitUsage, "usage (or a service that cannot be read)"}, {exitAborted, "aborted safely"},
		{exitNotRestored, "rollback not confirmed"}, {exitLeftBehind, "rolled back, but its lease left on the service"},
		{exitReportLost, "a report lost"}},
	"status": {{exitOK, "read"}, {exitUsage, "usage (or a service that cannot be read)"}, {exitReportLost, "a report lost"}},
	"snapshot": {{exitOK, "written"}, {exitUsage, "usage (or a service that cannot be read)"},
		{exitReportLost, "--out or a report lost"}},
	"rollback": {{exitOK, "rolled back (or already there) and healthy"}, {exitFail, "written but unhealthy"},
		{exitUsage, "usage (or a service that cannot be read)"}, {exitAborted, "aborted safely: nothing changed, or another writer's change kept"},
		{exitNotRestored, "not confirmed"}, {exitReportLost, "a report lost"}},
	"recover": {{exitOK, "recovered, or nothing in flight"}, {exitFail, "recovered but unhealthy"},
		{exitUsage, "usage (or a service that cannot be read)"}, {exitAborted, "stopped at a live run's lease or another writer's change"},
		{exitNotRestored, "not confirmed"}, {exitLeftBehind, "recovered, but something of the run's left on the service"},
		{exitReportLost, "a report lost"}},
	"probe": {{exitOK, "healthy"}, {exitFail, "unhealthy"}, {exitUsage, "usage"}, {exitReportLost, "a report lost"}},
	"fake":  {{exitOK, "stopped by a signal"}, {exitFail, "could not start"}, {exitUsage, "usage (or a --seed that is not a world)"}},
}

// exitList is the codes of command, one line: "0 pass; 1 fail; …".
func exitList(command string) string {
	var parts []string
	for _, u := range commandCodes[command] {
		parts = append(parts, fmt.Sprintf("%d %s", u.code, u.what))
	}
	return strings.Join(parts, "; ")
}

// fleetCommands take several services at once, and exit with the worst code.
var fleetCommands = []string{"test", "status", "recover"}

// exitHelp is the "Exit codes" paragraph of command's help, wrapped.
func exitHelp(command string) string {
	s := "Exit codes: " + exitList(command) + "."
	if slices.Contains(fleetCommands, command) {
		s += " Several services: the worst."
	}
	return wrap(s+" The table is in README.md (Exit codes).", 96)
}

// wrap breaks s into lines of at most width columns, at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteString("\n")
			n = 0
		default:
			b.WriteString(" ")
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// resultCode maps a report's result to the exit code table.
func resultCode(result string) int {
	switch result {
	case rollback.ResultPass:
		return exitOK
	case rollback.ResultFail:
		return exitFail
	case rollback.ResultAborted:
		return exitAborted
	}
	return exitNotRestored
}

// reportCode is the exit code of a finished report: exitUsage for a run that
// was given a service it cannot work on; else its result's, or exitLeftBehind
// when something of the run's stays on the service.
func reportCode(rep *rollback.Report) int {
	if rep.BadInput {
		return exitUsage
	}
	code := resultCode(rep.Result)
	if len(rep.LeftBehind) > 0 && code != exitNotRestored {
		return exitLeftBehind
	}
	return code
}

// overallCode is the exit code and result of a run over reports, each with
// its exit code set: for one, its own; for several (a fleet), the worst:
// exitNotRestored, then exitLeftBehind, exitFail, exitAborted, exitOK (a
// service that could not be read counts as aborted), and exitUsage when no
// service could be read.
func overallCode(reports []*rollback.Report) (int, string) {
	if len(reports) == 1 {
		return reports[0].ExitCode, reports[0].Result
	}
	result := rollback.OverallResult(reports)
	code := resultCode(result)
	allBad := len(reports) > 0
	for _, r := range reports {
		if r.ExitCode == exitLeftBehind && code != exitNotRestored {
			code = exitLeftBehind
		}
		allBad = allBad && r.ExitCode == exitUsage
	}
	if allBad {
		code = exitUsage
	}
	return code, result
}

// usageError marks bad input: exit 2, nothing changed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// setupError is a problem with the set-up rather than the service: no
// credentials, a service that does not exist, a permission missing. Nothing was
// changed; exit 2, with a hint on what to set up.
type setupError struct {
	err  error
	hint string
}

func (e setupError) Error() string { return e.err.Error() }
func (e setupError) Unwrap() error { return e.err }
func (e setupError) ExitCode() int { return exitUsage }

// readError is the error of a command whose read of a service (or list of
// services) failed before any write: exit 2, with a hint on the set-up when
// the error names one.
func readError(err error) error {
	return setupError{err, rollback.SetupHint(err)}
}

// exitCode maps an error from a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var coder interface{ ExitCode() int }
	if errors.As(err, &coder) {
		return coder.ExitCode()
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, rollback.ErrNotRestored):
		return exitNotRestored
	case errors.Is(err, rollback.ErrAborted), errors.Is(err, rollback.ErrConflict),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return exitAborted
	}
	return exitFail
}
