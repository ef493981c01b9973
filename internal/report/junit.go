package report

import (
	"cmp"
	"encoding/xml"
	"io"
	"strconv"
	"time"

	"github.com/runrollback/runrollback/internal/rollback"
)

// JUnit XML, in the shape CI systems read (Jenkins, GitLab, GitHub test
// reporters): <testsuites> of <testsuite> of <testcase>.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// maxJUnitText is how many runes of a detail a failure body or system-out keeps.
const maxJUnitText = 4000

// resultCase names the testcase added when a run did not pass but none of its
// steps failed (or it has no steps), so CI still sees the failure.
const resultCase = "result"

// JUnit writes the reports as JUnit XML: a <testsuites> element holding one
// <testsuite name="runrollback <command> <service>"> per report, with one
// <testcase name="<step>" classname="runrollback.<command>.<service>"
// time="<seconds>"> per step. A failed step carries <failure
// message="<detail>">, a skipped step <skipped message="<detail>">, and the
// detail of any other step is its <system-out>. A report that did not pass
// without any failed step gets one more testcase, "result", failing with the
// report's error. Text is sanitized; encoding/xml does the escaping.
func JUnit(w io.Writer, reports ...*rollback.Report) error {
	out := junitSuites{Name: "runrollback"}
	var total int64
	for _, r := range reports {
		if r == nil {
			continue
		}
		s := junitSuiteOf(r)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		total += suiteMS(r)
		out.Suites = append(out.Suites, s)
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitSuiteOf(r *rollback.Report) junitSuite {
	command := cmp.Or(sanitize(r.Command, 64), "run")
	service := sanitize(r.Service.Name, 128)
	name := "runrollback " + command
	class := "runrollback." + command
	if service != "" {
		name += " " + service
		class += "." + service
	}
	s := junitSuite{
		Name: name,
		Time: seconds(suiteMS(r)),
		Properties: []junitProperty{
			{Name: "result", Value: sanitize(r.Result, 64)},
			{Name: "exit_code", Value: strconv.Itoa(r.ExitCode)},
		},
	}
	for _, p := range []junitProperty{
		{"project", r.Service.Project}, {"region", r.Service.Region}, {"error", r.Error}, {"hint", r.Hint},
	} {
		if p.Value != "" {
			s.Properties = append(s.Properties, junitProperty{Name: p.Name, Value: sanitize(p.Value, maxJUnitText)})
		}
	}
	if len(r.Steps) > 0 && !r.Steps[0].StartedAt.IsZero() {
		s.Timestamp = r.Steps[0].StartedAt.UTC().Format(time.DateOnly + "T" + time.TimeOnly)
	}
	failed := false
	for _, st := range r.Steps {
		c := junitCase{
			Name:      cmp.Or(sanitize(st.Name, 64), "step"),
			Classname: class,
			Time:      seconds(st.DurationMS),
		}
		detail := sanitize(st.Detail, maxJUnitText)
		switch st.Status {
		case rollback.StepFail:
			failed = true
			s.Failures++
			c.Failure = &junitMessage{Message: sanitize(st.Detail, MaxLine), Type: "fail", Text: detail}
		case rollback.StepSkipped:
			s.Skipped++
			c.Skipped = &junitMessage{Message: sanitize(st.Detail, MaxLine)}
		default:
			if detail != "" {
				c.SystemOut = st.Status + ": " + detail
			}
		}
		s.Cases = append(s.Cases, c)
	}
	if r.Result != rollback.ResultPass && !failed {
		result := cmp.Or(sanitize(r.Result, 64), "unknown")
		msg := cmp.Or(sanitize(r.Error, maxJUnitText), "result "+result)
		if r.Hint != "" {
			msg += "\nhint: " + sanitize(r.Hint, maxJUnitText)
		}
		s.Failures++
		s.Cases = append(s.Cases, junitCase{
			Name:      resultCase,
			Classname: class,
			Time:      seconds(0),
			Failure:   &junitMessage{Message: cmp.Or(sanitize(r.Error, MaxLine), "result "+result), Type: result, Text: msg},
		})
	}
	s.Tests = len(s.Cases)
	return s
}

// suiteMS is a report's duration: its total, else the sum of its steps.
func suiteMS(r *rollback.Report) int64 {
	if r.Timings.Total > 0 {
		return r.Timings.Total
	}
	var sum int64
	for _, st := range r.Steps {
		sum += st.DurationMS
	}
	return sum
}

// seconds renders milliseconds as JUnit's decimal seconds, "1.234".
func seconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}
