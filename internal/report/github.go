package report

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/runrollback/runrollback/internal/rollback"
)

// GitHub Actions workflow commands
// (https://docs.github.com/actions/reference/workflow-commands-for-github-actions):
// "::error title=T::message". The runner reads a command from a line that
// starts with "::"; the message ends at the line's end and a property value at
// "," or "::". So message text is escaped as the runner's own toolkit does
// (@actions/core escapeData: % → %25, \r → %0D, \n → %0A) and property values
// further (escapeProperty: also : → %3A and , → %2C). Untrusted text is
// sanitized first, so no control character or ANSI escape reaches the log.
var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// maxAnnotation is how many runes of text an annotation keeps.
const maxAnnotation = 2000

// Annotation renders one workflow command of kind "error", "warning" or
// "notice" with a title, as one line without a line break. Title and message
// are sanitized and escaped, so neither can end the command early or start
// another.
func Annotation(kind, title, message string) string {
	switch kind {
	case "error", "warning", "notice":
	default:
		kind = "notice"
	}
	return "::" + kind + " title=" + propertyEscaper.Replace(sanitize(title, 200)) +
		"::" + dataEscaper.Replace(sanitize(message, maxAnnotation))
}

// Annotations are the workflow commands for a report: one error when it did
// not pass (its error and hint), one warning per warning. The title names the
// command, the service, the result and the exit code.
func Annotations(r *rollback.Report) []string {
	if r == nil {
		return nil
	}
	who := cmp.Or(subject(r), "runrollback")
	var out []string
	if r.Result != rollback.ResultPass {
		word, _ := resultWord(r.Result)
		msg := cmp.Or(r.Error, strings.ToLower(word))
		if r.Hint != "" {
			msg += " | hint: " + r.Hint
		}
		out = append(out, Annotation("error", fmt.Sprintf("runrollback %s: %s (exit %d)", who, strings.ToLower(word), r.ExitCode), msg))
	}
	for _, w := range r.Warnings {
		out = append(out, Annotation("warning", "runrollback "+who, w))
	}
	return out
}

// Output is one step output for $GITHUB_OUTPUT.
type Output struct{ Name, Value string }

// GitHubOutputs renders outputs in the runner's multiline-safe file format,
// each as
//
//	name<<DELIMITER
//	value
//	DELIMITER
//
// where delimiter is chosen by the caller (random, so that no value can
// contain it: the runner's toolkit uses "ghadelimiter_" and a UUID). A name
// or value that contains the delimiter, or a name that is not a plain
// identifier, is an error.
func GitHubOutputs(outputs []Output, delimiter string) (string, error) {
	if len(delimiter) < 16 || strings.ContainsAny(delimiter, "\r\n") {
		return "", fmt.Errorf("report: delimiter %q is too weak", delimiter)
	}
	var b strings.Builder
	for _, o := range outputs {
		for _, r := range o.Name {
			if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return "", fmt.Errorf("report: output name %q is not valid", o.Name)
			}
		}
		if o.Name == "" || strings.Contains(o.Value, delimiter) {
			return "", fmt.Errorf("report: output %q cannot be written safely", o.Name)
		}
		b.WriteString(o.Name + "<<" + delimiter + "\n" + o.Value + "\n" + delimiter + "\n")
	}
	return b.String(), nil
}

// RunOutputs are the step outputs of a run over reports (one, or a fleet)
// whose overall result and exit code are given: result, exit_code,
// rolled_back (a report restored or rolled back traffic), traffic_restored
// (every report's traffic equals its before), revision (what serves after,
// for one report), and report (the path of the JSON report, "" without
// --report).
func RunOutputs(reports []*rollback.Report, result string, exitCode int, reportPath string) []Output {
	rolledBack, restored := false, len(reports) > 0
	revision := ""
	for _, r := range reports {
		if RolledBack(r) {
			rolledBack = true
		}
		if !r.TrafficRestored {
			restored = false
		}
	}
	if len(reports) == 1 {
		r := reports[0]
		switch {
		case r.After != nil && r.After.Revision != "":
			revision = r.After.Revision
		case r.Probe != nil:
			revision = r.Probe.Revision
		case r.Before != nil:
			revision = r.Before.Revision
		}
	}
	return []Output{
		{"result", result},
		{"exit_code", strconv.Itoa(exitCode)},
		{"rolled_back", strconv.FormatBool(rolledBack)},
		{"traffic_restored", strconv.FormatBool(restored)},
		{"revision", sanitize(revision, 200)},
		{"report", reportPath},
	}
}

// RolledBack reports whether the run moved traffic back to the last good
// revision(s): its restore step passed (test, guard, rollback, recover).
func RolledBack(r *rollback.Report) bool {
	for _, st := range r.Steps {
		if st.Name == rollback.StepRestore && st.Status == rollback.StepPass {
			return true
		}
	}
	return false
}

// Delimiter is a fresh random delimiter for GitHubOutputs, as the runner's
// toolkit makes them: "ghadelimiter_" and 128 random bits.
func Delimiter() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "ghadelimiter_" + hex.EncodeToString(b)
}
