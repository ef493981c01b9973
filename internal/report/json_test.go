package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func TestJSONRoundTrips(t *testing.T) {
	for name, r := range map[string]*rollback.Report{
		"pass": passReport(), "fail": failReport(), "aborted": abortedReport(), "error": errorReport(),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := report.JSON(&buf, r); err != nil {
				t.Fatalf("JSON() = %v", err)
			}
			if !strings.HasSuffix(buf.String(), "}\n") || !strings.HasPrefix(buf.String(), "{\n  \"schema\"") {
				t.Errorf("JSON() = %q…, want one indented object and a newline", buf.String()[:min(40, buf.Len())])
			}
			var got rollback.Report
			dec := json.NewDecoder(&buf)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("json.Decode(JSON()) = %v", err)
			}
			if dec.More() {
				t.Errorf("JSON() wrote more than one value")
			}
			if diff := cmp.Diff(r, &got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("JSON() round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONKeys(t *testing.T) {
	var buf bytes.Buffer
	if err := report.JSON(&buf, passReport()); err != nil {
		t.Fatalf("JSON() = %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("json.Unmarshal(JSON()) = %v", err)
	}
	for _, key := range []string{
		"schema", "command", "result", "exit_code", "service", "mode", "before", "broken_revision", "last_good",
		"after", "traffic_restored", "timings_ms", "exposure", "api_calls", "steps",
	} {
		if _, ok := got[key]; !ok {
			t.Errorf("JSON() has no key %q; keys: %v", key, keys(got))
		}
	}
	if got["schema"] != "runrollback.report/v1" {
		t.Errorf(`JSON() schema = %v, want "runrollback.report/v1"`, got["schema"])
	}
	wantTimings := map[string]any{"detect_tag": 200.0, "detect": 100.0, "restore": 15.0, "verify": 30.0, "total": 1234.0}
	if diff := cmp.Diff(wantTimings, got["timings_ms"]); diff != "" {
		t.Errorf("JSON() timings_ms mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"reads": 12.0, "writes": 5.0}, got["api_calls"]); diff != "" {
		t.Errorf("JSON() api_calls mismatch (-want +got):\n%s", diff)
	}
	step := got["steps"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "status", "started_at", "duration_ms", "detail"} {
		if _, ok := step[key]; !ok {
			t.Errorf("JSON() steps[0] has no key %q; keys: %v", key, keys(step))
		}
	}
	entry := got["before"].(map[string]any)["traffic"].([]any)[1].(map[string]any)
	if diff := cmp.Diff(map[string]any{"revision": "api-00001-abc", "percent": 0.0, "tag": "last-good"}, entry); diff != "" {
		t.Errorf("JSON() before.traffic[1] mismatch (-want +got):\n%s", diff)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestJSONWritesEmptyListsNotNull(t *testing.T) {
	r := &rollback.Report{Command: "status", Result: rollback.ResultPass, Before: &rollback.ReportState{}}
	var buf bytes.Buffer
	if err := report.JSON(&buf, r); err != nil {
		t.Fatalf("JSON() = %v", err)
	}
	out := buf.String()
	for _, want := range []string{
		`"schema": "runrollback.report/v1"`, `"last_good": []`, `"revisions_created": []`,
		`"revisions_deleted": []`, `"steps": []`, `"traffic": []`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON(bare report) = %s\nwant it to contain %s", out, want)
		}
	}
	if strings.Contains(out, "null") {
		t.Errorf("JSON(bare report) = %s\nwant no null", out)
	}
	if r.Schema != "" || r.LastGood != nil || r.Before.Traffic != nil {
		t.Errorf("JSON() changed its argument: %+v", r)
	}
}

func TestJSONKeepsUntrustedTextExact(t *testing.T) {
	r := passReport()
	r.Error = "body: \x1b[31m<b>x</b>\n::error::y ###[set-output name=a]b"
	var buf bytes.Buffer
	if err := report.JSON(&buf, r); err != nil {
		t.Fatalf("JSON() = %v", err)
	}
	if strings.Contains(buf.String(), "\x1b") {
		t.Errorf("JSON() wrote a raw ESC byte")
	}
	if strings.Contains(buf.String(), "##[") {
		t.Errorf("JSON() wrote a legacy workflow command opener ##[")
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "::") {
			t.Errorf("JSON() wrote a line starting with '::': %q", line)
		}
	}
	var got rollback.Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("json.Unmarshal(JSON()) = %v", err)
	}
	if got.Error != r.Error {
		t.Errorf("JSON() error round trip = %q, want %q", got.Error, r.Error)
	}
}

func TestJSONNil(t *testing.T) {
	if err := report.JSON(&bytes.Buffer{}, nil); err == nil {
		t.Errorf("JSON(nil) = nil, want an error")
	}
	if err := report.JSONFleet(&bytes.Buffer{}, nil); err == nil {
		t.Errorf("JSONFleet(nil) = nil, want an error")
	}
}

func TestJSONFleet(t *testing.T) {
	f := &report.Fleet{
		Command:  "test",
		Result:   rollback.ResultFail,
		ExitCode: 1,
		Reports:  []*rollback.Report{passReport(), nil, failReport()},
	}
	var buf bytes.Buffer
	if err := report.JSONFleet(&buf, f); err != nil {
		t.Fatalf("JSONFleet() = %v", err)
	}
	if !strings.HasSuffix(buf.String(), "}\n") {
		t.Errorf("JSONFleet() does not end in a newline")
	}
	var keysGot map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &keysGot); err != nil {
		t.Fatalf("json.Unmarshal(JSONFleet()) = %v", err)
	}
	for _, key := range []string{"schema", "command", "result", "exit_code", "reports"} {
		if _, ok := keysGot[key]; !ok {
			t.Errorf("JSONFleet() has no key %q", key)
		}
	}
	var got report.Fleet
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("json.Unmarshal(JSONFleet()) = %v", err)
	}
	want := report.Fleet{
		Schema: rollback.ReportSchema, Command: "test", Result: rollback.ResultFail, ExitCode: 1,
		Reports: []*rollback.Report{passReport(), failReport()},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("JSONFleet() round trip mismatch (-want +got):\n%s", diff)
	}
	if f.Schema != "" || len(f.Reports) != 3 {
		t.Errorf("JSONFleet() changed its argument: %+v", f)
	}
}
