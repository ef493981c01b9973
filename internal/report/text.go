package report

import (
	"cmp"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runrollback/runrollback/internal/rollback"
)

// ANSI colours, used only when asked for.
const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	reset  = "\x1b[0m"
)

func paint(s, colour string, on bool) string {
	if !on || colour == "" {
		return s
	}
	return colour + s + reset
}

func levelColour(l rollback.Level) string {
	switch l {
	case rollback.LevelPass:
		return green
	case rollback.LevelFail:
		return red
	case rollback.LevelWarn:
		return yellow
	}
	return ""
}

// Line renders one progress event as one text line, without a line break:
//
//	[PASS] deploy (123ms): revision api-drill-x deployed at 0%
//
// The level in brackets comes first ([INFO] when the level is empty), then the
// step, the duration in parentheses when it is not zero (formatted as in
// "123ms", "1.2s"), then ": " and the message. Step and message are sanitized
// (Sanitize; the message cut to MaxLine runes). Because the line starts with
// "[", it can never be read as a GitHub workflow command. With color, the
// bracketed level is coloured: green PASS, red FAIL, yellow WARN, plain INFO.
func Line(ev rollback.Event, color bool) string {
	level := cmp.Or(sanitize(string(ev.Level), 16), string(rollback.LevelInfo))
	var b strings.Builder
	b.WriteString(paint("["+level+"]", levelColour(rollback.Level(level)), color))
	step := sanitize(ev.Step, 64)
	if step != "" {
		b.WriteString(" " + step)
	}
	if ev.Duration != 0 {
		b.WriteString(" (" + formatDuration(ev.Duration) + ")")
	}
	if msg := sanitize(ev.Message, MaxLine); msg != "" {
		if step == "" && ev.Duration == 0 {
			b.WriteString(" " + msg)
		} else {
			b.WriteString(": " + msg)
		}
	}
	return b.String()
}

// maxVerdict is how many runes of an error or hint the verdict shows.
const maxVerdict = 1000

// Verdict renders the final lines of text output, joined by "\n", without a
// trailing line break. The first line is the result word, two spaces, the
// command and service, and what happened:
//
//	PASS  test api: detected in 0.2s on the tag URL, 0.1s after the shift; restored in 15ms; verified in 30ms; total 1.2s
//	FAIL  test api: <error>
//	ABORTED  test api: <error>
//	ERROR  test api: restore not confirmed: <error>
//
// Then, when set: "hint: <hint>"; "traffic: <before> → <after>", followed for
// a drill (command "test") by "; traffic restored: yes|no"; and "exposure: 100%
// of traffic for 0.3s". Timings appear for the steps that passed (or, in a
// report without steps, that are not zero). Error and hint are sanitized. With
// color, the result word is coloured: green PASS, red FAIL and ERROR, yellow
// ABORTED.
func Verdict(r *rollback.Report, color bool) string {
	if r == nil {
		return paint("ERROR", red, color) + "  no report"
	}
	word, colour := resultWord(r.Result)
	head := paint(word, colour, color) + "  " + cmp.Or(subject(r), "runrollback") + ": "
	switch r.Result {
	case rollback.ResultPass:
		head += cmp.Or(passSummary(r), "ok")
	case rollback.ResultError:
		msg := sanitize(r.Error, maxVerdict)
		switch {
		case msg == "":
			msg = rollback.ErrNotRestored.Error()
		case !strings.Contains(msg, rollback.ErrNotRestored.Error()):
			msg = rollback.ErrNotRestored.Error() + ": " + msg
		}
		head += msg
	default:
		head += cmp.Or(sanitize(r.Error, maxVerdict), strings.ToLower(word))
	}
	lines := []string{head}
	if h := sanitize(r.Hint, maxVerdict); h != "" {
		lines = append(lines, "hint: "+h)
	}
	if r.Before != nil || r.After != nil {
		t := "traffic: " + splitText(r.Before) + " → " + splitText(r.After)
		if r.Command == "test" {
			t += "; traffic restored: " + yesNo(r.TrafficRestored)
		}
		lines = append(lines, t)
	}
	if r.Exposure.Percent > 0 || r.Exposure.MS > 0 {
		lines = append(lines, "exposure: "+exposureText(r.Exposure))
	}
	return strings.Join(lines, "\n")
}

// resultWord is the verdict's first word and its colour.
func resultWord(result string) (word, colour string) {
	switch result {
	case rollback.ResultPass:
		return "PASS", green
	case rollback.ResultFail:
		return "FAIL", red
	case rollback.ResultAborted:
		return "ABORTED", yellow
	case rollback.ResultError:
		return "ERROR", red
	}
	// Unknown results still start with a letter, never "::".
	return "UNKNOWN", yellow
}

// subject is "<command> <service>", sanitized; empty when both are.
func subject(r *rollback.Report) string {
	parts := slices.DeleteFunc([]string{sanitize(r.Command, 64), sanitize(r.Service.Name, 128)}, func(s string) bool { return s == "" })
	return strings.Join(parts, " ")
}

// passSummary lists the timings of a passing run.
func passSummary(r *rollback.Report) string {
	var clauses []string
	t := r.Timings
	detect := ""
	if stepRan(r, rollback.StepDetectTag, t.DetectTag) {
		detect = "detected in " + formatMS(t.DetectTag) + " on the tag URL"
	}
	if stepRan(r, rollback.StepDetect, t.Detect) {
		if detect == "" {
			detect = "detected in " + formatMS(t.Detect) + " after the shift"
		} else {
			detect += ", " + formatMS(t.Detect) + " after the shift"
		}
	}
	switch {
	case r.Command == "guard" && t.Detect > 0:
		clauses = append(clauses, "healthy after "+formatMS(t.Detect)+" of probing")
	case r.Command == "guard":
	case detect != "":
		clauses = append(clauses, detect)
	}
	if stepRan(r, rollback.StepRestore, t.Restore) {
		clauses = append(clauses, "restored in "+formatMS(t.Restore))
	}
	if stepRan(r, rollback.StepVerify, t.Verify) {
		clauses = append(clauses, "verified in "+formatMS(t.Verify))
	}
	if t.Total > 0 || len(clauses) > 0 {
		clauses = append(clauses, "total "+formatMS(t.Total))
	}
	return strings.Join(clauses, "; ")
}

// stepRan reports whether the step's timing belongs in the summary: the step
// passed, or the report records no such step and the timing is set.
func stepRan(r *rollback.Report, name string, ms int64) bool {
	i := slices.IndexFunc(r.Steps, func(s rollback.StepReport) bool { return s.Name == name })
	if i < 0 {
		return ms > 0
	}
	return r.Steps[i].Status == rollback.StepPass
}

func splitText(s *rollback.ReportState) string {
	if s == nil {
		return "unknown"
	}
	return cmp.Or(sanitize(s.Traffic.String(), maxVerdict), "(none)")
}

func exposureText(e rollback.Exposure) string {
	return strconv.Itoa(int(e.Percent)) + "% of traffic for " + formatMS(e.MS)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Table writes rows under header as an aligned text table: each column as wide
// as its widest cell (in runes), columns separated by two spaces, no trailing
// spaces, one line per row ending in "\n". Cells are sanitized (Sanitize, no
// length limit); a row shorter than the header is padded with empty cells.
func Table(w io.Writer, header []string, rows [][]string) error {
	all := make([][]string, 0, len(rows)+1)
	if header != nil {
		all = append(all, header)
	}
	all = append(all, rows...)
	cols := 0
	for _, row := range all {
		cols = max(cols, len(row))
	}
	cells := make([][]string, len(all))
	widths := make([]int, cols)
	for i, row := range all {
		cells[i] = make([]string, cols)
		for j, c := range row {
			c = Sanitize(c, 0)
			cells[i][j] = c
			widths[j] = max(widths[j], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		var line strings.Builder
		for j, c := range row {
			if j > 0 {
				line.WriteString("  ")
			}
			line.WriteString(c)
			if j < cols-1 {
				line.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
