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

// reportCode is the exit code of a finished report: its result's, or
// exitLeftBehind when something of the run's stays on the service.
func reportCode(rep *rollback.Report) int {
	code := resultCode(rep.Result)
	if len(rep.LeftBehind) > 0 && code != exitNotRestored {
		return exitLeftBehind
	}
	return code
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

// readOnlyError classifies the failure of a command that only reads (status,
// snapshot): exit 2, with a hint for the usual causes.
func readOnlyError(err error) error {
	switch {
	case errors.Is(err, rollback.ErrNotFound):
		return setupError{err, "check --project, --region and --service ('gcloud run services list' shows what exists)"}
	case errors.Is(err, rollback.ErrPermission):
		return setupError{err, "the account needs roles/run.viewer on the service (see docs/permissions.md)"}
	case errors.Is(err, rollback.ErrUnauthenticated):
		return setupError{err, "set up Application Default Credentials ('gcloud auth application-default login'), or use --local"}
	}
	return setupError{err: err}
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
