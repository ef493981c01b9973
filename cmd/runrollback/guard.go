package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/rollback"
)

func guardCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "guard",
		Usage: "after a deploy: probe; healthy → move the last-good tag; unhealthy → roll back and verify",
		Description: `Run right after a real deploy (with exec, so a cancelled job's signal reaches it):

    runrollback snapshot --service api --out snapshot.json   # before the deploy
    gcloud run deploy api ...
    exec runrollback guard --service api --restore-from snapshot.json

Healthy: the last-good tag moves to the serving revision (a traffic-only write), exit 0.
Unhealthy: the snapshot's traffic is restored (or 100% goes to the last-good revision), verified,
and the report says what was rolled back and how long it took; exit 1.

Safer still, deploy without traffic and let the guard promote the new revision only once it is
proven on its own tag URL; a bad revision then never reaches users:

    gcloud run deploy api --no-traffic --tag candidate ...
    exec runrollback guard --service api --candidate candidate

` + exitHelp("guard"),
		Flags: withGlobal(append(append(probeFlags(),
			&cli.StringFlag{Name: "restore-from", Usage: "the snapshot `FILE` taken before the deploy ('runrollback snapshot --out')"},
			&cli.StringFlag{Name: "last-good-tag", Value: "last-good", Usage: "the `TAG` that marks the last good revision"},
			restoreTimeoutFlag(),
			&cli.StringFlag{Name: "candidate", Usage: "the new revision was deployed with 'gcloud run deploy --no-traffic --tag TAG': probe it on its tag URL and promote it to 100% only when healthy"},
		), notifyFlags()...)...),
		Action: func(c *cli.Context) error {
			g, po, err := e.parseServiceFlags(c)
			if err != nil {
				return err
			}
			o, err := parseGuard(c, g, po)
			if err != nil {
				return err
			}
			if g.notify, err = e.parseNotify(c); err != nil {
				return err
			}
			o.Owner = e.owner()
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			watch := rollback.WatchFirstReads(be.cloud)
			m := &rollback.Metered{CloudRun: watch}
			gd := &rollback.Guard{Cloud: m, Probe: po.prober(e, g),
				Journal: e.journal(), Observe: e.observer(g), Calls: m.Calls, BeforeStep: e.pauseHook()}
			rep := gd.Run(c.Context, o)
			watch.Classify(rep)
			return e.finish(g, []*rollback.Report{rep}, runText(g, []*rollback.Report{rep}))
		},
	}
}

// parseGuard reads and checks guard's flags, before any API call.
func parseGuard(c *cli.Context, g globalOpts, po probeOpts) (rollback.GuardOptions, error) {
	ref, err := g.oneService("guard one service at a time")
	if err != nil {
		return rollback.GuardOptions{}, err
	}
	o := rollback.GuardOptions{
		Service:       ref,
		LastGoodTag:   c.String("last-good-tag"),
		URL:           po.url,
		ExpectVersion: po.expectVersion,
	}
	if o.RestoreTimeout, err = parseRestoreTimeout(c); err != nil {
		return o, err
	}
	lastGood, tagErr := rollback.LastGoodTag(ref.Name, o.LastGoodTag, c.IsSet("last-good-tag"))
	if tagErr != nil && c.IsSet("last-good-tag") {
		return o, usageError{fmt.Errorf("--last-good-tag: %w", tagErr)}
	}
	o.LastGoodTag = lastGood
	if o.Candidate = c.String("candidate"); o.Candidate != "" {
		if err := rollback.ValidateTagFor(ref.Name, o.Candidate); err != nil {
			return o, usageError{fmt.Errorf("--candidate: %w", err)}
		}
		if c.IsSet("restore-from") {
			return o, usageError{fmt.Errorf("--candidate and --restore-from both given: a candidate gets no traffic until it is proven, so there is nothing to restore from a file")}
		}
	}
	if from := c.String("restore-from"); from != "" {
		snap, err := rollback.ReadSnapshot("--restore-from", from, o.Service)
		if err != nil {
			return o, usageError{err}
		}
		o.RestoreFrom = &snap
	}
	if tagErr != nil && o.RestoreFrom == nil {
		return o, usageError{fmt.Errorf("%w: pass --restore-from FILE (a snapshot taken before the deploy), which needs no tag", tagErr)}
	}
	return o, nil
}

func recoverCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "finish or undo an interrupted run from its journal (a no-op when nothing is in flight)",
		Description: `Reads the journal a drill or guard left (the service's runrollback.dev/journal annotation,
or the local file under $RUNROLLBACK_STATE_DIR), resumes an operation in flight by name, puts the
snapshot's traffic back, writes the template back, deletes the drill's revision and removes the
lease. Every action looks first, so running it again changes nothing. Someone else's change is
never overwritten: recover stops with exit 3 and says what differs.

` + exitHelp("recover"),
		Flags: withGlobal(append(probeFlags(),
			restoreTimeoutFlag(),
			&cli.BoolFlag{Name: "force", Usage: "recover even while another machine's run holds an unexpired lease (when you know it is dead)"},
			&cli.StringFlag{Name: "services-file", Usage: "also recover the services in `FILE` (the format of test --services-file)"},
			&cli.StringSliceFlag{Name: "label", Usage: "also recover every service in --project/--region labelled `KEY=VALUE`"},
			shardFlag(),
		)...),
		Action: func(c *cli.Context) error {
			g, err := e.parseGlobal(c, !c.IsSet("services-file") && !c.IsSet("label"))
			if err != nil {
				return err
			}
			po, err := parseProbe(c, g)
			if err != nil {
				return err
			}
			sel, err := parseSelection(c, g)
			if err != nil {
				return err
			}
			if g.shard, err = e.parseShard(c); err != nil {
				return err
			}
			restoreTimeout, err := parseRestoreTimeout(c)
			if err != nil {
				return err
			}
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			refs, err := sel.ResolveFrom(c.Context, be.cloud)
			if err != nil {
				return readError(err)
			}
			if refs = e.selectShard(&g, refs); len(refs) == 0 {
				return e.finish(g, nil, emptyShardText(g))
			}
			var reports []*rollback.Report
			watch := rollback.WatchFirstReads(be.cloud)
			for _, ref := range refs {
				m := &rollback.Metered{CloudRun: watch}
				rc := &rollback.Recover{Cloud: m, Probe: po.prober(e, g),
					Journal: e.journal(), Observe: e.observer(g), Calls: m.Calls, BeforeStep: e.pauseHook(), Alive: processAlive}
				rep := rc.Run(c.Context, rollback.RecoverOptions{
					Service: ref,
					URL:     po.url, ExpectVersion: po.expectVersion,
					Owner: e.owner(), Force: c.Bool("force"), RestoreTimeout: restoreTimeout,
				})
				reports = append(reports, rep)
			}
			watch.Classify(reports...)
			return e.finish(g, reports, runText(g, reports))
		},
	}
}
