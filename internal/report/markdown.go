package report

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Markdown renders r as a GitHub step summary (GITHUB_STEP_SUMMARY), ending in
// a newline: a heading with the verdict (✅ pass, ❌ fail or error, ⚠️ aborted),
// the service and mode, a table of steps (step | status | duration | detail),
// then the timings, exposure, traffic before and after, revisions created and
// deleted, API calls, warnings, error and hint. All text is sanitized and
// escaped for Markdown (|, *, _, `, [, ], <, >, \ and friends), so report
// text can neither break the table nor inject links, images or HTML.
func Markdown(r *rollback.Report) string {
	var b strings.Builder
	if r == nil {
		b.WriteString("## ❌ ERROR: no report\n")
		return b.String()
	}
	icon, word := "❌", "ERROR"
	switch r.Result {
	case rollback.ResultPass:
		icon, word = "✅", "PASS"
	case rollback.ResultFail:
		word = "FAIL"
	case rollback.ResultAborted:
		icon, word = "⚠️", "ABORTED"
	case rollback.ResultError:
		word = "ERROR (restore not confirmed)"
	default:
		icon, word = "⚠️", "UNKNOWN"
	}
	fmt.Fprintf(&b, "## %s %s: %s\n\n", icon, word, md(strings.TrimSpace("runrollback "+subject(r)), 0))

	if about := aboutLine(r); about != "" {
		b.WriteString(about + "\n\n")
	}

	if len(r.Steps) > 0 {
		b.WriteString("| step | status | duration | detail |\n")
		b.WriteString("| --- | --- | --- | --- |\n")
		for _, st := range r.Steps {
			dur := formatMS(st.DurationMS)
			if st.Status == rollback.StepSkipped && st.DurationMS == 0 {
				dur = "–"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", md(st.Name, 64), stepStatus(st.Status), dur, md(st.Detail, MaxLine))
		}
		b.WriteString("\n")
	}

	b.WriteString(sectionsMD(r))

	var items []string
	if t := timingsText(r); t != "" {
		items = append(items, "**Timings:** "+t)
	}
	if r.Exposure.Percent > 0 || r.Exposure.MS > 0 {
		items = append(items, "**Exposure:** "+exposureText(r.Exposure))
	}
	if r.Before != nil {
		items = append(items, "**Traffic before:** "+splitMD(r.Before.Traffic))
	}
	if r.After != nil || r.Before != nil {
		after := "unknown"
		if r.After != nil {
			after = splitMD(r.After.Traffic)
		}
		if r.Command == "test" {
			after += " (restored: " + yesNo(r.TrafficRestored) + ")"
		}
		items = append(items, "**Traffic after:** "+after)
	}
	if len(r.RevisionsCreated) > 0 || len(r.RevisionsDeleted) > 0 || r.Command == "test" {
		items = append(items, "**Revisions created:** "+listMD(r.RevisionsCreated)+" · **deleted:** "+listMD(r.RevisionsDeleted))
	}
	if r.APICalls.Reads > 0 || r.APICalls.Writes > 0 {
		items = append(items, fmt.Sprintf("**API calls:** %d reads, %d writes", r.APICalls.Reads, r.APICalls.Writes))
	}
	for _, w := range r.Warnings {
		items = append(items, "**Warning:** "+md(w, maxVerdict))
	}
	if e := md(r.Error, maxVerdict); e != "" {
		items = append(items, "**Error:** "+e)
	}
	if h := md(r.Hint, maxVerdict); h != "" {
		items = append(items, "**Hint:** "+h)
	}
	for _, it := range items {
		b.WriteString("- " + it + "\n")
	}
	return b.String()
}

// aboutLine names the service and, for a drill, its mode.
func aboutLine(r *rollback.Report) string {
	var parts []string
	if r.Service.Project != "" {
		parts = append(parts, "project "+code(r.Service.Project))
	}
	if r.Service.Region != "" {
		parts = append(parts, "region "+code(r.Service.Region))
	}
	if m := r.Mode; m != nil {
		if m.Break != "" {
			parts = append(parts, "break "+code(m.Break))
		}
		parts = append(parts, fmt.Sprintf("%d%% of traffic to the broken revision", m.TrafficPercent))
		if m.Local {
			parts = append(parts, "local fake Cloud Run")
		}
	}
	return strings.Join(parts, " · ")
}

func stepStatus(status string) string {
	switch status {
	case rollback.StepPass:
		return "✅ pass"
	case rollback.StepFail:
		return "❌ fail"
	case rollback.StepSkipped:
		return "⏭️ skipped"
	case rollback.StepWarn:
		return "⚠️ warn"
	}
	return md(status, 32)
}

// detectLabel names timings_ms.detect: after the drill's shift, or, for a
// guard, the probing of the service (or of a candidate's tag URL).
func detectLabel(r *rollback.Report) string {
	if r.Command == "guard" {
		return "probing"
	}
	return "detect after shift"
}

// timingsText lists the timings that were measured.
func timingsText(r *rollback.Report) string {
	t := r.Timings
	var parts []string
	for _, x := range []struct {
		label, step string
		ms          int64
	}{
		{"detect on tag", rollback.StepDetectTag, t.DetectTag},
		{detectLabel(r), rollback.StepDetect, t.Detect},
		{"restore", rollback.StepRestore, t.Restore},
		{"verify", rollback.StepVerify, t.Verify},
	} {
		if stepRan(r, x.step, x.ms) {
			parts = append(parts, x.label+" "+formatMS(x.ms))
		}
	}
	if t.Total > 0 || len(parts) > 0 {
		parts = append(parts, "total "+formatMS(t.Total))
	}
	return strings.Join(parts, " · ")
}

func splitMD(s rollback.Split) string {
	if len(s) == 0 {
		return "(none)"
	}
	return code(s.String())
}

func listMD(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

// code renders trusted-looking names (revisions, regions) as a code span, or
// as escaped text when the name could break out of one.
func code(s string) string {
	s = sanitize(s, MaxLine)
	if s == "" || strings.ContainsAny(s, "`|\\") {
		return cmp.Or(md(s, 0), "–")
	}
	return "`" + s + "`"
}

// mdEscaper backslash-escapes the ASCII punctuation that Markdown (GFM)
// gives a meaning, so text renders literally.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", `\<`, ">", `\>`, "|", `\|`, "~", `\~`, "#", `\#`, "!", `\!`, "&", `\&`,
)

// md sanitizes s (cut to maxRunes runes when maxRunes > 0) and escapes it for Markdown.
func md(s string, maxRunes int) string {
	return mdEscaper.Replace(sanitize(s, maxRunes))
}

// sectionsMD renders the command-specific sections: the revisions of a
// status, the verdict of a probe. Empty for other reports.
func sectionsMD(r *rollback.Report) string {
	var b strings.Builder
	if st := r.Status; st != nil {
		conv := "converged"
		if !st.Converged {
			conv = "**not converged**: desired and actual differ"
		}
		fmt.Fprintf(&b, "Desired %s, actual %s (%s).\n\n", splitMD(st.Traffic), splitMD(actualSplit(st.Actual)), conv)
		if st.InFlight != "" {
			fmt.Fprintf(&b, "In flight: %s\n\n", md(st.InFlight, MaxLine))
		}
		probed := st.Probed()
		b.WriteString("| revision | ready | traffic | tags | version |")
		if probed {
			b.WriteString(" probe |")
		}
		b.WriteString("\n| --- | --- | --- | --- | --- |")
		if probed {
			b.WriteString(" --- |")
		}
		b.WriteString("\n")
		for _, rev := range st.Revisions {
			fmt.Fprintf(&b, "| %s | %s | %d%% | %s | %s |", code(rev.Name), yesNo(rev.Ready), rev.Percent, listMD(rev.Tags), md(rev.Version, 64))
			if probed {
				fmt.Fprintf(&b, " %s |", md(rev.Probe, MaxLine))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if p := r.Probe; p != nil {
		verdict := "healthy"
		if !p.Healthy {
			verdict = "unhealthy"
		}
		url := p.HealthURL
		if url == "" {
			url = p.URL
		}
		fmt.Fprintf(&b, "%s is **%s** after %d attempt(s) in %s: %s\n\n", code(url), verdict, p.Attempts, formatMS(p.ElapsedMS), md(p.Last, MaxLine))
	}
	return b.String()
}

func actualSplit(ts []rollback.TargetStatus) rollback.Split {
	out := make(rollback.Split, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Target)
	}
	return out
}
