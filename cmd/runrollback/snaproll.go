package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func snapshotCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "write the current traffic split (with etag and generation) as JSON",
		Description: `Take a snapshot before a deploy; 'runrollback guard --restore-from FILE' or
'runrollback rollback --restore-from FILE' puts the exact split back. Without --out the snapshot
goes to stdout.

` + exitHelp("snapshot"),
		Flags: withGlobal(&cli.StringFlag{Name: "out", Usage: "write the snapshot to `FILE` (default stdout)"}),
		Action: func(c *cli.Context) error {
			g, err := e.parseGlobal(c, true)
			if err != nil {
				return err
			}
			ref, err := g.oneService("a snapshot is of one service")
			if err != nil {
				return err
			}
			out := c.String("out")
			if err := checkWritable("--out", out); err != nil {
				return err
			}
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			m := be.metered()
			rd := &rollback.Reader{Cloud: m, Calls: m.Calls, Now: timeNow}
			rep, snap, err := rd.Snapshot(c.Context, ref)
			if err != nil {
				return e.readFailed(g, rep, err)
			}
			b, err := snap.Encode()
			if err != nil {
				return err
			}
			if out == "" {
				// The snapshot is what stdout gets, whatever --output says;
				// --report still gets the report.
				if _, err := e.stdout.Write(b); err != nil {
					return err
				}
				g.output = ""
				return e.finish(g, []*rollback.Report{rep}, nil)
			}
			rep.Snapshot.File = out
			if err := writeFileMode(out, b, 0o600); err != nil {
				rep.Result, rep.ExitCode = rollback.ResultFail, exitReportLost
				rep.Error = "write --out " + out + ": " + err.Error()
				rep.Hint = "nothing was changed on the service; check the path and run the snapshot again"
			}
			return e.finish(g, []*rollback.Report{rep}, func(w io.Writer) error {
				if rep.Error != "" {
					_, err := fmt.Fprintln(w, report.Verdict(rep, g.color))
					return err
				}
				_, err := fmt.Fprintln(w, report.Snapshot(rep, g.color))
				return err
			})
		},
	}
}

// readFailed ends a read-only command (status, snapshot) whose read failed:
// its report (result aborted, bad input: exit 2) is written where asked, and
// the error, with a hint for the usual causes, goes to stderr.
func (e *env) readFailed(g globalOpts, rep *rollback.Report, err error) error {
	_ = e.finish(g, []*rollback.Report{rep}, nil)
	return readError(err)
}

func rollbackCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "move traffic to --to REVISION, the last-good tag, or --restore-from FILE; then verify",
		Description: `One traffic-only write carrying the etag just read (a concurrent change is never
overwritten), then a probe of the service URL. A no-op when the split already matches.

` + exitHelp("rollback"),
		Flags: withGlobal(append(probeFlags(),
			&cli.StringFlag{Name: "to", Usage: "send 100% to `REVISION` (short name, e.g. api-00001-abc)"},
			&cli.StringFlag{Name: "last-good-tag", Value: "last-good", Usage: "without --to or --restore-from: send 100% to the revision this `TAG` names"},
			&cli.StringFlag{Name: "restore-from", Usage: "restore the traffic list of a snapshot `FILE` ('runrollback snapshot --out')"},
			restoreTimeoutFlag(),
		)...),
		Action: func(c *cli.Context) error {
			g, po, err := e.parseServiceFlags(c)
			if err != nil {
				return err
			}
			o, err := parseRollback(c, g, po)
			if err != nil {
				return err
			}
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			watch := rollback.WatchFirstReads(be.cloud)
			m := &rollback.Metered{CloudRun: watch}
			rb := &rollback.Rollback{Cloud: m, Probe: po.prober(e, g), Observe: e.observer(g), Calls: m.Calls, BeforeStep: e.pauseHook()}
			rep := rb.Run(c.Context, o)
			watch.Classify(rep)
			return e.finish(g, []*rollback.Report{rep}, runText(g, []*rollback.Report{rep}))
		},
	}
}

func parseRollback(c *cli.Context, g globalOpts, po probeOpts) (rollback.RollbackOptions, error) {
	ref, err := g.oneService("roll back one service at a time")
	if err != nil {
		return rollback.RollbackOptions{}, err
	}
	restoreTimeout, err := parseRestoreTimeout(c)
	if err != nil {
		return rollback.RollbackOptions{}, err
	}
	o := rollback.RollbackOptions{
		Service:        ref,
		URL:            po.url,
		ExpectVersion:  po.expectVersion,
		RestoreTimeout: restoreTimeout,
	}
	to, from := c.String("to"), c.String("restore-from")
	if to != "" && from != "" {
		return o, usageError{fmt.Errorf("--to and --restore-from both given: pick one")}
	}
	switch {
	case to != "":
		if err := rollback.ValidateRevisionName(to); err != nil {
			return o, usageError{fmt.Errorf("--to: %w", err)}
		}
		o.To = to
	case from != "":
		snap, err := rollback.ReadSnapshot("--restore-from", from, o.Service)
		if err != nil {
			return o, usageError{err}
		}
		o.From = &snap
	default:
		tag, err := rollback.LastGoodTag(ref.Name, c.String("last-good-tag"), c.IsSet("last-good-tag"))
		if err != nil {
			return o, usageError{fmt.Errorf("--last-good-tag: %w; or pass --to REVISION or --restore-from FILE", err)}
		}
		o.Tag = tag
	}
	return o, nil
}
