package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func testCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "test",
		Usage: "run the rollback drill: deploy a broken revision, detect it, restore, verify",
		Description: `Steps: preflight, lease, deploy (a deliberately broken revision at 0%, tagged drill-<id>),
template (the pre-drill template written back at once: it carries the break for one write),
detect-tag (its tag URL probed until the failure shows), shift (--traffic-percent to it),
detect (on the service URL), restore (the exact prior split), verify (health and version),
cleanup (the broken revision deleted, the lease released). Interrupted, it restores first;
template, restore, verify and cleanup keep going through API errors for --restore-timeout.

` + exitHelp("test"),
		Flags: withGlobal(append(append(probeFlags(),
			&cli.StringFlag{Name: "break", Value: "health", Usage: "how to break the revision: health, version, slow[:DURATION], flaky[:PERCENT], startup or simulate"},
			&cli.StringSliceFlag{Name: "break-env", Usage: "`KEY=VALUE` injected into the broken revision (default RUNROLLBACK_BREAK=<mode>)"},
			&cli.StringFlag{Name: "break-image", Usage: "deploy this `IMAGE` as the broken revision instead"},
			&cli.IntFlag{Name: "traffic-percent", Value: 100, Usage: "share of traffic sent to the broken revision after its tag probe fails (0 skips the shift)"},
			&cli.BoolFlag{Name: "keep-revision", Usage: "keep the broken revision after the drill"},
			&cli.StringFlag{Name: "deadline", Value: "10m", Usage: "bound on the whole drill (`DURATION`); restore always runs"},
			&cli.StringFlag{Name: "services-file", Usage: "also drill the services in `FILE`: a JSON array of {\"project\", \"region\", \"name\"}, or one [project/][region/]name per line"},
			&cli.StringSliceFlag{Name: "label", Usage: "also drill every service in --project/--region labelled `KEY=VALUE` (repeat to require several labels)"},
			&cli.IntFlag{Name: "parallel", Value: 4, Usage: "how many services to drill at once"},
			restoreTimeoutFlag(),
			&cli.IntFlag{Name: "write-rate", Value: 30, Usage: "Admin API writes a minute per project and region, shared by all drills; restores go first (Cloud Run allows about 60; no limit against a fake unless set)"},
			shardFlag(),
		), notifyFlags()...)...),
		Action: func(c *cli.Context) error {
			fleet := c.IsSet("services-file") || c.IsSet("label")
			g, err := e.parseGlobal(c, !fleet)
			if err != nil {
				return err
			}
			for _, name := range g.services {
				if _, _, _, err := rollback.DrillNames(name, rollback.NewDrillID()); err != nil {
					return usageError{err}
				}
			}
			po, err := parseProbe(c, g)
			if err != nil {
				return err
			}
			o, err := parseDrill(c, g, po)
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
			if g.notify, err = e.parseNotify(c); err != nil {
				return err
			}
			writeRate := c.Int("write-rate")
			if (g.local || g.emulatorHost != "") && !c.IsSet("write-rate") {
				writeRate = 0 // a fake has no write quota
			}
			return e.runDrills(c.Context, g, po, o, sel, c.Int("parallel"), writeRate)
		},
	}
}

func parseDrill(c *cli.Context, g globalOpts, po probeOpts) (rollback.DrillOptions, error) {
	b, err := rollback.ParseBreak(c.String("break"))
	if err != nil {
		return rollback.DrillOptions{}, usageError{err}
	}
	if envs := c.StringSlice("break-env"); len(envs) > 0 {
		if b.Mode == rollback.BreakSimulate {
			return rollback.DrillOptions{}, usageError{fmt.Errorf("--break-env has no effect with --break simulate, which deploys nothing")}
		}
		b.Env = map[string]string{}
		for _, kv := range envs {
			k, v, err := rollback.ParseEnvAssignment(kv)
			if err != nil {
				return rollback.DrillOptions{}, usageError{err}
			}
			b.Env[k] = v
		}
		if err := rollback.ValidateBreakEnv(b.Env); err != nil {
			return rollback.DrillOptions{}, usageError{err}
		}
	}
	if img := c.String("break-image"); img != "" {
		if b.Mode == rollback.BreakSimulate {
			return rollback.DrillOptions{}, usageError{fmt.Errorf("--break-image has no effect with --break simulate, which deploys nothing")}
		}
		b.Image = img
	}
	pct := c.Int("traffic-percent")
	if pct < 0 || pct > 100 {
		return rollback.DrillOptions{}, usageError{fmt.Errorf("--traffic-percent %d: use 0 to 100", pct)}
	}
	deadline, err := probe.ParseDuration(c.String("deadline"))
	if err != nil || deadline <= 0 {
		return rollback.DrillOptions{}, usageError{fmt.Errorf("--deadline %q: use a positive duration such as 10m", c.String("deadline"))}
	}
	if n := c.Int("parallel"); n < 1 {
		return rollback.DrillOptions{}, usageError{fmt.Errorf("--parallel %d: use 1 or more", n)}
	}
	if n := c.Int("write-rate"); n < 1 {
		return rollback.DrillOptions{}, usageError{fmt.Errorf("--write-rate %d: use 1 or more writes a minute", n)}
	}
	restoreTimeout, err := parseRestoreTimeout(c)
	if err != nil {
		return rollback.DrillOptions{}, err
	}
	return rollback.DrillOptions{
		RestoreTimeout: restoreTimeout,
		Break:          b,
		TrafficPercent: int32(pct),
		KeepRevision:   c.Bool("keep-revision"),
		Deadline:       deadline,
		URL:            po.url,
		ExpectVersion:  po.expectVersion,
		Local:          g.local,
	}, nil
}

func (e *env) runDrills(ctx context.Context, g globalOpts, po probeOpts, tmpl rollback.DrillOptions, sel *rollback.Selection, parallel, writeRate int) error {
	be, err := openBackend(ctx, g)
	if err != nil {
		return err
	}
	defer be.close()
	refs, err := sel.ResolveFrom(ctx, be.cloud)
	if err != nil {
		return readError(err)
	}
	if len(refs) > 1 && po.url != "" {
		return usageError{fmt.Errorf("--url names one service's URL: drill several services without it")}
	}
	if refs = e.selectShard(&g, refs); len(refs) == 0 {
		return e.finish(g, nil, emptyShardText(g))
	}
	tmpl.Owner = e.owner()
	watch := rollback.WatchFirstReads(be.cloud)
	var opts []rollback.DrillOptions
	for _, ref := range refs {
		o := tmpl
		o.Service = ref
		opts = append(opts, o)
	}
	f := &rollback.Fleet{
		Drill: rollback.Drill{
			Cloud:      watch,
			Probe:      po.prober(e, g),
			Journal:    e.journal(),
			Observe:    e.observer(g),
			BeforeStep: e.pauseHook(),
		},
		Parallel:        parallel,
		WritesPerMinute: writeRate,
	}
	e.progress(g).Event(report.DrillStart(timeNow(), refs, tmpl.Break.Spec, tmpl.TrafficPercent))
	reports := f.Run(ctx, opts)
	watch.Classify(reports...)
	return e.finish(g, reports, runText(g, reports))
}

// journal is where local journals are kept: $RUNROLLBACK_STATE_DIR, else
// ~/.local/state/runrollback.
func (e *env) journal() rollback.FileJournal {
	if dir := e.getenv("RUNROLLBACK_STATE_DIR"); dir != "" {
		return rollback.FileJournal{Dir: dir}
	}
	if dir := e.getenv("XDG_STATE_HOME"); dir != "" {
		return rollback.FileJournal{Dir: filepath.Join(dir, "runrollback")}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return rollback.FileJournal{Dir: filepath.Join(os.TempDir(), "runrollback")}
	}
	return rollback.FileJournal{Dir: filepath.Join(home, ".local", "state", "runrollback")}
}

// owner names who runs this, for the lease.
func (e *env) owner() string {
	if repo := e.getenv("GITHUB_REPOSITORY"); repo != "" {
		return fmt.Sprintf("github.com/%s run %s", repo, e.getenv("GITHUB_RUN_ID"))
	}
	host, _ := os.Hostname()
	user := e.getenv("USER")
	if user == "" {
		user = "unknown"
	}
	return user + "@" + host
}

// pauseHook supports tests that interrupt a run at given steps: with
// RUNROLLBACK_PAUSE_AT=STEP[,STEP...] the run prints "paused before STEP" on
// stderr (and writes STEP to the file RUNROLLBACK_PAUSE_FILE names, if any) and
// waits there until it is signalled (or RUNROLLBACK_PAUSE_FOR passes, default 1m).
func (e *env) pauseHook() func(ctx context.Context, step string) error {
	at := e.getenv("RUNROLLBACK_PAUSE_AT")
	if at == "" {
		return nil
	}
	limit := time.Minute
	if d, err := time.ParseDuration(e.getenv("RUNROLLBACK_PAUSE_FOR")); err == nil {
		limit = d
	}
	steps := strings.Split(at, ",")
	return func(ctx context.Context, step string) error {
		if !slices.Contains(steps, step) {
			return nil
		}
		// The steps that put the service back run on a context signals do not
		// cancel: there a signal only ends the pause, and the step goes on.
		// Listen before telling the test we are paused, so no signal is missed.
		var sig chan os.Signal
		if rollback.Protective(step) {
			sig = make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sig)
		}
		fmt.Fprintf(e.stderr, "paused before %s\n", step)
		if f := e.getenv("RUNROLLBACK_PAUSE_FILE"); f != "" {
			if err := os.WriteFile(f, []byte(step+"\n"), 0o600); err != nil {
				return err
			}
		}
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-sig:
			return nil
		case <-t.C:
			return nil
		}
	}
}
