package report_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func TestLine(t *testing.T) {
	tests := []struct {
		name  string
		ev    rollback.Event
		color bool
		want  string
	}{
		{
			name: "pass with duration",
			ev:   rollback.Event{Level: rollback.LevelPass, Step: "deploy", Message: "revision api-drill-x deployed", Duration: 123 * time.Millisecond},
			want: "[PASS] deploy (123ms): revision api-drill-x deployed",
		},
		{
			name: "info without duration",
			ev:   rollback.Event{Level: rollback.LevelInfo, Step: "shift", Message: "skipped: --traffic-percent 0"},
			want: "[INFO] shift: skipped: --traffic-percent 0",
		},
		{
			name: "fail, duration above a second",
			ev:   rollback.Event{Level: rollback.LevelFail, Step: "detect-tag", Message: "answered healthy", Duration: 1234 * time.Millisecond},
			want: "[FAIL] detect-tag (1.2s): answered healthy",
		},
		{
			name: "warn, minutes",
			ev:   rollback.Event{Level: rollback.LevelWarn, Step: "cleanup", Message: "slow", Duration: 125*time.Second + 340*time.Millisecond},
			want: "[WARN] cleanup (2m05.3s): slow",
		},
		{
			name: "rounds to the millisecond",
			ev:   rollback.Event{Level: rollback.LevelPass, Step: "lease", Message: "ok", Duration: 1499 * time.Microsecond},
			want: "[PASS] lease (1ms): ok",
		},
		{
			name: "999.6ms shows as seconds",
			ev:   rollback.Event{Level: rollback.LevelPass, Step: "lease", Message: "ok", Duration: 999600 * time.Microsecond},
			want: "[PASS] lease (1.0s): ok",
		},
		{
			name: "no step",
			ev:   rollback.Event{Level: rollback.LevelInfo, Message: "hello"},
			want: "[INFO] hello",
		},
		{
			name: "empty level is INFO",
			ev:   rollback.Event{Step: "preflight", Message: "reading"},
			want: "[INFO] preflight: reading",
		},
		{
			name:  "pass in green",
			ev:    rollback.Event{Level: rollback.LevelPass, Step: "verify", Message: "ok", Duration: 30 * time.Millisecond},
			color: true,
			want:  "\x1b[32m[PASS]\x1b[0m verify (30ms): ok",
		},
		{
			name:  "fail in red",
			ev:    rollback.Event{Level: rollback.LevelFail, Step: "verify", Message: "no"},
			color: true,
			want:  "\x1b[31m[FAIL]\x1b[0m verify: no",
		},
		{
			name:  "warn in yellow",
			ev:    rollback.Event{Level: rollback.LevelWarn, Step: "restore", Message: "stopping"},
			color: true,
			want:  "\x1b[33m[WARN]\x1b[0m restore: stopping",
		},
		{
			name:  "info stays plain",
			ev:    rollback.Event{Level: rollback.LevelInfo, Step: "shift", Message: "skipped"},
			color: true,
			want:  "[INFO] shift: skipped",
		},
		{
			name: "ANSI escape in the message is shown, not sent",
			ev:   rollback.Event{Level: rollback.LevelFail, Step: "detect", Message: "body: \x1b[31mred\x1b[0m"},
			want: `[FAIL] detect: body: \x1b[31mred\x1b[0m`,
		},
		{
			name: "workflow command in the message stays inside the line",
			ev:   rollback.Event{Level: rollback.LevelFail, Step: "detect", Message: "::error::owned"},
			want: "[FAIL] detect: ::error::owned",
		},
		{
			name: "newlines become spaces",
			ev:   rollback.Event{Level: rollback.LevelFail, Step: "detect", Message: "line one\r\n\n::set-output name=x::y\nline three\n"},
			want: "[FAIL] detect: line one ::set-output name=x::y line three",
		},
		{
			name:  "colour codes in the message are escaped even with colour on",
			ev:    rollback.Event{Level: rollback.LevelPass, Step: "probe", Message: "\x1b]0;title\x07"},
			color: true,
			want:  "\x1b[32m[PASS]\x1b[0m probe: \\x1b]0;title\\x07",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := report.Line(tt.ev, tt.color)
			if got != tt.want {
				t.Errorf("Line(%+v, %v) = %q, want %q", tt.ev, tt.color, got, tt.want)
			}
		})
	}
}

func TestLineTruncatesLongMessages(t *testing.T) {
	ev := rollback.Event{Level: rollback.LevelFail, Step: "detect", Message: strings.Repeat("x", 5000)}
	got := report.Line(ev, false)
	msg := strings.TrimPrefix(got, "[FAIL] detect: ")
	if n := utf8.RuneCountInString(msg); n != report.MaxLine {
		t.Errorf("Line(5000 x) message has %d runes, want %d", n, report.MaxLine)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("Line(5000 x) = %q…, want it to end in …", got[:40])
	}
}

func TestLineNeverStartsAWorkflowCommand(t *testing.T) {
	for _, s := range []string{"::error::x", "  ::error::x", "\n::error::x", "\x00::x"} {
		for _, ev := range []rollback.Event{
			{Message: s},
			{Step: s, Message: s},
			{Level: rollback.Level(s), Step: s, Message: s},
		} {
			got := report.Line(ev, false)
			if !strings.HasPrefix(got, "[") || strings.Contains(got, "\n") {
				t.Errorf("Line(%+v) = %q, want one line starting with [", ev, got)
			}
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"plain text", 0, "plain text"},
		{"  padded \n", 0, "padded"},
		{"a\nb\r\nc\rd", 0, "a b c d"},
		{"a\n\n\nb", 0, "a b"},
		{"tab\there", 0, "tab here"},
		{"\x1b[2J\x1b[Hclear", 0, `\x1b[2J\x1b[Hclear`},
		{"bell\x07 nul\x00 del\x7f", 0, `bell\x07 nul\x00 del\x7f`},
		{"c1 \u009b31m", 0, `c1 \u009b31m`},
		{"bidi \u202eevil\u202c", 0, `bidi \u202eevil\u202c`},
		{"bad \xff utf8", 0, `bad \xff utf8`},
		{"unicode ✅ ünïcødé", 0, "unicode ✅ ünïcødé"},
		{"::error::x", 0, `\x3a:error::x`},
		{"  ::error::x", 0, `\x3a:error::x`},
		{"\n::warning::x", 0, `\x3a:warning::x`},
		{"a::b", 0, "a::b"},
		{"x ##[set-output name=a]b", 0, `x #\x23[set-output name=a]b`},
		{"###[error]", 0, `##\x23[error]`},
		{"##", 0, "##"},
		{"abcdef", 4, "abc…"},
		{"abcd", 4, "abcd"},
		{"äöüßé", 3, "äö…"},
		{"ab\x1bcdef", 4, "ab…"}, // never half an escape
		{"ab cdef", 4, "ab…"},    // no space before the ellipsis
		{"abcdef", 1, "…"},
		{"", 10, ""},
	}
	for _, tt := range tests {
		got := report.Sanitize(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("Sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"::error::x", "a\nb", "\x1b[31m", "##[x]", "\u202e", "\xff", "abc"} {
		f.Add(s, 0)
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit %= 500
		got := report.Sanitize(s, limit)
		if strings.ContainsAny(got, "\n\r\x1b\x00\u2028\u2029\u202e") {
			t.Errorf("Sanitize(%q, %d) = %q, has a control character", s, limit, got)
		}
		if strings.HasPrefix(strings.TrimSpace(got), "::") || strings.Contains(got, "##[") {
			t.Errorf("Sanitize(%q, %d) = %q, can start a workflow command", s, limit, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Sanitize(%q, %d) = %q, not valid UTF-8", s, limit, got)
		}
		if n := utf8.RuneCountInString(got); limit > 0 && n > limit {
			t.Errorf("Sanitize(%q, %d) has %d runes, want at most %d", s, limit, n, limit)
		}
	})
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name string
		r    *rollback.Report
		want string
	}{
		{
			name: "pass",
			r:    passReport(),
			want: "PASS  test api: detected in 200ms on the tag URL, 100ms after the shift; restored in 15ms; verified in 30ms; total 1.2s\n" +
				"traffic: api-00001-abc=100, api-00001-abc=0@last-good → api-00001-abc=100, api-00001-abc=0@last-good; traffic restored: yes\n" +
				"exposure: 100% of traffic for 310ms",
		},
		{
			name: "pass without a shift",
			r: func() *rollback.Report {
				r := passReport()
				r.Steps[4].Status, r.Steps[5].Status = rollback.StepSkipped, rollback.StepSkipped
				r.Timings.Detect = 0
				r.Exposure = rollback.Exposure{}
				return r
			}(),
			want: "PASS  test api: detected in 200ms on the tag URL; restored in 15ms; verified in 30ms; total 1.2s\n" +
				"traffic: api-00001-abc=100, api-00001-abc=0@last-good → api-00001-abc=100, api-00001-abc=0@last-good; traffic restored: yes",
		},
		{
			name: "fail with hint",
			r:    failReport(),
			want: "FAIL  test api: the broken revision answered healthy on its tag URL after 5 probes (200 OK): the app ignored the break, or the probe is blind\n" +
				"hint: make the app honour RUNROLLBACK_BREAK (see README: 'Make your app drillable')\n" +
				"traffic: api-00001-abc=100, api-00001-abc=0@last-good → api-00001-abc=100, api-00001-abc=0@last-good; traffic restored: yes",
		},
		{
			name: "aborted",
			r:    abortedReport(),
			want: `ABORTED  test api: aborted: service "api" is not Ready: revision failed` + "\n" +
				"traffic: LATEST=100 → LATEST=100; traffic restored: yes",
		},
		{
			name: "error",
			r:    errorReport(),
			want: "ERROR  test api: restore not confirmed: unavailable: the Cloud Run API did not answer\n" +
				"hint: run: runrollback recover --project proj --region europe-west1 --service api\n" +
				"traffic: api-00001-abc=100, api-00001-abc=0@last-good → api-00001-abc=0, api-drill-k3x9q2=100@drill-k3x9q2; traffic restored: no\n" +
				"exposure: 100% of traffic for 310ms",
		},
		{
			name: "error names the missing restore",
			r: &rollback.Report{Command: "rollback", Result: rollback.ResultError, Service: rollback.ReportService{Name: "web"},
				Error: "write traffic: conflict"},
			want: "ERROR  rollback web: restore not confirmed: write traffic: conflict",
		},
		{
			name: "guard pass without steps, not a drill",
			r: &rollback.Report{Command: "guard", Result: rollback.ResultPass, Service: rollback.ReportService{Name: "web"},
				Timings: rollback.Timings{Verify: 40, Total: 90},
				Before:  &rollback.ReportState{Traffic: rollback.Split{{Revision: "web-2", Percent: 100}}},
				After:   &rollback.ReportState{Traffic: rollback.Split{{Revision: "web-2", Percent: 100, Tag: "last-good"}}}},
			want: "PASS  guard web: verified in 40ms; total 90ms\ntraffic: web-2=100 → web-2=100@last-good",
		},
		{
			name: "untrusted error text",
			r: &rollback.Report{Command: "probe", Result: rollback.ResultFail,
				Error: "got \x1b[31m500\x1b[0m\n::error::x", Hint: "\n::warning::y"},
			want: "FAIL  probe: got \\x1b[31m500\\x1b[0m ::error::x\nhint: ::warning::y",
		},
		{
			name: "pass with nothing measured",
			r:    &rollback.Report{Command: "recover", Result: rollback.ResultPass},
			want: "PASS  recover: ok",
		},
		{
			name: "unknown result",
			r:    &rollback.Report{Result: "::weird"},
			want: "UNKNOWN  runrollback: unknown",
		},
		{
			name: "nil",
			want: "ERROR  no report",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := report.Verdict(tt.r, false)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verdict(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
			for _, line := range strings.Split(got, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "::") {
					t.Errorf("Verdict(%s) has a line starting with '::': %q", tt.name, line)
				}
			}
		})
	}
}

func TestVerdictColor(t *testing.T) {
	tests := []struct {
		result, wantPrefix string
	}{
		{rollback.ResultPass, "\x1b[32mPASS\x1b[0m  "},
		{rollback.ResultFail, "\x1b[31mFAIL\x1b[0m  "},
		{rollback.ResultAborted, "\x1b[33mABORTED\x1b[0m  "},
		{rollback.ResultError, "\x1b[31mERROR\x1b[0m  "},
	}
	for _, tt := range tests {
		r := &rollback.Report{Command: "test", Result: tt.result}
		got := report.Verdict(r, true)
		if !strings.HasPrefix(got, tt.wantPrefix) {
			t.Errorf("Verdict(result %s, color) = %q, want prefix %q", tt.result, got, tt.wantPrefix)
		}
		if strings.Count(got, "\x1b") != 2 {
			t.Errorf("Verdict(result %s, color) = %q, want only the word coloured", tt.result, got)
		}
	}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{
			name:   "aligned by the widest cell",
			header: []string{"REVISION", "TRAFFIC", "TAGS", "READY"},
			rows: [][]string{
				{"api-00001-abc", "100%", "last-good", "yes"},
				{"api-00002-def", "0%", "", "no"},
			},
			want: "" +
				"REVISION       TRAFFIC  TAGS       READY\n" +
				"api-00001-abc  100%     last-good  yes\n" +
				"api-00002-def  0%                  no\n",
		},
		{
			name:   "widths in runes, no trailing spaces",
			header: []string{"NAME", "NOTE"},
			rows:   [][]string{{"ünï", "✅"}, {"a", ""}, {"bb"}},
			want: "" +
				"NAME  NOTE\n" +
				"ünï   ✅\n" +
				"a\n" +
				"bb\n",
		},
		{
			name: "rows only, untrusted cells",
			rows: [][]string{{"::error::x", "a\nb"}, {"c", "\x1b[1m"}},
			want: "" +
				`\x3a:error::x  a b` + "\n" +
				`c              \x1b[1m` + "\n",
		},
		{
			name: "nothing",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := report.Table(&buf, tt.header, tt.rows); err != nil {
				t.Fatalf("Table() = %v", err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("Table(%v, %v) mismatch (-want +got):\n%s", tt.header, tt.rows, diff)
			}
		})
	}
}
