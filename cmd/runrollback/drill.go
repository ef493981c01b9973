package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/rollback"
)

func testCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "test",
		Usage: "run the rollback drill: deploy a broken revision, detect it, restore, verify",
		Description: `Deploys a deliberately broken revision at 0% (tagged drill-<id>), probes its tag URL until
the failure is detected, sends --traffic-percent of traffic to it, detects the failure on the
service URL, restores the exact prior split, verifies health and version, then puts the
template back and deletes the broken revision. Interrupted, it restores first.

Exit codes: 0 pass, 1 fail, 2 usage, 3 aborted safely, 4 restore not confirmed.`,
		Flags: withGlobal(append(probeFlags(),
			&cli.StringFlag{Name: "break", Value: "health", Usage: "how to break the revision: health, version, slow[:DURATION], flaky[:PERCENT], startup or simulate"},
			&cli.StringSliceFlag{Name: "break-env", Usage: "`KEY=VALUE` injected into the broken revision (default RUNROLLBACK_BREAK=<mode>)"},
			&cli.StringFlag{Name: "break-image", Usage: "deploy this `IMAGE` as the broken revision instead"},
			&cli.IntFlag{Name: "traffic-percent", Value: 100, Usage: "share of traffic sent to the broken revision after its tag probe fails (0 skips the shift)"},
			&cli.BoolFlag{Name: "keep-revision", Usage: "keep the broken revision after the drill"},
			&cli.StringFlag{Name: "deadline", Value: "10m", Usage: "bound on the whole drill (`DURATION`); restore always runs"},
		)...),
		Action: func(c *cli.Context) error {
			g, err := parseGlobal(c, true)
			if err != nil {
				return err
			}
			po, err := parseProbe(c)
			if err != nil {
				return err
			}
			o, err := parseDrill(c, g, po)
			if err != nil {
				return err
			}
			return e.runDrill(c.Context, g, po, o)
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
	if len(g.services) > 1 {
		return rollback.DrillOptions{}, usageError{fmt.Errorf("--service given %d times: drill one service at a time", len(g.services))}
	}
	return rollback.DrillOptions{
		Service:        rollback.ServiceRef{Project: g.project, Region: g.region, Name: g.services[0]},
		Break:          b,
		TrafficPercent: int32(pct),
		KeepRevision:   c.Bool("keep-revision"),
		Deadline:       deadline,
		URL:            po.url,
		ExpectVersion:  po.expectVersion,
		Local:          g.local,
	}, nil
}

func (e *env) runDrill(ctx context.Context, g globalOpts, po probeOpts, o rollback.DrillOptions) error {
	be, err := openBackend(ctx, g)
	if err != nil {
		return err
	}
	defer be.close()
	o.Owner = e.owner()
	d := &rollback.Drill{
		Cloud:      be.cloud,
		Probe:      po.prober(e, g),
		Journal:    e.journal(),
		Observe:    e.observer(g),
		Calls:      be.cloud.Calls,
		BeforeStep: e.pauseHook(),
	}
	if g.output == "text" {
		fmt.Fprintf(e.stdout, "[INFO] drill %s/%s/%s: break %s, %d%% traffic to the broken revision\n",
			o.Service.Project, o.Service.Region, o.Service.Name, o.Break.Spec, o.TrafficPercent)
	}
	rep := d.Run(ctx, o)
	return e.finishReport(g, rep)
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

// pauseHook supports tests that interrupt a run at a given step: with
// RUNROLLBACK_PAUSE_AT=STEP the run prints "paused before STEP" on stderr (and
// writes the file RUNROLLBACK_PAUSE_FILE names, if any) and waits there until it
// is signalled (or RUNROLLBACK_PAUSE_FOR passes, default 1m).
func (e *env) pauseHook() func(ctx context.Context, step string) error {
	at := e.getenv("RUNROLLBACK_PAUSE_AT")
	if at == "" {
		return nil
	}
	limit := time.Minute
	if d, err := time.ParseDuration(e.getenv("RUNROLLBACK_PAUSE_FOR")); err == nil {
		limit = d
	}
	return func(ctx context.Context, step string) error {
		if step != at {
			return nil
		}
		fmt.Fprintf(e.stderr, "paused before %s\n", step)
		if f := e.getenv("RUNROLLBACK_PAUSE_FILE"); f != "" {
			if err := os.WriteFile(f, []byte(step+"\n"), 0o600); err != nil {
				return err
			}
		}
		t := time.NewTimer(limit)
		defer t.Stop()
		// The steps that put the service back run on a context signals do not
		// cancel: there a signal only ends the pause, and the step goes on.
		var sig chan os.Signal
		if slices.Contains([]string{rollback.StepRestore, rollback.StepVerify, rollback.StepCleanup}, step) {
			sig = make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sig)
		}
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
