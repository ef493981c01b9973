package main

import (
	"context"
	"errors"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Exit codes. This is the one table; README.md and docs/design.md describe it
// for users, and every command's help lists the codes it can return.
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
// its exit code set: for one, its own; for several (a fleet), the worst
// result's code, exitLeftBehind over any but exitNotRestored, and exitUsage
// when all else passed.
func overallCode(reports []*rollback.Report) (int, string) {
	if len(reports) == 1 {
		return reports[0].ExitCode, reports[0].Result
	}
	result := rollback.OverallResult(reports)
	code := resultCode(result)
	for _, r := range reports {
		switch {
		case r.ExitCode == exitUsage && code == exitOK:
			code = exitUsage
		case r.ExitCode == exitLeftBehind && code != exitNotRestored:
			code = exitLeftBehind
		}
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
