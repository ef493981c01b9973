package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Procedure names, in the order BENCHMARKS.md shows them.
const (
	ProcBaseline      = "usual approach"
	ProcGuardDefaults = "guard, CLI defaults"
	ProcGuardWorkflow = "guard, workflow flags"
	ProcDrill         = "drill (test)"
	ProcCandidateBad  = "guard --candidate, bad revision"
	ProcCandidateGood = "guard --candidate, good revision"
)

// Procedures lists them in order.
var Procedures = []string{ProcBaseline, ProcGuardDefaults, ProcGuardWorkflow, ProcDrill, ProcCandidateBad, ProcCandidateGood}

// LocalRun is one `runrollback test --local --output json`.
type LocalRun struct {
	Wall, Total, Preflight, Verify time.Duration
	User, Sys                      time.Duration
	MaxRSS                         int64
}

// Results is everything one run measured, for BENCHMARKS.md.
type Results struct {
	Command            string
	Started, Finished  time.Time
	LoadBefore         string
	LoadAfter          string
	Machine            Machine
	Model              Model
	Local              []LocalRun
	Exposure           map[string][]Outcome
	DrillFloors        []time.Duration // per drill iteration
	Detector           []DetectorRates
	DetectorRuns       int
	Guard              []GuardRates
	GuardRuns          int
	Fleet              []FleetOutcome
	FleetQuota         int
	FleetPerMinute     float64
	ExposureIterations int
}

type agg struct{ mean, lo, hi float64 }

func aggregate(xs []float64) agg {
	if len(xs) == 0 {
		return agg{}
	}
	a := agg{lo: xs[0], hi: xs[0]}
	for _, x := range xs {
		a.mean += x
		a.lo, a.hi = min(a.lo, x), max(a.hi, x)
	}
	a.mean /= float64(len(xs))
	return a
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func over(os []Outcome, f func(Outcome) float64) agg {
	var xs []float64
	for _, o := range os {
		xs = append(xs, f(o))
	}
	return aggregate(xs)
}

func (a agg) fmt(prec int) string {
	if a.lo == a.hi {
		return fmt.Sprintf("%.*f", prec, a.mean)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, a.mean, prec, a.lo, prec, a.hi)
}

func yes(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "**no**"
}

// Markdown renders BENCHMARKS.md.
func (r Results) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Model
	p("# Benchmarks\n\n")
	p("This file is written by the benchmark itself, from one run; no figure in it is typed in. The code is\n")
	p("`internal/bench` (the harness) and `internal/bench/bench_test.go` (the entry points). It runs the real\n")
	p("`runrollback` command, built from this tree into a temporary directory, as its own process, against the\n")
	p("fake Cloud Run (`fakes/`), with the latencies of section 6 scaled down ×%g. Rerun and rewrite it with:\n\n", m.Scale)
	p("```sh\n%s\n```\n\n", r.Command)
	p("`task bench` runs the same benchmarks without rewriting this file.\n\n")

	p("| run | |\n|---|---|\n")
	p("| commit | %s", r.Machine.Commit)
	if len(r.Machine.Dirty) > 0 {
		p(", plus uncommitted changes to %s", strings.Join(r.Machine.Dirty, "; "))
	}
	p(" |\n")
	p("| when | %s to %s (%s) |\n", r.Started.UTC().Format("2006-01-02 15:04:05 UTC"), r.Finished.UTC().Format("15:04:05 UTC"), r.Finished.Sub(r.Started).Round(time.Second))
	p("| machine | %d CPUs (%s), %s, %s, %s, kernel %s |\n", r.Machine.CPUs, r.Machine.CPU, r.Machine.Memory, r.Machine.Go, r.Machine.OSArch, r.Machine.Kernel)
	p("| load average (1, 5, 15 min) | %s before, %s after |\n\n", r.LoadBefore, r.LoadAfter)
	p("The machine is shared: a load average above its %d CPUs means other work ran at the same time, which\n", r.Machine.CPUs)
	p("slows the command and the fake alike and shows most in wall times; the ratios below are against floors\n")
	p("the model allows, not against an idle machine.\n\n")

	// 1. Targets.
	p("## 1. Targets\n\n")
	p("| target | measured | met? |\n|---|---|---|\n")
	ratio := func(name string) agg {
		return over(r.Exposure[name], func(o Outcome) float64 { return float64(o.Away) / float64(o.Floor) })
	}
	for _, name := range []string{ProcGuardDefaults, ProcGuardWorkflow} {
		a := ratio(name)
		p("| %s: users on the bad revision ≤ 1.1 × the detector floor | %s× (mean of %d; range %.3f–%.3f) | %s |\n",
			name, fmt.Sprintf("%.3f", a.mean), len(r.Exposure[name]), a.lo, a.hi, yes(a.hi <= 1.1))
	}
	for _, d := range r.Detector {
		g := r.guardRates(d.Behaviour.Name)
		met := yes(d.Wrong.P() <= 0.01 && g.Wrong.P() <= 0.01)
		if d.Behaviour.Healthy {
			p("| %s revision flagged in ≤ 1%% of runs | flagged by the detector in %s; by `runrollback guard` in %s | %s |\n", d.Behaviour.Name, d.Wrong, g.Wrong, met)
		} else {
			p("| %s caught in ≥ 99%% of runs | missed by the detector in %s; by `runrollback guard` in %s | %s |\n", d.Behaviour.Name, d.Wrong, g.Wrong, met)
		}
	}
	if len(r.Local) > 0 {
		var totals []float64
		for _, l := range r.Local {
			totals = append(totals, msf(l.Total))
		}
		a := aggregate(totals)
		p("| `test --local` report total ≤ 150 ms | median %.0f ms, max %.0f ms over %d runs | %s |\n", median(totals), a.hi, len(totals), yes(a.hi <= 150))
	}
	for _, f := range r.Fleet {
		x := float64(f.Wall) / float64(f.Bound)
		p("| %d-service fleet within 1.05 × the quota bound | %.3f× (%.2f s for %d writes at %d a minute: bound %.2f s) | %s |\n",
			f.Services, x, f.Wall.Seconds(), f.Writes, f.Rate, f.Bound.Seconds(), yes(x <= 1.05))
		limit := m.RestoreFloor() + 4*m.S(m.RTT)
		p("| no restore waits on the limiter | longest restore of the %d drills %.0f ms, against its write's floor of %.0f ms (round trip and operation); longest exposure %.0f ms | %s (under %.0f ms) |\n",
			f.Services, msf(f.RestoreMax), msf(m.RestoreFloor()), msf(f.ExposureMax), yes(f.RestoreMax < limit), msf(limit))
	}
	for _, name := range []string{ProcCandidateBad, ProcCandidateGood} {
		a := over(r.Exposure[name], func(o Outcome) float64 { return float64(o.Users.Failed) })
		p("| %s: 0 failed user requests | %s failed in each of %d runs | %s |\n", name, a.fmt(0), len(r.Exposure[name]), yes(a.hi == 0))
	}
	p("\n")

	// 2. Exposure.
	p("## 2. Time on a bad revision, against the floor (`BenchmarkExposure`)\n\n")
	p("Each procedure ran %d times, each on a fresh fake, in turn, under the same open-loop load of %g requests a\n", r.ExposureIterations, m.ScaledRate())
	p("second (%g a second real-world, ×%g). *Away* is how long users' traffic was off the good revision, by the\n", m.Rate, m.Scale)
	p("operation clock: from the operation that moved it completing to the one that moved it back completing.\n")
	p("Figures are means, with the range over the runs in brackets.\n\n")
	p("| procedure | away (ms) | floor (ms) | away ÷ floor | failed user requests | ÷ the floor's (rate × floor) | requests to the bad revision | wall (ms) | API reads / writes |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range Procedures {
		os := r.Exposure[name]
		if len(os) == 0 {
			continue
		}
		floor := os[0].Floor
		floorReq := m.ScaledRate() * floor.Seconds()
		switch name {
		case ProcCandidateBad, ProcCandidateGood:
			p("| %s | 0 (never moved) | — | — | %s | — | %s | %s | %s / %s |\n", name,
				over(os, func(o Outcome) float64 { return float64(o.Users.Failed) }).fmt(0),
				over(os, func(o Outcome) float64 { return float64(o.Users.Broken) }).fmt(0),
				over(os, func(o Outcome) float64 { return msf(o.Wall) }).fmt(0),
				over(os, func(o Outcome) float64 { return float64(o.Reads) }).fmt(0),
				over(os, func(o Outcome) float64 { return float64(o.Writes) }).fmt(0))
		default:
			p("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s / %s |\n", name,
				over(os, func(o Outcome) float64 { return msf(o.Away) }).fmt(0), msf(floor),
				over(os, func(o Outcome) float64 { return float64(o.Away) / float64(o.Floor) }).fmt(3),
				over(os, func(o Outcome) float64 { return float64(o.Users.Failed) }).fmt(0),
				over(os, func(o Outcome) float64 { return float64(o.Users.Failed) / floorReq }).fmt(3),
				over(os, func(o Outcome) float64 { return float64(o.Users.Broken) }).fmt(0),
				over(os, func(o Outcome) float64 { return msf(o.Wall) }).fmt(0),
				over(os, func(o Outcome) float64 { return float64(o.Reads) }).fmt(0),
				over(os, func(o Outcome) float64 { return float64(o.Writes) }).fmt(0))
		}
	}
	p("\n")
	p("Floors (section 6 defines them): %.0f ms for a deploy at 100%% (the bad revision's cold start, then one\n", msf(m.ExposureFloor()))
	p("traffic-only write: round trip and operation), the guard's and the usual approach's; %.0f ms for the\n", msf(m.RestoreFloor()))
	p("drill, whose tag URL has already proved the revision broken before users are shifted (the restore's\n")
	p("write only). `guard --candidate` never moves users.\n\n")
	if ds := r.Exposure[ProcDrill]; len(ds) > 0 {
		var xs []float64
		for i, d := range ds {
			xs = append(xs, float64(d.Wall)/float64(r.DrillFloors[i]))
		}
		a := aggregate(xs)
		p("**Drill overhead**: wall ÷ the floor of the reads and writes it made (one read; %s writes, each a round\n", over(ds, func(o Outcome) float64 { return float64(o.Deploys + o.Others) }).fmt(0))
		p("trip and its operation, %s of them creating a revision; the broken revision's cold start): %s×\n",
			over(ds, func(o Outcome) float64 { return float64(o.Deploys) }).fmt(0), a.fmt(3))
		var floors []float64
		for _, f := range r.DrillFloors {
			floors = append(floors, msf(f))
		}
		p("(floor %s ms, wall %s ms).\n\n", aggregate(floors).fmt(0), over(ds, func(o Outcome) float64 { return msf(o.Wall) }).fmt(0))
	}
	if cs := r.Exposure[ProcCandidateBad]; len(cs) > 0 {
		p("**guard --candidate**, bad revision: the verdict came %s ms after its no-traffic deploy was done (floor:\n",
			over(cs, func(o Outcome) float64 { return msf(o.Verdict) }).fmt(0))
		p("its cold start on the tag URL, %.0f ms: %s×), with no write.", msf(cs[0].Floor),
			over(cs, func(o Outcome) float64 { return float64(o.Verdict) / float64(o.Floor) }).fmt(3))
		if gs := r.Exposure[ProcCandidateGood]; len(gs) > 0 {
			p(" Good revision: all users on it %s ms after its deploy\n", over(gs, func(o Outcome) float64 { return msf(o.To100) }).fmt(0))
			p("landed (a deploy at 100%% moves them at that moment), the guard's verdict %s ms after the deploy was done.", over(gs, func(o Outcome) float64 { return msf(o.Verdict) }).fmt(0))
		}
		p("\n\n")
	}
	for _, name := range []string{ProcGuardDefaults, ProcGuardWorkflow} {
		os := r.Exposure[name]
		if len(os) == 0 {
			continue
		}
		p("**%s**: the guard process started %s ms before its first Admin API call; it detected in %s ms,\n", name,
			over(os, func(o Outcome) float64 { return msf(o.ProcessStart) }).fmt(0), over(os, func(o Outcome) float64 { return msf(o.Detect) }).fmt(0))
		p("restored in %s ms and verified in %s ms (its report's timings).\n\n",
			over(os, func(o Outcome) float64 { return msf(o.Restore) }).fmt(0), over(os, func(o Outcome) float64 { return msf(o.Verify) }).fmt(0))
	}
	var lag time.Duration
	for _, os := range r.Exposure {
		for _, o := range os {
			lag = max(lag, o.Users.MaxLag)
		}
	}
	p("The load generator sent every request within %.1f ms of its schedule.\n\n", msf(lag))

	// 3. Detection.
	p("## 3. The detector's error rates (`BenchmarkDetection`)\n\n")
	p("A wrong verdict is *healthy* for flaky:50 (the fake answers 500 to half the requests, decided by a seeded\n")
	p("random stream) and *unhealthy* for flaky:1 and a healthy revision. The detector column runs the probe the\n")
	p("commands run (`probe.Checker.WaitHealthy` with the %s) %d times against each revision's service URL on\n", CLIDefaults.Name, r.DetectorRuns)
	p("the fake's serving plane; the command column deploys the revision at LATEST=100 on a fresh fake %d times\n", r.GuardRuns)
	p("and runs `runrollback snapshot`, then `runrollback guard --restore-from` with the workflow flags\n")
	p("(`%s`): exit 0 is a healthy verdict, exit 1 a rollback. Intervals are Wilson 95%%.\n\n", WorkflowFlags)
	p("| revision | wrong verdict | detector | predicted by the rule | `runrollback guard` |\n|---|---|---|---|---|\n")
	for _, d := range r.Detector {
		want := "healthy (missed)"
		if d.Behaviour.Healthy {
			want = "unhealthy (false alarm)"
		}
		p("| %s | %s | %s | %.2f%% | %s |\n", d.Behaviour.Name, want, d.Wrong, 100*d.Exact, r.guardRates(d.Behaviour.Name).Wrong)
	}
	p("\n")

	// 4. Local drill.
	if len(r.Local) > 0 {
		p("## 4. The local drill (`BenchmarkLocalDrill`)\n\n")
		p("`runrollback test --local --output json`, %d times, each a fresh process with its in-process fake:\n\n", len(r.Local))
		col := func(f func(LocalRun) float64) string {
			var xs []float64
			for _, l := range r.Local {
				xs = append(xs, f(l))
			}
			a := aggregate(xs)
			return fmt.Sprintf("%.0f (%.0f–%.0f)", median(xs), a.lo, a.hi)
		}
		p("| figure | median (min–max) |\n|---|---|\n")
		p("| report `timings_ms.total` (ms) | %s |\n", col(func(l LocalRun) float64 { return msf(l.Total) }))
		p("| step `preflight` (ms) | %s |\n", col(func(l LocalRun) float64 { return msf(l.Preflight) }))
		p("| step `verify` (ms) | %s |\n", col(func(l LocalRun) float64 { return msf(l.Verify) }))
		p("| process wall (ms) | %s |\n", col(func(l LocalRun) float64 { return msf(l.Wall) }))
		p("| process CPU, user + system (ms) | %s |\n", col(func(l LocalRun) float64 { return msf(l.User + l.Sys) }))
		p("| process peak RSS (MiB) | %s |\n\n", col(func(l LocalRun) float64 { return float64(l.MaxRSS) / (1 << 20) }))
	}

	// 5. Fleet.
	for _, f := range r.Fleet {
		p("## 5. A %d-service fleet under the write quota (`BenchmarkFleet`)\n\n", f.Services)
		p("`runrollback test --services-file FILE --parallel %d --write-rate %d`, one process, against one fake with\n", f.Parallel, f.Rate)
		p("the scaled round trip on every call, and a proxy that makes each operation take its scaled time (the\n")
		p("fake completes them at once). The quota is not scaled: `--write-rate` counts writes in a real minute,\n")
		p("and the rate is set low enough that the drills want to write faster than it allows and the run spans\n")
		p("more than one window, so the quota is what bounds it. The writes are timed as they reach the proxy.")
		if r.FleetQuota > 0 {
			p(" A proxy in front of the fake refused any write past %d in a scaled minute.", r.FleetQuota)
		}
		p("\n\n| figure | value |\n|---|---|\n")
		p("| exit code | %d |\n", f.Code)
		p("| passed / traffic restored / left clean | %d / %d / %d of %d |\n", f.Passed, f.Restored, f.Clean, f.Services)
		p("| reports with a quota error | %d |\n", f.QuotaErr)
		if r.FleetQuota > 0 {
			p("| writes the quota proxy refused | %d |\n", f.Rejected)
		}
		p("| writes | %d |\n", f.Writes)
		p("| most writes in any minute | %d (`--write-rate` %d) |\n", f.MaxPerMinute, f.Rate)
		p("| wall | %.2f s |\n", f.Wall.Seconds())
		p("| quota bound (writes ÷ rate) | %.2f s |\n", f.Bound.Seconds())
		p("| wall ÷ bound | %.3f× |\n", float64(f.Wall)/float64(f.Bound))
		p("| restore per drill (report), mean / max | %.0f / %.0f ms |\n", msf(f.RestoreMean), msf(f.RestoreMax))
		p("| exposure per drill, max | %.0f ms |\n", msf(f.ExposureMax))
		p("| drill total, max | %.2f s |\n", f.TotalMax.Seconds())
		p("| process CPU, user + system | %.2f s |\n", (f.User + f.Sys).Seconds())
		p("| process peak RSS | %.1f MiB |\n\n", float64(f.MaxRSS)/(1<<20))
		for _, pr := range f.Problems {
			p("- %s\n", pr)
		}
		if len(f.Problems) > 0 {
			p("\n")
		}
	}

	// 6. Model.
	p("## 6. The model, and the floors\n\n")
	p("The inputs are assumptions, not measurements; every duration is divided by the scale (not the write\n")
	p("quota's minute: section 5). Flags of `go test` change them (`-bench.scale`, `-bench.rtt`, …; see bench_test.go).\n\n")
	p("| input | real-world | scaled |\n|---|---|---|\n")
	p("| one Admin API call's round trip (every RPC, operation waits included) | %v | %v |\n", m.RTT, m.S(m.RTT))
	p("| an operation that creates a revision | %v | %v |\n", m.DeployOp, m.S(m.DeployOp))
	p("| any other operation (traffic, annotations, revision delete) | %v | %v |\n", m.OtherOp, m.S(m.OtherOp))
	p("| a new revision's cold start (its first request waits for it; users' own requests start it) | %v | %v |\n", m.ColdStart, m.S(m.ColdStart))
	p("| users' requests to the service URL, open loop, fixed rate | %g/s | %g/s |\n", m.Rate, m.ScaledRate())
	p("| the usual approach's smoke check | `--retry %d --retry-delay %v` | %v pauses |\n", SmokeRetries, SmokeDelay, m.S(SmokeDelay))
	p("| the guard's probe flags: %s | `%s` | durations scaled |\n", CLIDefaults.Name, CLIDefaults)
	p("| the guard's probe flags: %s (`.github/workflows/deploy.yml`) | `%s` | durations scaled |\n\n", WorkflowFlags.Name, WorkflowFlags)
	p("A write's operation completes its round trip plus its duration after the request reaches the fake; the\n")
	p("benchmark holds the fake's operations and releases each at that moment (the operation clock), and the\n")
	p("client's long-poll of the operation returns then. The serving plane routes by the actual split, which\n")
	p("changes when an operation completes.\n\n")
	p("- **Detector floor** (guard and usual approach, a bad deploy at 100%%): from the deploy's operation\n")
	p("  completing, the bad revision answers nothing until its cold start is over; then one traffic-only write\n")
	p("  must be sent and completed: cold start + round trip + operation. Reading the service and starting the\n")
	p("  process overlap the cold start. No detector can put users back sooner.\n")
	p("- **Drill exposure floor**: the drill proves the revision broken on its tag URL before it shifts users, so\n")
	p("  once they are shifted only the restore's write remains: round trip + operation.\n")
	p("- **Drill overhead floor**: one read, and each write the drill made (its round trip and operation, as the\n")
	p("  operation clock counted them), plus the broken revision's cold start.\n")
	p("- **Failed requests ÷ the floor's**: failed user requests against those the floor itself costs at the\n")
	p("  users' rate (rate × floor, all of it at 100%% on the bad revision).\n")
	p("- **Quota bound**: writes ÷ `--write-rate`, the time the writes take at the quota's steady rate. A\n")
	p("  sliding window lets a minute's worth go at once, so a run that ends part way into a window can take\n")
	p("  less; a limiter that wastes quota takes more.\n")
	return b.String()
}

func (r Results) guardRates(name string) GuardRates {
	for _, g := range r.Guard {
		if g.Behaviour.Name == name {
			return g
		}
	}
	return GuardRates{}
}
