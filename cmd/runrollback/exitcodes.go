package main

import (
	"context"
	"errors"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Exit codes, the contract of DESIGN.md §2. This is the one table.
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
)

// usageError marks bad input: exit 2, nothing changed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

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
