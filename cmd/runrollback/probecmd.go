package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func probeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "probe",
		Usage: "check one URL's health and version with the probe policy (no Cloud Run involved)",
		Description: `A deploy workflow's smoke check: probes --url's health endpoint until --successes answers
in a row are healthy (and report --expect-version), or the attempts run out.

Exit codes: 0 healthy, 1 unhealthy, 2 bad input.`,
		Flags: withGlobal(probeFlags()...),
		Action: func(c *cli.Context) error {
			g, err := parseGlobal(c, false)
			if err != nil {
				return err
			}
			po, err := parseProbe(c)
			if err != nil {
				return err
			}
			if po.url == "" {
				return usageError{fmt.Errorf("--url is required: the base URL of the service to probe, e.g. --url https://api-abc-uc.a.run.app")}
			}
			checker := po.checker(e, g)
			policy := po.policy()
			color := !g.noColor && isTerminal(e.stdout)
			v := checker.WaitHealthy(c.Context, po.url, probe.Expect{Version: po.expectVersion}, policy)
			healthy := v.Healthy
			if g.output == "json" {
				out := probeReport{Schema: "runrollback.probe/v1", URL: po.url, Healthy: healthy, Attempts: v.Total,
					Errors: v.Errors, Unhealthy: v.Unhealthy, ElapsedMS: v.Elapsed.Milliseconds(), Version: v.Last.Version,
					Revision: v.Last.Revision, Last: describeAttempt(v.Last)}
				if !healthy {
					out.ExitCode = exitFail
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				for i, a := range v.Attempts {
					level := rollback.LevelPass
					if !a.OK() {
						level = rollback.LevelWarn
					}
					fmt.Fprintln(e.stdout, report.Line(rollback.Event{Level: level, Step: fmt.Sprintf("probe %d", i+1), Message: describeAttempt(a), Duration: a.Duration}, color))
				}
				level, verdict := rollback.LevelPass, "healthy"
				if !healthy {
					level, verdict = rollback.LevelFail, "unhealthy"
				}
				fmt.Fprintln(e.stdout, report.Line(rollback.Event{Level: level, Step: "probe", Duration: v.Elapsed,
					Message: fmt.Sprintf("%s is %s after %d attempt(s): %s; %s", po.url, verdict, v.Total, describeAttempt(v.Last), v.Summary(policy.Rule()))}, color))
			}
			if !healthy {
				return silentError{code: exitFail, err: fmt.Errorf("%s is unhealthy", po.url)}
			}
			return nil
		},
	}
}

type probeReport struct {
	Schema    string `json:"schema"`
	URL       string `json:"url"`
	Healthy   bool   `json:"healthy"`
	ExitCode  int    `json:"exit_code"`
	Attempts  int    `json:"attempts"`
	Errors    int    `json:"errors"`
	Unhealthy int    `json:"unhealthy"`
	ElapsedMS int64  `json:"elapsed_ms"`
	Version   string `json:"version,omitempty"`
	Revision  string `json:"revision,omitempty"`
	Last      string `json:"last"`
}
