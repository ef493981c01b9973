package bench

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
)

func TestMaxInWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s ...float64) []time.Time {
		var out []time.Time
		for _, x := range s {
			out = append(out, t0.Add(time.Duration(x*float64(time.Second))))
		}
		return out
	}
	for _, tt := range []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0, 1, 2), 3},
		{at(0, 59.999, 60), 2}, // 0 and 60 are a minute apart: not in one window
		{at(0, 30, 60, 61, 62), 4},
	} {
		if got := MaxInWindow(tt.times, time.Minute); got != tt.want {
			t.Errorf("MaxInWindow(%v) = %d, want %d", tt.times, got, tt.want)
		}
	}
}

func TestRateWilson(t *testing.T) {
	lo, hi := Rate{Hits: 0, Runs: 100}.Wilson()
	if lo != 0 || math.Abs(hi-0.0370) > 0.0005 {
		t.Errorf("Wilson(0/100) = %.4f–%.4f, want 0–0.0370", lo, hi)
	}
	lo, hi = Rate{Hits: 50, Runs: 100}.Wilson()
	if math.Abs(lo-0.4038) > 0.0005 || math.Abs(hi-0.5962) > 0.0005 {
		t.Errorf("Wilson(50/100) = %.4f–%.4f, want 0.4038–0.5962", lo, hi)
	}
}

// TestProxyHoldsOperations: through the proxy a write returns once its
// operation's modelled time has passed, with the fake's result, and the
// quota refuses the write past its limit.
func TestProxyHoldsOperations(t *testing.T) {
	srv, err := fakerun.NewServer(fakerun.WithRollout(fakerun.InstantRollout())) // the proxy plays the operation time
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatal(err)
	}
	const op = 80 * time.Millisecond
	p, err := StartProxy(srv.Addr, ProxyConfig{Limit: 1, Window: time.Minute, OtherOp: op, DeployOp: 4 * op})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	c, err := cloudrun.New(ctx, cloudrun.Config{EmulatorHost: p.Addr, PollInterval: time.Millisecond, Retry: cloudrun.Backoff{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc, err := c.GetService(ctx, Ref)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := c.UpdateTraffic(ctx, Ref, svc.Etag, svc.Traffic)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < op {
		t.Errorf("a traffic write returned after %v, before its operation's %v", d, op)
	}
	if got.Generation != svc.Generation+1 {
		t.Errorf("generation %d after the write, want %d: not the fake's result", got.Generation, svc.Generation+1)
	}
	if _, err := c.UpdateTraffic(ctx, Ref, got.Etag, got.Traffic); err == nil || !strings.Contains(err.Error(), "Quota") {
		t.Errorf("a second write within the minute: %v, want the quota refusal", err)
	}
	if p.Rejected() != 1 || len(p.Writes()) != 1 {
		t.Errorf("rejected %d, passed %d; want 1 and 1", p.Rejected(), len(p.Writes()))
	}
}

// TestMarkdownNamesEveryTarget renders a run with one result of each kind:
// every target has a row, and the file says how it was made.
func TestMarkdownNamesEveryTarget(t *testing.T) {
	o := Outcome{Away: 400 * time.Millisecond, Floor: 365 * time.Millisecond, Wall: time.Second}
	r := Results{
		Command: "go test ...", Started: time.Now(), Finished: time.Now(), Model: DefaultModel,
		Machine:  Machine{CPUs: 2, Commit: "abc1234"},
		Local:    []LocalRun{{Total: 30 * time.Millisecond}},
		Exposure: map[string][]Outcome{},
		Fleet:    []FleetOutcome{{Services: 200, Wall: time.Second, Bound: time.Second, Rate: 700}},
	}
	for _, name := range Procedures {
		r.Exposure[name] = []Outcome{o}
	}
	r.DrillFloors = []time.Duration{time.Second}
	for _, b := range Behaviours {
		r.Detector = append(r.Detector, DetectorRates{Behaviour: b, Wrong: Rate{Runs: 10}})
		r.Guard = append(r.Guard, GuardRates{Behaviour: b, Wrong: Rate{Runs: 10}})
	}
	md := r.Markdown()
	for _, want := range []string{
		"written by the benchmark itself", "abc1234", "load average",
		"guard, CLI defaults: users on the bad revision ≤ 1.1", "guard, workflow flags: users on the bad revision ≤ 1.1",
		"flaky:50 caught in ≥ 99%", "flaky:1 revision flagged in ≤ 1%", "healthy revision flagged in ≤ 1%",
		"`test --local` report total ≤ 150 ms", "200-service fleet within 1.05", "no restore waits on the limiter",
		"guard --candidate, bad revision: 0 failed user requests", "Drill overhead",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
}
