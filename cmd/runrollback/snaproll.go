package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/rollback"
)

func snapshotCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "write the current traffic split (with etag and generation) as JSON",
		Description: `Take a snapshot before a deploy; 'runrollback guard --restore-from FILE' or
'runrollback rollback --restore-from FILE' puts the exact split back.`,
		Flags: withGlobal(&cli.StringFlag{Name: "out", Usage: "write the snapshot to `FILE` (default stdout)"}),
		Action: func(c *cli.Context) error {
			g, err := parseGlobal(c, true)
			if err != nil {
				return err
			}
			ref, err := g.oneService("a snapshot is of one service")
			if err != nil {
				return err
			}
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			svc, err := be.cloud.GetService(c.Context, ref)
			if err != nil {
				return readOnlyError(err)
			}
			snap := rollback.TakeSnapshot(svc, timeNow())
			b, err := json.MarshalIndent(snap, "", "  ")
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if out := c.String("out"); out != "" {
				if err := os.WriteFile(out, b, 0o600); err != nil {
					return fmt.Errorf("write --out: %w", err)
				}
				if g.output == "text" {
					fmt.Fprintf(e.stdout, "[PASS] snapshot: %s traffic %s (generation %d) written to %s\n", svc.Ref.Name, svc.Traffic, svc.Generation, out)
				}
				return nil
			}
			_, err = e.stdout.Write(b)
			return err
		},
	}
}

func rollbackCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "move traffic to --to REVISION, the last-good tag, or --restore-from FILE; then verify",
		Description: `One traffic-only write carrying the etag just read (a concurrent change is never
overwritten), then a probe of the service URL. A no-op when the split already matches.

Exit codes: 0 rolled back and healthy, 1 written but unhealthy, 2 usage, 3 nothing changed, 4 not confirmed.`,
		Flags: withGlobal(append(probeFlags(),
			&cli.StringFlag{Name: "to", Usage: "send 100% to `REVISION` (short name, e.g. api-00001-abc)"},
			&cli.StringFlag{Name: "last-good-tag", Value: "last-good", Usage: "without --to or --restore-from: send 100% to the revision this `TAG` names"},
			&cli.StringFlag{Name: "restore-from", Usage: "restore the traffic list of a snapshot `FILE` ('runrollback snapshot --out')"},
			restoreTimeoutFlag(),
		)...),
		Action: func(c *cli.Context) error {
			g, po, err := parseServiceFlags(c)
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
			m := be.metered()
			rb := &rollback.Rollback{Cloud: m, Probe: po.prober(e, g), Observe: e.observer(g), Calls: m.Calls, BeforeStep: e.pauseHook()}
			return e.finishReport(g, rb.Run(c.Context, o))
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
		snap, err := readSnapshot(from)
		if err != nil {
			return o, usageError{err}
		}
		if snap.Service != o.Service {
			return o, usageError{fmt.Errorf("--restore-from %s is a snapshot of %s, not of %s", from, snap.Service, o.Service)}
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

func readSnapshot(path string) (rollback.Snapshot, error) {
	var snap rollback.Snapshot
	b, err := os.ReadFile(path)
	if err != nil {
		return snap, fmt.Errorf("--restore-from: %w", err)
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		return snap, fmt.Errorf("--restore-from %s: not a snapshot (%v); write one with 'runrollback snapshot --out FILE'", path, err)
	}
	if err := snap.Validate(); err != nil {
		return snap, fmt.Errorf("--restore-from %s: %w", path, err)
	}
	return snap, nil
}
