package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// Main runs the command line and returns the exit code. It owns signal handling:
// the first SIGINT or SIGTERM cancels the run's context (commands then restore on a
// context the signal does not cancel); later signals are swallowed so that a restore
// in flight is never abandoned.
func Main(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stdout, stderr, getenv)
}

// env is what commands may read from the environment; only cmd reads it.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	var runErr error
	app := &cli.App{
		Name:      "runrollback",
		Usage:     "prove a Cloud Run service can be rolled back, and roll it back when a deploy goes bad",
		Writer:    stdout,
		ErrWriter: stderr,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("no command %q: use one of test, guard, status, snapshot, rollback, recover, probe, fake", c.Args().First())}
			}
			return cli.ShowAppHelp(c)
		},
		EnableBashCompletion: false,
		Suggest:              true,
		// urfave/cli would call os.Exit itself; we map errors to codes in exitCode.
		ExitErrHandler: func(_ *cli.Context, err error) { runErr = err },
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			testCommand(e),
			guardCommand(e),
			statusCommand(e),
			snapshotCommand(e),
			rollbackCommand(e),
			recoverCommand(e),
			probeCommand(e),
			fakeCommand(e),
		},
	}
	// urfave/cli parses every command's flags into its package-level help flag:
	// two runs in one process (tests) must not parse at the same time. The lock
	// is released once parsing is done, before any command does its work.
	parseMu.Lock()
	var once sync.Once
	release := func() { once.Do(parseMu.Unlock) }
	for _, cmd := range app.Commands {
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			release()
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
	err := app.RunContext(ctx, args)
	release()
	if err == nil {
		err = runErr
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	var silent silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(stderr, "runrollback: %s\n", oneLine(err.Error()))
		var ue usageError
		var se setupError
		switch {
		case errors.As(err, &se) && se.hint != "":
			fmt.Fprintf(stderr, "hint: %s\n", se.hint)
		case errors.As(err, &ue):
			fmt.Fprintln(stderr, "Run 'runrollback help' (or 'runrollback COMMAND --help') for usage.")
		}
	}
	return code
}

// parseMu serialises flag parsing across runs in one process (see run).
var parseMu sync.Mutex

// silentError carries an exit code for a failure that the command has already
// reported (in its report or output).
type silentError struct {
	code int
	err  error
}

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() error { return e.err }
func (e silentError) ExitCode() int { return e.code }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// commandWithFlags wires a command's Before to reject stray positional arguments,
// which would otherwise be silently ignored.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: %s takes flags only", c.Args().First(), c.Command.Name)}
	}
	return nil
}

// timeNow is the clock of the command layer.
var timeNow = time.Now
