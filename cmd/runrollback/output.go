package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
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

// observer prints progress events as text lines (text output only).
func (e *env) observer(g globalOpts) rollback.Observer {
	if g.output != "text" {
		return nil
	}
	color := !g.noColor && isTerminal(e.stdout)
	return func(ev rollback.Event) {
		fmt.Fprintln(e.stdout, report.Line(ev, color))
	}
}

// finishReport sets the exit code, writes the report where asked (stdout as JSON or
// the text verdict, --report, --junit, the GitHub step summary) and returns the
// error that carries the exit code.
func (e *env) finishReport(g globalOpts, rep *rollback.Report) error {
	rep.ExitCode = resultCode(rep.Result)
	var errs []error
	switch g.output {
	case "json":
		if err := report.JSON(e.stdout, rep); err != nil {
			errs = append(errs, err)
		}
	default:
		fmt.Fprintln(e.stdout, report.Verdict(rep, !g.noColor && isTerminal(e.stdout)))
	}
	if g.reportFile != "" {
		var buf bytes.Buffer
		if err := report.JSON(&buf, rep); err == nil {
			if err := os.WriteFile(g.reportFile, buf.Bytes(), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("write --report: %w", err))
			}
		}
	}
	if g.junitFile != "" {
		var buf bytes.Buffer
		if err := report.JUnit(&buf, rep); err == nil {
			if err := os.WriteFile(g.junitFile, buf.Bytes(), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("write --junit: %w", err))
			}
		}
	}
	if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendFile(path, report.Markdown(rep)); err != nil {
			errs = append(errs, fmt.Errorf("write the GitHub step summary: %w", err))
		}
	}
	for _, err := range errs {
		fmt.Fprintf(e.stderr, "runrollback: %v\n", err)
	}
	if rep.ExitCode == exitOK {
		return nil
	}
	return silentError{code: rep.ExitCode, err: fmt.Errorf("%s: %s", rep.Result, rep.Error)}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, werr := io.WriteString(f, text)
	return errors.Join(werr, f.Close())
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
