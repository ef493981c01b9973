package report_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

// The JUnit shape as a reader sees it.
type xSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []xSuite `xml:"testsuite"`
}

type xSuite struct {
	Name     string  `xml:"name,attr"`
	Tests    int     `xml:"tests,attr"`
	Failures int     `xml:"failures,attr"`
	Skipped  int     `xml:"skipped,attr"`
	Time     string  `xml:"time,attr"`
	Cases    []xCase `xml:"testcase"`
}

type xCase struct {
	Name      string `xml:"name,attr"`
	Classname string `xml:"classname,attr"`
	Time      string `xml:"time,attr"`
	Failure   *struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	} `xml:"failure"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
}

func parseJUnit(t *testing.T, reports ...*rollback.Report) (string, xSuites) {
	t.Helper()
	var buf bytes.Buffer
	if err := report.JUnit(&buf, reports...); err != nil {
		t.Fatalf("JUnit() = %v", err)
	}
	var got xSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("xml.Unmarshal(JUnit()) = %v\n%s", err, buf.String())
	}
	return buf.String(), got
}

// caseSummary is one testcase as "name classname time status[: message]".
func caseSummary(c xCase) string {
	s := c.Name + " " + c.Classname + " " + c.Time
	switch {
	case c.Failure != nil:
		s += " failure: " + c.Failure.Message
	case c.Skipped != nil:
		s += " skipped: " + c.Skipped.Message
	default:
		s += " pass"
	}
	return s
}

func TestJUnit(t *testing.T) {
	out, got := parseJUnit(t, passReport(), failReport())
	golden(t, "junit.golden", out)

	if len(got.Suites) != 2 {
		t.Fatalf("JUnit(2 reports) has %d suites, want 2", len(got.Suites))
	}
	if got.Suites[0].Name != "runrollback test api" {
		t.Errorf("JUnit() suite name = %q, want %q", got.Suites[0].Name, "runrollback test api")
	}
	var gotCases []string
	for _, c := range got.Suites[1].Cases {
		gotCases = append(gotCases, caseSummary(c))
	}
	wantCases := []string{
		"preflight runrollback.test.api 0.120 pass",
		"lease runrollback.test.api 0.040 pass",
		"deploy runrollback.test.api 0.300 pass",
		"detect-tag runrollback.test.api 5.000 failure: " + failReport().Error,
		"shift runrollback.test.api 0.000 skipped: not reached",
		"detect runrollback.test.api 0.000 skipped: not reached",
		"restore runrollback.test.api 0.020 pass",
		"verify runrollback.test.api 0.040 pass",
		"cleanup runrollback.test.api 0.580 pass",
	}
	if diff := cmp.Diff(wantCases, gotCases); diff != "" {
		t.Errorf("JUnit(fail report) testcases mismatch (-want +got):\n%s", diff)
	}
	s := got.Suites[1]
	if s.Tests != 9 || s.Failures != 1 || s.Skipped != 2 || s.Time != "6.100" {
		t.Errorf("JUnit(fail report) suite = tests %d failures %d skipped %d time %s, want 9 1 2 6.100", s.Tests, s.Failures, s.Skipped, s.Time)
	}
	if got.Tests != 18 || got.Failures != 1 || got.Skipped != 2 {
		t.Errorf("JUnit() testsuites = tests %d failures %d skipped %d, want 18 1 2", got.Tests, got.Failures, got.Skipped)
	}
	if len(got.Suites[0].Cases) != len(passReport().Steps) {
		t.Errorf("JUnit(pass report) has %d testcases, want one per step (%d)", len(got.Suites[0].Cases), len(passReport().Steps))
	}
}

func TestJUnitFailsAResultWithoutAFailedStep(t *testing.T) {
	r := &rollback.Report{Command: "guard", Result: rollback.ResultFail, ExitCode: 1,
		Service: rollback.ReportService{Name: "web"}, Error: "unhealthy: 503", Hint: "look at the logs"}
	_, got := parseJUnit(t, r)
	if len(got.Suites) != 1 || len(got.Suites[0].Cases) != 1 {
		t.Fatalf("JUnit(no steps) = %+v, want one suite with one testcase", got)
	}
	c := got.Suites[0].Cases[0]
	if c.Name != "result" || c.Classname != "runrollback.guard.web" || c.Failure == nil || c.Failure.Message != "unhealthy: 503" {
		t.Errorf("JUnit(no steps) testcase = %s, want result runrollback.guard.web failure: unhealthy: 503", caseSummary(c))
	}
	if c.Failure != nil && !strings.Contains(c.Failure.Text, "hint: look at the logs") {
		t.Errorf("JUnit(no steps) failure text = %q, want the hint", c.Failure.Text)
	}
}

func TestJUnitEscapes(t *testing.T) {
	r := failReport()
	r.Steps[3].Detail = "<failure> & \"quotes\" ]]> \x1b[31m\x00"
	out, got := parseJUnit(t, r)
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\x00") {
		t.Errorf("JUnit() wrote raw control characters")
	}
	want := `<failure> & "quotes" ]]> \x1b[31m\x00`
	if msg := got.Suites[0].Cases[3].Failure.Message; msg != want {
		t.Errorf("JUnit() failure message = %q, want %q", msg, want)
	}
}

func TestJUnitNoReports(t *testing.T) {
	_, got := parseJUnit(t)
	if len(got.Suites) != 0 || got.Tests != 0 {
		t.Errorf("JUnit() = %+v, want an empty <testsuites>", got)
	}
}
