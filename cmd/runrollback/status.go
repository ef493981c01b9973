package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show revisions, traffic percent, tags, ready state, and desired vs actual split",
		Description: `Reads the service (and, with --probe, checks every serving or tagged revision); never writes.

` + exitHelp("status"),
		Flags: withGlobal(append(probeFlags(),
			&cli.BoolFlag{Name: "probe", Usage: "also probe the health and version of every serving or tagged revision"},
		)...),
		Action: func(c *cli.Context) error {
			g, po, err := e.parseServiceFlags(c)
			if err != nil {
				return err
			}
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			var reports []*rollback.Report
			for _, ref := range g.refs() {
				m := be.metered()
				rd := &rollback.Reader{Cloud: m, Calls: m.Calls, Now: timeNow}
				if c.Bool("probe") {
					rd.Probe = po.prober(e, g)
				}
				rep, err := rd.Status(c.Context, ref)
				if err != nil {
					return e.readFailed(g, rep, err)
				}
				reports = append(reports, rep)
			}
			return e.finish(g, reports, func(w io.Writer) error { return report.StatusAll(w, reports) })
		},
	}
}
