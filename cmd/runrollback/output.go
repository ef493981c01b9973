package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

// sink receives a run's progress as it happens: text lines
// (report.Progress) or structured logs (report.Log).
type sink interface {
	Event(rollback.Event)
	Note(rollback.Event)
	Close()
}

// progress is the run's sink, made once: with --log-format json, structured
// logs on stderr; otherwise text lines on stdout (on stderr with --output
// json, which keeps stdout for the report).
func (e *env) progress(g globalOpts) sink {
	e.sinkOnce.Do(func() {
		if g.logJSON {
			service := ""
			if len(g.services) == 1 {
				service = g.services[0]
			}
			e.log = report.NewLog(e.stderr, g.command, service)
			e.sink = e.log
			return
		}
		w, color := e.stdout, g.color
		if g.output == "json" {
			w, color = e.stderr, false
		}
		e.sink = &report.Progress{W: w, TTY: isTerminal(w), Color: color, Verbose: g.verbose}
	})
	return e.sink
}

// observer is the rollback.Observer that feeds the run's sink.
func (e *env) observer(g globalOpts) rollback.Observer { return e.progress(g).Event }

// finish ends a command: it sets each report's exit code (unless the command
// set one) and writes the reports where asked: --report, --junit, the GitHub
// step summary, then, with GITHUB_ACTIONS=true, $GITHUB_OUTPUT and workflow
// annotations, and last stdout (the JSON report with --output json, else what
// text writes). One report is written as itself, several as one fleet object.
// A report that cannot be written is said on stderr (and, in GitHub Actions,
// as an annotation) and turns a zero exit code into exitReportLost; what is
// written after it (the step outputs, the JSON on stdout) carries that code.
// It returns the error that carries the exit code.
func (e *env) finish(g globalOpts, reports []*rollback.Report, text func(w io.Writer) error) error {
	e.progress(g).Close()
	tool, ci := toolInfo(), e.ciRun()
	for _, r := range reports {
		if r.ExitCode == 0 {
			r.ExitCode = reportCode(r)
		}
		r.Tool, r.CI = tool, ci
	}
	if len(reports) == 1 {
		reports[0].Shard = g.shardSection
	}
	code, result := overallCode(reports)
	encode := func() ([]byte, error) {
		var b bytes.Buffer
		if len(reports) == 1 {
			err := report.JSON(&b, reports[0])
			return b.Bytes(), err
		}
		err := report.JSONFleet(&b, &report.Fleet{Schema: rollback.ReportSchema, Command: g.command,
			Result: result, ExitCode: code, Tool: tool, CI: ci, Shard: g.shardSection, Reports: reports})
		return b.Bytes(), err
	}
	jsonOut, err := encode()
	if err != nil {
		return err
	}

	var lost []error
	if g.reportFile != "" {
		if err := writeFile(g.reportFile, jsonOut); err != nil {
			lost = append(lost, fmt.Errorf("write --report %s: %w", g.reportFile, err))
		}
	}
	if g.junitFile != "" {
		var buf bytes.Buffer
		err := report.JUnit(&buf, reports...)
		if err == nil {
			err = writeFile(g.junitFile, buf.Bytes())
		}
		if err != nil {
			lost = append(lost, fmt.Errorf("write --junit %s: %w", g.junitFile, err))
		}
	}
	if err := e.stepSummary(g, reports, result); err != nil {
		lost = append(lost, err)
	}
	// lose turns a pass into exitReportLost once a report is lost.
	lose := func() {
		if len(lost) > 0 && code == exitOK {
			code = exitReportLost
			if len(reports) == 1 {
				reports[0].ExitCode = code
			}
			if b, err := encode(); err == nil {
				jsonOut = b
			}
		}
	}
	lose()
	if err := e.stepOutputs(g, reports, result, code); err != nil {
		lost = append(lost, err)
		lose()
	}
	e.annotate(g, reports, lost, code)

	switch {
	case g.output == "json":
		_, err = e.stdout.Write(jsonOut)
	case text != nil:
		err = text(e.stdout)
	}
	if err != nil {
		lost = append(lost, fmt.Errorf("write stdout: %w", err))
		lose()
	}
	for _, err := range lost {
		fmt.Fprintf(e.stderr, "runrollback: %s\n", oneLine(err.Error()))
	}
	if code == exitReportLost && len(lost) > 0 {
		fmt.Fprintf(e.stderr, "runrollback: %s\n", report.Lost(g.command, result, code))
	}
	if e.log != nil {
		for _, r := range reports {
			e.log.Result(r)
		}
	}
	e.notify(g, reports, result, code)
	if code == exitOK {
		return nil
	}
	msg := result
	if len(reports) == 1 && reports[0].Error != "" {
		msg += ": " + reports[0].Error
	}
	return silentError{code: code, err: errors.New(msg)}
}

// stepSummary appends the Markdown summary of the run to
// $GITHUB_STEP_SUMMARY, when it is set and the run has something to say.
func (e *env) stepSummary(g globalOpts, reports []*rollback.Report, result string) error {
	path := e.getenv("GITHUB_STEP_SUMMARY")
	if path == "" || !report.HasSummary(g.command, result) {
		return nil
	}
	var md strings.Builder
	for _, r := range reports {
		md.WriteString(report.Markdown(r))
		md.WriteString("\n")
	}
	if err := appendFile(path, md.String()); err != nil {
		return fmt.Errorf("write the GitHub step summary %s: %w", path, err)
	}
	return nil
}

// stepOutputs appends the step outputs to $GITHUB_OUTPUT, in GitHub Actions.
func (e *env) stepOutputs(g globalOpts, reports []*rollback.Report, result string, code int) error {
	path := e.getenv("GITHUB_OUTPUT")
	if !e.inActions() || path == "" {
		return nil
	}
	reportPath := g.reportFile
	if reportPath != "" {
		if abs, err := filepath.Abs(reportPath); err == nil {
			reportPath = abs
		}
	}
	text, err := report.GitHubOutputs(report.RunOutputs(reports, result, code, reportPath), report.Delimiter())
	if err == nil {
		err = appendFile(path, text)
	}
	if err != nil {
		return fmt.Errorf("write the step outputs to $GITHUB_OUTPUT %s: %w", path, err)
	}
	return nil
}

// annotate writes, in GitHub Actions, one workflow annotation per failure or
// warning of the reports, and one per report lost. Workflow commands are read
// from stdout; with --output json, stdout is the report, so they go to
// stderr, which the runner reads too (see docs/design.md).
func (e *env) annotate(g globalOpts, reports []*rollback.Report, lost []error, code int) {
	if !e.inActions() {
		return
	}
	w := e.stdout
	if g.output == "json" {
		w = e.stderr
	}
	for _, r := range reports {
		for _, a := range report.Annotations(r) {
			fmt.Fprintln(w, a)
		}
	}
	for _, err := range lost {
		fmt.Fprintln(w, report.Annotation("error", fmt.Sprintf("runrollback %s: a report lost (exit %d)", g.command, code), err.Error()))
	}
}

// writeFile writes a report file, replacing what was there. A FIFO or a
// device is written without truncating, and for rollback.PipeTimeout at most:
// a reader that went away never holds the run up.
func writeFile(path string, b []byte) error { return writeFileMode(path, b, 0o644) }

// writeFileMode is writeFile, creating a new file with perm.
func writeFileMode(path string, b []byte, perm os.FileMode) error {
	st, err := os.Stat(path)
	if err != nil || st.Mode().IsRegular() {
		return os.WriteFile(path, b, perm)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	_ = f.SetWriteDeadline(time.Now().Add(rollback.PipeTimeout)) // not every device can have one
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
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

// runText is the text a run over reports ends with on stdout.
func runText(g globalOpts, reports []*rollback.Report) func(io.Writer) error {
	return func(w io.Writer) error { return report.RunText(w, g.command, reports, g.color) }
}
