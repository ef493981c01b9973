package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Status writes the text output of "status" for r (command status, with a
// Status section):
//
//	service   api (project p, region us-central1)
//	url       https://api-xyz.a.run.app
//	ready     yes; generation 3, observed 3
//	desired   api-00002-def=100
//	actual    api-00002-def=100  [converged]
//	in flight test by ci@runner since … (only when a run is in flight)
//
// then a blank line and a table of revisions (REVISION, CREATED, READY,
// TRAFFIC, TAGS, VERSION, IMAGE, and PROBE when revisions were probed). All
// text from the service is sanitized.
func Status(w io.Writer, r *rollback.Report) error {
	if r == nil || r.Status == nil {
		_, err := io.WriteString(w, "no status\n")
		return err
	}
	st := r.Status
	var b strings.Builder
	ready := "yes"
	if !st.Ready {
		ready = "NO: " + sanitize(st.Message, MaxLine)
	}
	fmt.Fprintf(&b, "service   %s (project %s, region %s)\n", sanitize(r.Service.Name, 64), sanitize(r.Service.Project, 64), sanitize(r.Service.Region, 64))
	fmt.Fprintf(&b, "url       %s\n", sanitize(r.Service.URI, MaxLine))
	fmt.Fprintf(&b, "ready     %s; generation %d, observed %d\n", ready, st.Generation, st.ObservedGeneration)
	fmt.Fprintf(&b, "desired   %s\n", sanitize(st.Traffic.String(), 0))
	var actual []string
	for _, t := range st.Actual {
		s := t.Target.String()
		if t.URI != "" && t.Tag != "" {
			s += " (" + t.URI + ")"
		}
		actual = append(actual, s)
	}
	conv := "converged"
	if !st.Converged {
		conv = "NOT converged: desired and actual differ"
	}
	fmt.Fprintf(&b, "actual    %s  [%s]\n", sanitize(strings.Join(actual, ", "), 0), conv)
	if st.InFlight != "" {
		fmt.Fprintf(&b, "in flight %s\n", sanitize(st.InFlight, MaxLine))
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	header := []string{"REVISION", "CREATED", "READY", "TRAFFIC", "TAGS", "VERSION", "IMAGE"}
	probed := st.Probed()
	if probed {
		header = append(header, "PROBE")
	}
	var rows [][]string
	for _, rev := range st.Revisions {
		row := []string{rev.Name, rev.Created.UTC().Format(time.DateTime), yesNo(rev.Ready), fmt.Sprintf("%d%%", rev.Percent),
			strings.Join(rev.Tags, ","), rev.Version, rev.Image}
		if probed {
			row = append(row, Sanitize(rev.Probe, 80))
		}
		rows = append(rows, row)
	}
	return Table(w, header, rows)
}

// ProbeVerdict is the closing line of "probe" for r (command probe, with a
// Probe section), without a line break:
//
//	[PASS] probe (12ms): https://x/api/v1/health/ is healthy after 1 attempt(s): healthy, HTTP 200, version 1.1.0
//	[FAIL] probe (1.2s): https://x/api/v1/health/ is unhealthy after 11 attempt(s): unhealthy, HTTP 503
func ProbeVerdict(r *rollback.Report, color bool) string {
	if r == nil || r.Probe == nil {
		return Line(rollback.Event{Level: rollback.LevelFail, Step: "probe", Message: "no probe result"}, color)
	}
	p := r.Probe
	level, verdict := rollback.LevelPass, "healthy"
	if !p.Healthy {
		level, verdict = rollback.LevelFail, "unhealthy"
	}
	url := p.HealthURL
	if url == "" {
		url = p.URL
	}
	return Line(rollback.Event{Level: level, Step: "probe", Duration: time.Duration(p.ElapsedMS) * time.Millisecond,
		Message: fmt.Sprintf("%s is %s after %d attempt(s): %s", url, verdict, p.Attempts, p.Last)}, color)
}

// Snapshot is the text line of "snapshot --out FILE", without a line break:
//
//	[PASS] snapshot: api traffic api-00002-def=100 (generation 3) written to snap.json
func Snapshot(r *rollback.Report, color bool) string {
	if r == nil || r.Snapshot == nil {
		return Line(rollback.Event{Level: rollback.LevelFail, Step: "snapshot", Message: "no snapshot"}, color)
	}
	where := "written to " + r.Snapshot.File
	if r.Snapshot.File == "" {
		where = "written to stdout"
	}
	return Line(rollback.Event{Level: rollback.LevelPass, Step: "snapshot",
		Message: fmt.Sprintf("%s traffic %s (generation %d) %s", r.Service.Name, r.Snapshot.Traffic, r.Snapshot.Generation, where)}, color)
}

// FleetTable writes the text output of a run over several services: a blank
// line, a table with a row per report (SERVICE, RESULT, the step timings,
// RESTORED, WRITES, ERROR), the verdict of each report that did not pass, and
// the overall verdict:
//
//	PASS  test: 3 services: 3 pass
//	ABORTED  test: 3 services: 2 pass, 1 aborted
func FleetTable(w io.Writer, command, overall string, reports []*rollback.Report, color bool) error {
	var rows [][]string
	counts := map[string]int{}
	for _, r := range reports {
		counts[r.Result]++
		rows = append(rows, []string{r.Service.Name, strings.ToUpper(r.Result),
			ms(r.Timings.DetectTag), ms(r.Timings.Detect), ms(r.Timings.Restore), ms(r.Timings.Verify), ms(r.Timings.Total),
			yesNo(r.TrafficRestored), fmt.Sprint(r.APICalls.Writes), r.Error})
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	if err := Table(w, []string{"SERVICE", "RESULT", "DETECT-TAG", "DETECT", "RESTORE", "VERIFY", "TOTAL", "RESTORED", "WRITES", "ERROR"}, rows); err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range reports {
		if r.Result != rollback.ResultPass {
			b.WriteString(Verdict(r, color) + "\n")
		}
	}
	var parts []string
	for _, res := range []string{rollback.ResultPass, rollback.ResultFail, rollback.ResultAborted, rollback.ResultError} {
		if counts[res] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[res], res))
		}
	}
	word, colour := resultWord(overall)
	fmt.Fprintf(&b, "%s  %s: %d services: %s\n", paint(word, colour, color), sanitize(command, 64), len(reports), strings.Join(parts, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(v int64) string { return fmt.Sprintf("%dms", v) }

// DrillStart is the event that opens a drill: which services, which break, how
// much traffic. Several services are named by name (at most 8, then a count).
func DrillStart(at time.Time, refs []rollback.ServiceRef, breakSpec string, percent int32) rollback.Event {
	var who string
	if len(refs) == 1 {
		who = refs[0].Project + "/" + refs[0].Region + "/" + refs[0].Name
	} else {
		var names []string
		for _, r := range refs {
			names = append(names, r.Name)
		}
		if len(names) > 8 {
			names = append(names[:8], fmt.Sprintf("… (%d in all)", len(refs)))
		}
		who = strings.Join(names, ", ")
	}
	return rollback.Event{Time: at, Level: rollback.LevelInfo,
		Message: fmt.Sprintf("drill %s: break %s, %d%% traffic to the broken revision", who, breakSpec, percent)}
}

// ProbeWait is the note that opens a probe wait: the URL requested, what it
// waits for, the detector rule, the version expected, the retries and the
// timeout of each attempt.
func ProbeWait(at time.Time, url, goal, rule, version string, retries int, timeout time.Duration) rollback.Event {
	msg := fmt.Sprintf("waiting for GET %s to %s (%s", url, goal, rule)
	if version != "" {
		msg += ", version " + version
	}
	msg += fmt.Sprintf("; %d retries after attempts that prove nothing; %s timeout each)", retries, timeout)
	return rollback.Event{Time: at, Level: rollback.LevelInfo, Step: "probe", Message: msg}
}

// ProbeAttempt is the note on the n-th attempt of a wait: the URL requested,
// what the answer was, how long it took.
func ProbeAttempt(at time.Time, n int, url, answer string, d time.Duration) rollback.Event {
	return rollback.Event{Time: at, Level: rollback.LevelInfo, Step: fmt.Sprintf("probe %d", n),
		Message: "GET " + url + ": " + answer, Duration: d}
}

// StatusAll writes the text output of "status" for several reports, a blank
// line between them.
func StatusAll(w io.Writer, reports []*rollback.Report) error {
	for i, r := range reports {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := Status(w, r); err != nil {
			return err
		}
	}
	return nil
}

// RunText writes the closing text of a run of command over reports: the
// verdict of one report; for a fleet drill (test over several services) the
// fleet table; for other commands over several services, one verdict each.
func RunText(w io.Writer, command string, reports []*rollback.Report, color bool) error {
	if len(reports) > 1 && command == "test" {
		return FleetTable(w, command, rollback.OverallResult(reports), reports, color)
	}
	var b strings.Builder
	for _, r := range reports {
		b.WriteString(Verdict(r, color) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// HasSummary says whether a run of command with result has something for the
// GitHub step summary: everything but a snapshot that worked.
func HasSummary(command, result string) bool {
	return command != "snapshot" || result != rollback.ResultPass
}

// VersionLine is what --version prints, without a line break:
//
//	runrollback v1.2.3 commit 0123abc (modified) go1.26.0 linux/amd64
func VersionLine(t *rollback.Tool, goos, goarch string) string {
	parts := []string{t.Name, t.Version}
	if t.Commit != "" {
		c := "commit " + t.Commit
		if t.Modified {
			c += " (modified)"
		}
		parts = append(parts, c)
	}
	parts = append(parts, fmt.Sprintf("%s %s/%s", t.Go, goos, goarch))
	return strings.Join(parts, " ")
}

// Lost is the line that says a run's own verdict stands but a report it was
// asked for is missing, so it exits with code, without a line break.
func Lost(command, result string, code int) string {
	did := "finished"
	if result == rollback.ResultPass {
		did = "passed"
	}
	return fmt.Sprintf("the %s itself %s, but a report it was asked for is missing: exit %d", sanitize(command, 64), did, code)
}

// NoIDToken is the warning that probes go without an ID token because
// credentials could not mint one (err says why).
func NoIDToken(at time.Time, err error) rollback.Event {
	return rollback.Event{Time: at, Level: rollback.LevelWarn, Step: "probe",
		Message: "probes go without an ID token (" + Sanitize(err.Error(), 200) + "): a private service will answer 401/403; use a service account, or --id-token-file"}
}
