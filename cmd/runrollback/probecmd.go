package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func probeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "probe",
		Usage: "check one URL's health and version with the probe policy (no Cloud Run involved)",
		Description: `A deploy workflow's smoke check: probes the health endpoint under --url (--url plus
--health-path) until the answers prove it healthy or broken (--successes, --failures), or the
retries after attempts that prove nothing (no connection) run out. One line per attempt.

Exit codes: 0 healthy, 1 unhealthy, 2 bad input, 6 a report asked for could not be written.`,
		Flags: withGlobal(probeFlags()...),
		Action: func(c *cli.Context) error {
			g, err := e.parseGlobal(c, false)
			if err != nil {
				return err
			}
			po, err := parseProbe(c, g)
			if err != nil {
				return err
			}
			if po.url == "" {
				return usageError{fmt.Errorf("--url is required: the base URL of the service to probe, e.g. --url https://api-abc-uc.a.run.app")}
			}
			pr := po.prober(e, g)
			pol := pr.watch(po.url, "answer healthy", rollback.Expect{Version: po.expectVersion})
			start := timeNow()
			v := pr.checker.WaitHealthy(c.Context, po.url, probe.Expect{Version: po.expectVersion}, pol)
			rep := probeReport(po.url, v, pol, start)
			return e.finish(g, []*rollback.Report{rep}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, report.ProbeVerdict(rep, g.color))
				return err
			})
		},
	}
}

// probeReport is the report of command probe: one step, and the Probe section.
func probeReport(url string, v probe.Verdict, pol probe.Policy, start time.Time) *rollback.Report {
	healthURL := v.Last.URL
	last := v.Last.Describe() + "; " + v.Summary(pol.Rule())
	rep := &rollback.Report{Schema: rollback.ReportSchema, Command: "probe", Result: rollback.ResultPass,
		LastGood: []string{}, RevisionsCreated: []string{}, RevisionsDeleted: []string{}}
	rep.Probe = &rollback.ProbeSection{URL: url, HealthURL: healthURL, Healthy: v.Healthy, Attempts: v.Total,
		Errors: v.Errors, Unhealthy: v.Unhealthy, NotConverged: v.NotConverged, ElapsedMS: v.Elapsed.Milliseconds(),
		Version: v.Last.Version, Revision: v.Last.Revision, Last: last}
	status := rollback.StepPass
	if !v.Healthy {
		status = rollback.StepFail
		rep.Result = rollback.ResultFail
		rep.Error = fmt.Sprintf("%s is unhealthy after %d attempt(s): %s", url, v.Total, last)
		rep.Hint = "the service is not healthy: check its logs and the health endpoint"
	}
	rep.Steps = []rollback.StepReport{{Name: "probe", Status: status, StartedAt: start.UTC(), DurationMS: v.Elapsed.Milliseconds(), Detail: last}}
	rep.Timings.Total = v.Elapsed.Milliseconds()
	return rep
}
