package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

// Schema names the summary's format.
const Schema = "runrollback.notify/v1"

// Bounds of a summary: chat services cut or refuse long messages.
const (
	maxText     = 3000 // runes of "text"
	maxListed   = 10   // services named in "text"
	maxServices = 200  // entries of "services"
	maxField    = 500  // runes of one error or hint
	// maxListedError is how much of a service's error a fleet's text shows:
	// maxListed of them fit in maxText.
	maxListedError = 200
)

// Summary is the JSON body posted: "text" for Slack-compatible receivers,
// and the run's outcome as fields. With one report the service, exposure,
// timings, error and hint are top-level; a fleet has them per service in
// Services (which lists every service that did not pass first, then the
// others, at most 200).
type Summary struct {
	Text     string `json:"text"`
	Schema   string `json:"schema"`
	Command  string `json:"command"`
	Result   string `json:"result"`
	ExitCode int    `json:"exit_code"`

	Service         *rollback.ReportService `json:"service,omitempty"`
	RolledBack      *bool                   `json:"rolled_back,omitempty"`
	TrafficRestored *bool                   `json:"traffic_restored,omitempty"`
	Exposure        *rollback.Exposure      `json:"exposure,omitempty"`
	Timings         *rollback.Timings       `json:"timings_ms,omitempty"`
	LeftBehind      []string                `json:"left_behind,omitempty"`
	Error           string                  `json:"error,omitempty"`
	Hint            string                  `json:"hint,omitempty"`

	// Counts is how many services ended with each result (a fleet).
	Counts          map[string]int   `json:"counts,omitempty"`
	Services        []ServiceSummary `json:"services,omitempty"`
	ServicesOmitted int              `json:"services_omitted,omitempty"`

	Shard  *ShardRef `json:"shard,omitempty"`
	RunURL string    `json:"run_url,omitempty"`
}

// ServiceSummary is one service of a fleet's summary.
type ServiceSummary struct {
	Service         rollback.ReportService `json:"service"`
	Result          string                 `json:"result"`
	ExitCode        int                    `json:"exit_code"`
	RolledBack      bool                   `json:"rolled_back"`
	TrafficRestored bool                   `json:"traffic_restored"`
	Exposure        rollback.Exposure      `json:"exposure"`
	Timings         rollback.Timings       `json:"timings_ms"`
	Error           string                 `json:"error,omitempty"`
	Hint            string                 `json:"hint,omitempty"`
}

// ShardRef is the part of a sharded fleet drill the run was.
type ShardRef struct {
	Index    int `json:"index"`
	Count    int `json:"count"`
	Services int `json:"services"`
}

// Summarize makes the summary of a run: its reports (their exit codes set),
// the overall result and exit code, and the shard when the run was one part
// of a fleet drill (nil otherwise).
func Summarize(command string, reports []*rollback.Report, result string, exitCode int, shard *rollback.ShardSection) Summary {
	s := Summary{Schema: Schema, Command: command, Result: result, ExitCode: exitCode}
	if shard != nil {
		s.Shard = &ShardRef{Index: shard.Index, Count: shard.Count, Services: shard.Services}
	}
	for _, r := range reports {
		if r.CI != nil && r.CI.RunURL != "" {
			s.RunURL = r.CI.RunURL
			break
		}
	}
	if len(reports) == 1 && shard == nil {
		r := reports[0]
		svc := r.Service
		rolledBack, restored := report.RolledBack(r), r.TrafficRestored
		s.Service, s.RolledBack, s.TrafficRestored = &svc, &rolledBack, &restored
		s.Exposure, s.Timings = &r.Exposure, &r.Timings
		s.LeftBehind = r.LeftBehind
		s.Error, s.Hint = report.Sanitize(r.Error, maxField), report.Sanitize(r.Hint, maxField)
		s.Text = singleText(command, r)
		return s
	}
	s.Counts = map[string]int{}
	var failing, passing []ServiceSummary
	for _, r := range reports {
		s.Counts[r.Result]++
		e := ServiceSummary{Service: r.Service, Result: r.Result, ExitCode: r.ExitCode,
			RolledBack: report.RolledBack(r), TrafficRestored: r.TrafficRestored,
			Exposure: r.Exposure, Timings: r.Timings,
			Error: report.Sanitize(r.Error, maxField), Hint: report.Sanitize(r.Hint, maxField)}
		if r.Result == rollback.ResultPass {
			passing = append(passing, e)
		} else {
			failing = append(failing, e)
		}
	}
	all := append(failing, passing...)
	if len(all) > maxServices {
		s.ServicesOmitted = len(all) - maxServices
		all = all[:maxServices]
	}
	s.Services = all
	s.Text = fleetText(command, result, reports, failing, shard)
	return s
}

// singleText is the one-message account of a run of one service.
func singleText(command string, r *rollback.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "runrollback %s %s: %s", command, strings.ToUpper(r.Result), serviceName(r.Service))
	if r.Error != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimRight(r.Error, ". "))
	}
	b.WriteString(".")
	if facts := timingFacts(r); facts != "" {
		b.WriteString(" " + facts + ".")
	}
	if len(r.LeftBehind) > 0 {
		fmt.Fprintf(&b, " Left behind: %s.", strings.Join(r.LeftBehind, "; "))
	}
	if r.Hint != "" {
		fmt.Fprintf(&b, " Hint: %s", r.Hint)
	}
	return finishText(b.String(), r.CI)
}

// fleetText is the account of a fleet: the counts, then each service that
// did not pass (at most maxListed), one a line.
func fleetText(command, result string, reports []*rollback.Report, failing []ServiceSummary, shard *rollback.ShardSection) string {
	var b strings.Builder
	fmt.Fprintf(&b, "runrollback %s %s", command, strings.ToUpper(result))
	if len(reports) == 0 {
		if shard != nil {
			fmt.Fprintf(&b, ": %s", shard.Describe())
		} else {
			b.WriteString(": no service")
		}
		return finishText(b.String(), nil)
	}
	if shard != nil {
		fmt.Fprintf(&b, " (shard %d/%d)", shard.Index, shard.Count)
	}
	counts := map[string]int{}
	for _, r := range reports {
		counts[r.Result]++
	}
	var parts []string
	for _, res := range []string{rollback.ResultPass, rollback.ResultFail, rollback.ResultAborted, rollback.ResultError} {
		if counts[res] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[res], res))
		}
	}
	fmt.Fprintf(&b, ": %d services: %s", len(reports), strings.Join(parts, ", "))
	for i, f := range failing {
		if i == maxListed {
			fmt.Fprintf(&b, "\n… and %d more", len(failing)-maxListed)
			break
		}
		fmt.Fprintf(&b, "\n• %s %s", serviceName(f.Service), strings.ToUpper(f.Result))
		if f.Error != "" {
			fmt.Fprintf(&b, ": %s", report.Sanitize(f.Error, maxListedError))
		}
	}
	var ci *rollback.CIRun
	for _, r := range reports {
		if r.CI != nil {
			ci = r.CI
			break
		}
	}
	return finishText(b.String(), ci)
}

func serviceName(s rollback.ReportService) string {
	return s.Project + "/" + s.Region + "/" + s.Name
}

// timingFacts says how long users were exposed and how long the restore took.
func timingFacts(r *rollback.Report) string {
	var facts []string
	if r.Exposure.Percent > 0 || r.Exposure.MS > 0 {
		facts = append(facts, fmt.Sprintf("exposure %d%% for %s", r.Exposure.Percent, dur(r.Exposure.MS)))
	}
	if r.Timings.Detect > 0 {
		facts = append(facts, "detected in "+dur(r.Timings.Detect))
	}
	if report.RolledBack(r) {
		facts = append(facts, "restored in "+dur(r.Timings.Restore))
	}
	if r.Timings.Total > 0 {
		facts = append(facts, "total "+dur(r.Timings.Total))
	}
	if r.Before != nil && !r.TrafficRestored && r.Result == rollback.ResultError {
		facts = append(facts, "traffic NOT confirmed restored")
	}
	out := strings.Join(facts, ", ")
	if out != "" {
		out = strings.ToUpper(out[:1]) + out[1:]
	}
	return out
}

func dur(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

// finishText sanitizes text (each line), escapes it for Slack's mrkdwn
// (&, <, >), adds a link to the CI run, and cuts it to maxText.
func finishText(text string, ci *rollback.CIRun) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = slackEscape(report.Sanitize(l, maxText))
	}
	out := strings.Join(lines, "\n")
	if ci != nil && ci.RunURL != "" && !strings.ContainsAny(ci.RunURL, "<>|") {
		out += "\n<" + ci.RunURL + "|CI run>"
	}
	if r := []rune(out); len(r) > maxText {
		out = string(r[:maxText-1]) + "…"
	}
	return out
}

// slackEscape escapes the three characters Slack's mrkdwn gives a meaning
// to, so that text from a service cannot make a link or a mention.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// redacted is s with every text field passed through redact.
func (s Summary) redacted(redact func(string) string) Summary {
	s.Text, s.Error, s.Hint, s.RunURL = redact(s.Text), redact(s.Error), redact(s.Hint), redact(s.RunURL)
	if s.Service != nil {
		svc := *s.Service
		svc.URI = redact(svc.URI)
		s.Service = &svc
	}
	if s.LeftBehind != nil {
		left := make([]string, len(s.LeftBehind))
		for i, l := range s.LeftBehind {
			left[i] = redact(report.Sanitize(l, maxField))
		}
		s.LeftBehind = left
	}
	if s.Services != nil {
		svcs := make([]ServiceSummary, len(s.Services))
		for i, e := range s.Services {
			e.Error, e.Hint, e.Service.URI = redact(e.Error), redact(e.Hint), redact(e.Service.URI)
			svcs[i] = e
		}
		s.Services = svcs
	}
	return s
}
