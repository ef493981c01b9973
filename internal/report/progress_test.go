package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func TestProgress(t *testing.T) {
	events := []struct {
		note bool
		ev   rollback.Event
	}{
		{false, rollback.Event{Level: rollback.LevelRun, Step: "deploy"}},
		{false, rollback.Event{Level: rollback.LevelPass, Step: "deploy", Message: "deployed"}},
		{false, rollback.Event{Level: rollback.LevelRun, Step: "detect-tag"}},
		{true, rollback.Event{Level: rollback.LevelInfo, Step: "probe 1", Message: "GET http://x/h/: unhealthy", Duration: 3 * time.Millisecond}},
	}
	for _, tt := range []struct {
		tty  bool
		want string
	}{
		{false, "[PASS] deploy: deployed\n[INFO] probe 1 (3ms): GET http://x/h/: unhealthy\n"},
		{true, "\r\033[K… deploy\r\033[K[PASS] deploy: deployed\n\r\033[K… detect-tag\r\033[K… probe 1: GET http://x/h/: unhealthy\r\033[K"},
	} {
		var buf bytes.Buffer
		p := &report.Progress{W: &buf, TTY: tt.tty}
		for _, e := range events {
			if e.note {
				p.Note(e.ev)
			} else {
				p.Event(e.ev)
			}
		}
		p.Close()
		if got := buf.String(); got != tt.want {
			t.Errorf("Progress(tty=%v) wrote %q, want %q", tt.tty, got, tt.want)
		}
	}
}

func TestProgressVerbose(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 4, 5, 6e6, time.UTC)
	var buf bytes.Buffer
	p := &report.Progress{W: &buf, Verbose: true}
	p.Event(rollback.Event{Time: at, Level: rollback.LevelRun, Step: "deploy"})
	p.Event(rollback.Event{Time: at, Level: rollback.LevelPass, Step: "deploy", Message: "deployed"})
	want := "03:04:05.006 [INFO] deploy: started\n03:04:05.006 [PASS] deploy: deployed\n"
	if got := buf.String(); got != want {
		t.Errorf("verbose progress wrote %q, want %q", got, want)
	}
}

func TestProgressLiveLineIsCut(t *testing.T) {
	var buf bytes.Buffer
	p := &report.Progress{W: &buf, TTY: true}
	p.Note(rollback.Event{Step: "probe 1", Message: strings.Repeat("x", 500) + "\x1b[2J"})
	got := strings.TrimPrefix(buf.String(), "\r\033[K")
	if n := len([]rune(got)); n > 100 {
		t.Errorf("live line is %d runes, want at most 100: %q", n, got)
	}
	if strings.Contains(got, "\x1b") {
		t.Errorf("live line carries an escape: %q", got)
	}
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	l := report.NewLog(&buf, "test", "")
	l.Event(rollback.Event{Time: time.Now(), Level: rollback.LevelFail, Step: "api: detect", Message: "no\nfailure", Duration: 1500 * time.Millisecond})
	l.Note(rollback.Event{Level: rollback.LevelInfo, Step: "probe 2", Message: "GET x"})
	l.Result(&rollback.Report{Command: "test", Result: rollback.ResultPass, ExitCode: 0,
		Service: rollback.ReportService{Name: "api"}, Timings: rollback.Timings{Restore: 15, Total: 1200}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	var recs []map[string]any
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		recs = append(recs, m)
	}
	for key, want := range map[string]any{"severity": "ERROR", "event": "step", "service": "api", "step": "detect",
		"status": "FAIL", "duration_ms": 1500.0, "message": "no failure", "command": "test"} {
		if got := recs[0][key]; got != want {
			t.Errorf("step record %s = %v, want %v", key, got, want)
		}
	}
	if recs[0]["time"] == nil || recs[0]["level"] != nil || recs[0]["msg"] != nil {
		t.Errorf("step record keys: %v (want time, severity, message; no level, msg)", recs[0])
	}
	if got := recs[1]["severity"]; got != "DEBUG" {
		t.Errorf("note severity = %v, want DEBUG", got)
	}
	res := recs[2]
	if res["event"] != "result" || res["result"] != "pass" || res["exit_code"] != 0.0 || res["severity"] != "INFO" {
		t.Errorf("result record = %v", res)
	}
	if tm, ok := res["timings_ms"].(map[string]any); !ok || tm["restore"] != 15.0 || tm["total"] != 1200.0 {
		t.Errorf("result timings = %v", res["timings_ms"])
	}
}
