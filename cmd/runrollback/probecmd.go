package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

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

` + exitHelp("probe"),
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
			check := &rollback.URLCheck{Probe: po.prober(e, g), Now: timeNow}
			rep := check.Run(c.Context, po.url, rollback.Expect{Version: po.expectVersion})
			return e.finish(g, []*rollback.Report{rep}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, report.ProbeVerdict(rep, g.color))
				return err
			})
		},
	}
}
