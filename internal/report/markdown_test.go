package report_test

import (
	"strings"
	"testing"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func TestMarkdownGolden(t *testing.T) {
	for name, r := range map[string]*rollback.Report{
		"pass": passReport(), "fail": failReport(), "aborted": abortedReport(), "error": errorReport(),
	} {
		t.Run(name, func(t *testing.T) {
			golden(t, "markdown_"+name+".golden", report.Markdown(r))
		})
	}
}

func TestMarkdown(t *testing.T) {
	tests := []struct {
		name      string
		r         *rollback.Report
		want      []string
		dontWant  []string
		wantLines int // rows in the step table, header and rule included
	}{
		{
			name: "pass",
			r:    passReport(),
			want: []string{
				"## ✅ PASS: runrollback test api\n",
				"| step | status | duration | detail |\n| --- | --- | --- | --- |\n",
				"| detect | ✅ pass | 100ms | failure seen \\| 503 \\<b\\>down\\</b\\> |\n",
				"| cleanup | ⚠️ warn | 239ms |",
				"**Timings:** detect on tag 200ms · detect after shift 100ms · restore 15ms · verify 30ms · total 1.2s",
				"**Exposure:** 100% of traffic for 310ms",
				"**Traffic after:** `api-00001-abc=100, api-00001-abc=0@last-good` (restored: yes)",
				"**Revisions created:** `api-drill-k3x9q2`, `api-00003-fgh` · **deleted:** `api-drill-k3x9q2`",
				"**API calls:** 12 reads, 5 writes",
			},
			dontWant:  []string{"**Error:**", "**Hint:**", "<b>"},
			wantLines: 2 + 9,
		},
		{
			name:      "fail",
			r:         failReport(),
			want:      []string{"## ❌ FAIL: runrollback test api\n", "| shift | ⏭️ skipped | – | not reached |", "**Hint:** make the app honour RUNROLLBACK\\_BREAK"},
			wantLines: 2 + 9,
		},
		{
			name:      "aborted",
			r:         abortedReport(),
			want:      []string{"## ⚠️ ABORTED: runrollback test api\n", "**Traffic before:** `LATEST=100`"},
			wantLines: 2 + 2,
		},
		{
			name: "error",
			r:    errorReport(),
			want: []string{"## ❌ ERROR (restore not confirmed): runrollback test api\n", "(restored: no)", "| restore | ❌ fail | 2m00.0s |"},
		},
		{
			name: "untrusted text cannot break the table or inject markup",
			r: &rollback.Report{Command: "probe", Result: rollback.ResultFail,
				Steps: []rollback.StepReport{{Name: "probe", Status: rollback.StepFail, Detail: "a|b\n| x | y |\n![img](https://evil/x.png) <img src=x> \x1b[31m"}},
				Error: "line\n## heading"},
			want: []string{
				"| probe | ❌ fail | 0ms | a\\|b \\| x \\| y \\| \\!\\[img\\](https://evil/x.png) \\<img src=x\\> \\\\x1b\\[31m |\n",
				"**Error:** line \\#\\# heading",
			},
			dontWant:  []string{" ![", " <img", "\x1b", "\n## heading"},
			wantLines: 2 + 1,
		},
		{
			name:     "no steps, no table",
			r:        &rollback.Report{Command: "status", Result: rollback.ResultPass, Service: rollback.ReportService{Name: "web"}},
			want:     []string{"## ✅ PASS: runrollback status web\n"},
			dontWant: []string{"| step |", "**Revisions created:**"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := report.Markdown(tt.r)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Markdown(%s) = \n%s\nwant it to contain %q", tt.name, got, w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(got, w) {
					t.Errorf("Markdown(%s) = \n%s\nwant no %q", tt.name, got, w)
				}
			}
			if !strings.HasSuffix(got, "\n") {
				t.Errorf("Markdown(%s) does not end in a newline", tt.name)
			}
			if tt.wantLines > 0 {
				rows := 0
				for _, line := range strings.Split(got, "\n") {
					if strings.HasPrefix(line, "| ") {
						rows++
						// Each table row has exactly 5 unescaped pipes: 4 cells.
						if n := strings.Count(line, "|") - strings.Count(line, `\|`); n != 5 {
							t.Errorf("Markdown(%s) row %q has %d unescaped |, want 5", tt.name, line, n)
						}
					}
				}
				if rows != tt.wantLines {
					t.Errorf("Markdown(%s) has %d table lines, want %d", tt.name, rows, tt.wantLines)
				}
			}
		})
	}
}
