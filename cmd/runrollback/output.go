package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

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

// observer prints progress events as text lines (text output only). On a
// terminal, the step in progress shows on one line that the next event
// replaces; elsewhere (CI logs, files) only finished steps are printed.
func (e *env) observer(g globalOpts) rollback.Observer {
	if g.output != "text" {
		return nil
	}
	tty := isTerminal(e.stdout)
	return progress(e.stdout, tty, !g.noColor && tty, g.verbose)
}

// progress writes events to w, as observer describes. verbose adds a line when
// each step starts and a UTC timestamp on every line.
func progress(w io.Writer, tty, color, verbose bool) rollback.Observer {
	var mu sync.Mutex
	return func(ev rollback.Event) {
		mu.Lock()
		defer mu.Unlock()
		stamp := ""
		if verbose {
			stamp = ev.Time.UTC().Format("15:04:05.000 ")
		}
		if ev.Level == rollback.LevelRun {
			switch {
			case verbose:
				if tty {
					fmt.Fprint(w, "\r\033[K")
				}
				fmt.Fprintln(w, stamp+report.Line(rollback.Event{Level: rollback.LevelInfo, Step: ev.Step, Message: "started"}, color))
			case tty:
				fmt.Fprintf(w, "\r\033[K… %s", report.Sanitize(ev.Step, 80))
			}
			return
		}
		if tty {
			fmt.Fprint(w, "\r\033[K")
		}
		fmt.Fprintln(w, stamp+report.Line(ev, color))
	}
}

// finishReport sets the exit code, writes the report where asked (stdout as JSON or
// the text verdict, --report, --junit, the GitHub step summary) and returns the
// error that carries the exit code.
func (e *env) finishReport(g globalOpts, rep *rollback.Report) error {
	rep.ExitCode = reportCode(rep)
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

// finishFleet reports a drill of several services: a row per service and an
// overall verdict in text, or one fleet JSON object; --report, --junit and the
// step summary cover every service.
func (e *env) finishFleet(g globalOpts, reports []*rollback.Report) error {
	overall := rollback.OverallResult(reports)
	code := resultCode(overall)
	for _, r := range reports {
		r.ExitCode = reportCode(r)
		if r.ExitCode == exitLeftBehind && code != exitNotRestored {
			code = exitLeftBehind
		}
	}
	fleet := &report.Fleet{Schema: rollback.ReportSchema, Command: "test", Result: overall, ExitCode: code, Reports: reports}
	var errs []error
	if g.output == "json" {
		errs = append(errs, report.JSONFleet(e.stdout, fleet))
	} else {
		errs = append(errs, e.fleetText(g, reports, overall))
	}
	if g.reportFile != "" {
		var buf bytes.Buffer
		if err := report.JSONFleet(&buf, fleet); err == nil {
			errs = append(errs, os.WriteFile(g.reportFile, buf.Bytes(), 0o644))
		}
	}
	if g.junitFile != "" {
		var buf bytes.Buffer
		if err := report.JUnit(&buf, reports...); err == nil {
			errs = append(errs, os.WriteFile(g.junitFile, buf.Bytes(), 0o644))
		}
	}
	if path := e.getenv("GITHUB_STEP_SUMMARY"); path != "" {
		var md strings.Builder
		for _, r := range reports {
			md.WriteString(report.Markdown(r))
			md.WriteString("\n")
		}
		errs = append(errs, appendFile(path, md.String()))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(e.stderr, "runrollback: %v\n", err)
	}
	if code == exitOK {
		return nil
	}
	return silentError{code: code, err: fmt.Errorf("%s", overall)}
}

func (e *env) fleetText(g globalOpts, reports []*rollback.Report, overall string) error {
	color := !g.noColor && isTerminal(e.stdout)
	fmt.Fprintln(e.stdout)
	var rows [][]string
	counts := map[string]int{}
	for _, r := range reports {
		counts[r.Result]++
		restored := "yes"
		if !r.TrafficRestored {
			restored = "no"
		}
		rows = append(rows, []string{r.Service.Name, strings.ToUpper(r.Result),
			ms(r.Timings.DetectTag), ms(r.Timings.Detect), ms(r.Timings.Restore), ms(r.Timings.Verify), ms(r.Timings.Total),
			restored, fmt.Sprint(r.APICalls.Writes), r.Error})
	}
	if err := report.Table(e.stdout, []string{"SERVICE", "RESULT", "DETECT-TAG", "DETECT", "RESTORE", "VERIFY", "TOTAL", "RESTORED", "WRITES", "ERROR"}, rows); err != nil {
		return err
	}
	for _, r := range reports {
		if r.Result != rollback.ResultPass {
			fmt.Fprintln(e.stdout, report.Verdict(r, color))
		}
	}
	var parts []string
	for _, res := range []string{rollback.ResultPass, rollback.ResultFail, rollback.ResultAborted, rollback.ResultError} {
		if counts[res] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[res], res))
		}
	}
	verdict := report.Verdict(&rollback.Report{Command: "test", Result: overall,
		Error: fmt.Sprintf("%d services: %s", len(reports), strings.Join(parts, ", "))}, color)
	if overall == rollback.ResultPass {
		verdict = strings.Replace(verdict, "ok", fmt.Sprintf("%d services: %s", len(reports), strings.Join(parts, ", ")), 1)
	}
	fmt.Fprintln(e.stdout, verdict)
	return nil
}

func ms(v int64) string { return fmt.Sprintf("%dms", v) }
