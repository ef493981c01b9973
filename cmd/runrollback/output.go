package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
// set one), writes the reports where asked — stdout (the JSON report with
// --output json, else what text writes), --report, --junit, the GitHub step
// summary, $GITHUB_OUTPUT and workflow annotations in GitHub Actions — and
// returns the error that carries the exit code. One report is written as
// itself, several as one fleet object. A report that cannot be written is
// said on stderr and turns a zero exit code into exitReportLost.
func (e *env) finish(g globalOpts, reports []*rollback.Report, text func(w io.Writer) error) error {
	e.progress(g).Close()
	tool, ci := toolInfo(), e.ciRun()
	for _, r := range reports {
		if r.ExitCode == 0 {
			r.ExitCode = reportCode(r)
		}
		r.Tool, r.CI = tool, ci
	}
	code, result := overallCode(reports)
	if e.log != nil {
		for _, r := range reports {
			e.log.Result(r)
		}
	}

	var jsonOut bytes.Buffer
	var err error
	if len(reports) == 1 {
		reports[0].Shard = g.shardSection
		err = report.JSON(&jsonOut, reports[0])
	} else {
		err = report.JSONFleet(&jsonOut, &report.Fleet{Schema: rollback.ReportSchema, Command: g.command,
			Result: result, ExitCode: code, Tool: tool, CI: ci, Shard: g.shardSection, Reports: reports})
	}
	if err != nil {
		return err
	}
	var lost []error
	switch {
	case g.output == "json":
		_, err = e.stdout.Write(jsonOut.Bytes())
	case text != nil:
		err = text(e.stdout)
	}
	if err != nil {
		lost = append(lost, fmt.Errorf("write stdout: %w", err))
	}
	if g.reportFile != "" {
		if err := writeFile(g.reportFile, jsonOut.Bytes()); err != nil {
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
	lost = append(lost, e.github(g, reports, result, code)...)
	for _, err := range lost {
		fmt.Fprintf(e.stderr, "runrollback: %s\n", oneLine(err.Error()))
	}
	if len(lost) > 0 && code == exitOK {
		code = exitReportLost
		fmt.Fprintf(e.stderr, "runrollback: %s\n", report.Lost(g.command, result, code))
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

// github writes what GitHub Actions reads: the step summary
// ($GITHUB_STEP_SUMMARY, when set), and with GITHUB_ACTIONS=true the step
// outputs ($GITHUB_OUTPUT) and one annotation per failure or warning. It
// returns what could not be written.
func (e *env) github(g globalOpts, reports []*rollback.Report, result string, code int) []error {
	var lost []error
	if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" && report.HasSummary(g.command, result) {
		var md strings.Builder
		for _, r := range reports {
			md.WriteString(report.Markdown(r))
			md.WriteString("\n")
		}
		if err := appendFile(path, md.String()); err != nil {
			lost = append(lost, fmt.Errorf("write the GitHub step summary %s: %w", path, err))
		}
	}
	if !e.inActions() {
		return lost
	}
	if path := e.getenv("GITHUB_OUTPUT"); path != "" {
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
			lost = append(lost, fmt.Errorf("write the step outputs to $GITHUB_OUTPUT %s: %w", path, err))
		}
	}
	// Workflow commands are read from stdout; with --output json, stdout is
	// the report, so they go to stderr, which the runner reads too (see
	// docs/design.md).
	w := e.stdout
	if g.output == "json" {
		w = e.stderr
	}
	for _, r := range reports {
		for _, a := range report.Annotations(r) {
			fmt.Fprintln(w, a)
		}
	}
	return lost
}

// writeFile writes a report file, replacing what was there.
func writeFile(path string, b []byte) error {
	return os.WriteFile(path, b, 0o644)
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
