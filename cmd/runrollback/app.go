package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/report"
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

// env is what commands may read from the environment and where they write;
// only cmd reads the environment.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer

	command string // the command running, once its flags are parsed

	sinkOnce sync.Once
	sink     sink
	log      *report.Log // set with --log-format json
}

// commandNames lists the commands, for messages.
var commandNames = []string{"test", "guard", "status", "snapshot", "rollback", "recover", "probe", "fake"}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	var runErr error
	app := &cli.App{
		Name:        "runrollback",
		Usage:       "prove a Cloud Run service can be rolled back, and roll it back when a deploy goes bad",
		Writer:      stdout,
		ErrWriter:   stderr,
		Description: exitTable(),
		HideVersion: true, // --version is ours: urfave/cli would take -v, which is --verbose
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Usage: "print the version (module version, commit, Go version) and exit"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				_, err := fmt.Fprintln(stdout, report.VersionLine(toolInfo(), runtime.GOOS, runtime.GOARCH))
				return err
			}
			if c.NArg() > 0 {
				name := c.Args().First()
				msg := fmt.Sprintf("no command %q: use one of %s", name, strings.Join(commandNames, ", "))
				if m := quotedRE.FindStringSubmatch(cli.SuggestCommand(c.App.Commands, name)); m != nil && slices.Contains(commandNames, m[1]) && likely(name, m[1]) {
					msg = fmt.Sprintf("no command %q (did you mean %s?): use one of %s", name, m[1], strings.Join(commandNames, ", "))
				}
				return flagError{err: errors.New(msg)}
			}
			return cli.ShowAppHelp(c)
		},
		EnableBashCompletion: false,
		// urfave/cli would call os.Exit itself; we map errors to codes in exitCode.
		ExitErrHandler: func(_ *cli.Context, err error) { runErr = err },
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return flagError{err: describeFlagError(nil, c.App.Flags, nil, err)}
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
			e.command = cmd.Name
			if before != nil {
				return before(c)
			}
			return nil
		}
		// A usage error is one or two lines on stderr and exit 2, never the
		// help text on stdout (stdout may be JSON a CI job parses).
		cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return flagError{cmd: cmd.Name, err: describeFlagError(cmd, cmd.Flags, app.Commands, err)}
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
		var ue usageError
		var fe flagError
		var se setupError
		who := "runrollback"
		switch {
		case errors.As(err, &fe) && fe.cmd != "":
			who += " " + fe.cmd
		case e.command != "":
			who += " " + e.command
		}
		fmt.Fprintf(stderr, "%s: %s\n", who, report.Sanitize(err.Error(), 2000))
		switch {
		case errors.As(err, &se) && se.hint != "":
			fmt.Fprintf(stderr, "hint: %s\n", report.Sanitize(se.hint, 2000))
		case errors.As(err, &fe) && fe.cmd != "":
			fmt.Fprintf(stderr, "Run 'runrollback %s --help' for usage.\n", fe.cmd)
		case errors.As(err, &ue) && e.command != "":
			fmt.Fprintf(stderr, "Run 'runrollback %s --help' for usage.\n", e.command)
		case errors.As(err, &fe), errors.As(err, &ue):
			fmt.Fprintln(stderr, "Run 'runrollback help' (or 'runrollback COMMAND --help') for usage.")
		}
	}
	return code
}

// flagError is a command line the flag parser refused: exit 2, nothing done.
// cmd names the command whose flags were wrong ("" for the top level).
type flagError struct {
	cmd string
	err error
}

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }
func (e flagError) ExitCode() int { return exitUsage }

// The messages of Go's flag package (and urfave/cli's), rewritten in terms of
// --flags.
var (
	undefinedRE = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	quotedRE    = regexp.MustCompile(`"([^"]+)"`)
	badValueRE  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): (.*)$`)
	needsArgRE  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// describeFlagError says what was wrong with the command line of cmd (nil:
// the top level), whose flags are flags, and where to look; a flag that
// belongs to other commands of all says which.
func describeFlagError(cmd *cli.Command, flags []cli.Flag, all []*cli.Command, err error) error {
	msg := err.Error()
	if m := undefinedRE.FindStringSubmatch(msg); m != nil {
		name := m[1]
		hint := ""
		switch {
		case name == "version" && cmd != nil:
			hint = " (--version goes before the command: runrollback --version)"
		case slices.ContainsFunc(flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) }):
		case len(owners(all, name)) > 0:
			hint = fmt.Sprintf(" (--%s is a flag of %s)", name, strings.Join(owners(all, name), ", "))
		default:
			if s := cli.SuggestFlag(flags, name, false); s != "" && s != "--help" && s != "-h" && likely(name, strings.TrimLeft(s, "-")) {
				hint = " (did you mean " + s + "?)"
			}
		}
		return fmt.Errorf("unknown flag --%s%s", name, hint)
	}
	if m := badValueRE.FindStringSubmatch(msg); m != nil {
		value, name := m[1], m[2]
		return fmt.Errorf("--%s %q: %s", name, value, wantFor(flags, name))
	}
	if m := needsArgRE.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("--%s needs a value", m[1])
	}
	return err
}

// owners are the commands of all that have a flag called name.
func owners(all []*cli.Command, name string) []string {
	var out []string
	for _, c := range all {
		if slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) }) {
			out = append(out, c.Name)
		}
	}
	return out
}

// likely says whether a suggestion is worth making for a typo: a word of
// three letters or more, starting with the same letter.
func likely(typed, suggestion string) bool {
	return len(typed) >= 3 && suggestion != "" && typed[0] == suggestion[0]
}

// wantFor says what a flag's value must be.
func wantFor(flags []cli.Flag, name string) string {
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag:
			return "want a whole number"
		case *cli.BoolFlag:
			return "want true or false (or leave the value out: --" + name + " alone means true)"
		}
	}
	return "not a valid value"
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

// noArgs rejects stray positional arguments, which would otherwise be
// silently ignored.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return flagError{cmd: c.Command.Name, err: fmt.Errorf("unexpected argument %q: it takes flags only", c.Args().First())}
	}
	return nil
}

// timeNow is the clock of the command layer.
var timeNow = time.Now
