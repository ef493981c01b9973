package bench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/probe"
)

// Target revisions whose error rates the detector is measured on: what the
// revision's container does (the fake's RUNROLLBACK_BREAK), and whether a
// healthy verdict is right.
type Behaviour struct {
	Name    string
	Break   string // RUNROLLBACK_BREAK, "" for a healthy revision
	Healthy bool   // the right verdict
	PFail   float64
}

// Behaviours are flaky:50 (must be caught), flaky:1 and a healthy revision
// (must not be flagged).
var Behaviours = []Behaviour{
	{Name: "flaky:50", Break: "flaky:50", PFail: 0.5},
	{Name: "flaky:1", Break: "flaky:1", Healthy: true, PFail: 0.01},
	{Name: "healthy", Healthy: true},
}

// Rate is a count of verdicts that went one way, out of runs, with its
// Wilson 95% interval.
type Rate struct {
	Hits, Runs int
}

// P is the measured proportion.
func (r Rate) P() float64 {
	if r.Runs == 0 {
		return math.NaN()
	}
	return float64(r.Hits) / float64(r.Runs)
}

// Wilson is the Wilson score 95% interval of the proportion.
func (r Rate) Wilson() (lo, hi float64) {
	if r.Runs == 0 {
		return math.NaN(), math.NaN()
	}
	const z = 1.959963984540054
	n, p := float64(r.Runs), r.P()
	d := 1 + z*z/n
	c := (p + z*z/(2*n)) / d
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / d
	return max(c-h, 0), min(c+h, 1)
}

func (r Rate) String() string {
	lo, hi := r.Wilson()
	return fmt.Sprintf("%d of %d (%.2f%%; 95%% interval %.2f%%–%.2f%%)", r.Hits, r.Runs, 100*r.P(), 100*lo, 100*hi)
}

// DetectorRates are the detector's verdicts on one behaviour.
type DetectorRates struct {
	Behaviour Behaviour
	// Wrong counts the wrong verdicts: healthy for a revision that must be
	// caught, unhealthy for one that must not be flagged.
	Wrong Rate
	// Exact is the probability of a wrong verdict the rule predicts
	// (probe.Rule.PassProbability), for comparison.
	Exact    float64
	Attempts int // probes sent in all
	Elapsed  time.Duration
}

// DetectorErrorRates runs the CLI's default probe policy (the code `guard`
// and `test` run: probe.Checker.WaitHealthy) runs times against each
// behaviour on the fake's serving plane, and counts wrong verdicts.
func DetectorErrorRates(ctx context.Context, flags ProbeFlags, runs int, seed uint64) ([]DetectorRates, error) {
	var world fakerun.World
	for i, b := range Behaviours {
		name := fmt.Sprintf("target%d", i)
		env := map[string]string{"APP_VERSION": "1.0.0"}
		if b.Break != "" {
			env[fakeapp.EnvBreak] = b.Break
		}
		world.Services = append(world.Services, fakerun.SeedService{
			Project: Project, Region: Region, Name: name,
			Revisions: []fakerun.SeedRevision{{Name: name + "-00001-aaa", Env: env}},
			Traffic:   []fakerun.SeedTarget{{Revision: name + "-00001-aaa", Percent: 100}},
		})
	}
	srv, err := fakerun.NewServer()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	plane := fakeapp.New(srv, fakeapp.WithSeed(seed))
	defer plane.Close()
	if err := srv.Seed(world); err != nil {
		return nil, err
	}
	checker := &probe.Checker{Timeout: flags.Timeout}
	policy := probe.Policy{Retries: flags.Retries, RetryDelay: flags.RetryDelay, Successes: flags.Successes, Failures: flags.Failures}
	var out []DetectorRates
	for i, b := range Behaviours {
		url := srv.Service(FullName(fmt.Sprintf("target%d", i))).GetUri()
		dr := DetectorRates{Behaviour: b, Wrong: Rate{Runs: runs}}
		p := policy.Rule().PassProbability(b.PFail)
		dr.Exact = p
		if b.Healthy {
			dr.Exact = 1 - p
		}
		start := time.Now()
		for range runs {
			v := checker.WaitHealthy(ctx, url, probe.Expect{}, policy)
			if v.Err != nil || v.Decision == probe.Undecided {
				return nil, fmt.Errorf("%s: no verdict: %s (last %s)", b.Name, v.Summary(policy.Rule()), v.Last.Detail)
			}
			dr.Attempts += v.Total
			if v.Healthy != b.Healthy {
				dr.Wrong.Hits++
			}
		}
		dr.Elapsed = time.Since(start)
		out = append(out, dr)
	}
	return out, nil
}

// GuardRates are the real `runrollback guard` verdicts after deploys of one
// behaviour.
type GuardRates struct {
	Behaviour Behaviour
	Wrong     Rate
	Elapsed   time.Duration
}

// GuardErrorRates deploys each behaviour's revision runs times, each on a
// fresh fake (plane seeded with the run's number), at LATEST=100 as `gcloud
// run deploy` does, and runs `runrollback snapshot` before and `runrollback
// guard --restore-from` after it with flags: exit 0 is a healthy verdict
// (last-good moved onto the revision), exit 1 a rollback.
func (bn *Bench) GuardErrorRates(ctx context.Context, flags ProbeFlags, runs int) ([]GuardRates, error) {
	fast := Model{Scale: 1, DeployOp: time.Nanosecond, OtherOp: time.Nanosecond, Rate: 1}
	var out []GuardRates
	for bi, b := range Behaviours {
		gr := GuardRates{Behaviour: b, Wrong: Rate{Runs: runs}}
		start := time.Now()
		for i := range runs {
			healthy, err := bn.guardOnce(ctx, fast, flags, b, uint64(bi*1_000_000+i))
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", b.Name, i, err)
			}
			if healthy != b.Healthy {
				gr.Wrong.Hits++
			}
		}
		gr.Elapsed = time.Since(start)
		out = append(out, gr)
	}
	return out, nil
}

func (bn *Bench) guardOnce(ctx context.Context, m Model, flags ProbeFlags, b Behaviour, seed uint64) (healthy bool, err error) {
	w, err := NewWorld(m, fakerun.DefaultWorld(), false, fakeapp.WithSeed(seed), fakeapp.WithColdStart(0))
	if err != nil {
		return false, err
	}
	defer w.Close()
	c, err := bn.client(ctx, w)
	if err != nil {
		return false, err
	}
	defer c.Close()
	dir := bn.TempDir()
	env := Env(w.Srv.Addr, filepath.Join(dir, "state"))
	snapFile := filepath.Join(dir, "snapshot.json")
	if _, err := bn.CLI.Expect(ctx, env, 0, append(append([]string{"snapshot"}, Target(w.Srv.Addr)...), "--out", snapFile)...); err != nil {
		return false, err
	}
	denv := map[string]string{"APP_VERSION": "1.2.0"}
	if b.Break != "" {
		denv[fakeapp.EnvBreak] = b.Break
	}
	if err := badDeploy(ctx, c, denv); err != nil {
		return false, err
	}
	args := append(append([]string{"guard"}, Target(w.Srv.Addr)...), "--restore-from", snapFile, "--output", "json")
	r, err := bn.CLI.Run(ctx, env, append(args, flags.Args(m)...)...)
	if err != nil {
		return false, err
	}
	switch r.Code {
	case 0:
		return true, nil
	case 1:
		rep, err := Decode[Report](r)
		if err != nil {
			return false, err
		}
		if !rep.TrafficRestored {
			return false, fmt.Errorf("guard judged unhealthy but did not restore: %s", r)
		}
		return false, nil
	}
	return false, fmt.Errorf("unexpected exit: %s", r)
}
