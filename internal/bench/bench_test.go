package bench

// The benchmarks behind BENCHMARKS.md. `go test ./...` runs none of them
// (they need -bench) and builds no binary. Run them all, in one process,
// with:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./internal/bench/
//
// and add -update-benchmarks to rewrite BENCHMARKS.md from that run. b.N is 1;
// each benchmark repeats its procedures as its -bench.* flag says.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

var (
	update = flag.Bool("update-benchmarks", false, "rewrite BENCHMARKS.md at the module root from this run (needs every benchmark: -bench .)")

	scale     = flag.Float64("bench.scale", DefaultModel.Scale, "divide every modelled real-world duration by this")
	rtt       = flag.Duration("bench.rtt", DefaultModel.RTT, "real-world round trip of one Admin API call")
	deployOp  = flag.Duration("bench.deploy-op", DefaultModel.DeployOp, "real-world duration of an operation that creates a revision")
	otherOp   = flag.Duration("bench.other-op", DefaultModel.OtherOp, "real-world duration of any other operation")
	coldStart = flag.Duration("bench.cold-start", DefaultModel.ColdStart, "real-world cold start of a new revision")
	rate      = flag.Float64("bench.rate", DefaultModel.Rate, "real-world user requests a second to the service URL (open loop)")

	exposureRuns = flag.Int("bench.exposure-runs", 5, "BenchmarkExposure: runs of each procedure")
	localRuns    = flag.Int("bench.local-runs", 20, "BenchmarkLocalDrill: runs of test --local")
	detectorRuns = flag.Int("bench.detector-runs", 5000, "BenchmarkDetection: detector verdicts per revision")
	guardRuns    = flag.Int("bench.guard-runs", 100, "BenchmarkDetection: runrollback guard verdicts per revision")
	fleetN       = flag.Int("bench.fleet-services", 200, "BenchmarkFleet: services drilled")
	fleetPar     = flag.Int("bench.fleet-parallel", 20, "BenchmarkFleet: --parallel")
	fleetRate    = flag.Float64("bench.fleet-rate", 700, "BenchmarkFleet: --write-rate, writes in any (real) minute")
	fleetQuota   = flag.Int("bench.fleet-quota", 0, "BenchmarkFleet: when > 0, a proxy refuses writes past this many in any minute")
)

func model() Model {
	return Model{Scale: *scale, RTT: *rtt, DeployOp: *deployOp, OtherOp: *otherOp, ColdStart: *coldStart, Rate: *rate}
}

var (
	results   = Results{Exposure: map[string][]Outcome{}}
	resultsMu sync.Mutex
	ran       = map[string]bool{}

	cliOnce sync.Once
	cli     *CLI
	cliErr  error
	cliDir  string
)

// theCLI builds the command once per process.
func theCLI(b *testing.B) *CLI {
	b.Helper()
	cliOnce.Do(func() {
		cliDir, cliErr = os.MkdirTemp("", "runrollback-bench-")
		if cliErr == nil {
			cli, cliErr = BuildCLI(context.Background(), cliDir)
		}
	})
	if cliErr != nil {
		b.Fatal(cliErr)
	}
	return cli
}

func setup(b *testing.B) *Bench {
	b.Helper()
	m := model()
	if err := m.Validate(); err != nil {
		b.Fatal(err)
	}
	bn := &Bench{CLI: theCLI(b), Model: m, TempDir: b.TempDir}
	b.ResetTimer() // the build is not the benchmark
	return bn
}

func TestMain(m *testing.M) {
	flag.Parse()
	wd, _ := os.Getwd()
	root := ModuleRoot(wd)
	results.Started, results.LoadBefore = time.Now(), LoadAverage()
	results.Machine = ThisMachine(root)
	code := m.Run()
	results.Finished, results.LoadAfter = time.Now(), LoadAverage()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	if code == 0 && *update {
		if missing := missingBenchmarks(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "-update-benchmarks: BENCHMARKS.md not written: %v did not run (use -bench .)\n", missing)
			os.Exit(1)
		}
		results.Model = model()
		results.Command = fmt.Sprintf("go test -run '^$' -bench . -benchtime 1x -timeout 60m ./internal/bench/ -update-benchmarks%s", nonDefaultFlags())
		if err := os.WriteFile(root+"/BENCHMARKS.md", []byte(results.Markdown()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "wrote", root+"/BENCHMARKS.md")
	}
	os.Exit(code)
}

func missingBenchmarks() []string {
	var out []string
	for _, n := range []string{"LocalDrill", "Exposure", "Detection", "Fleet"} {
		if !ran[n] {
			out = append(out, "Benchmark"+n)
		}
	}
	return out
}

// nonDefaultFlags lists the -bench.* flags set, so the command recorded is
// the one that ran.
func nonDefaultFlags() string {
	s := ""
	flag.Visit(func(f *flag.Flag) {
		if len(f.Name) > 6 && f.Name[:6] == "bench." {
			s += fmt.Sprintf(" -%s=%s", f.Name, f.Value)
		}
	})
	return s
}

func record(name string, f func(r *Results)) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	ran[name] = true
	f(&results)
}

// BenchmarkLocalDrill is the laptop's first five minutes: `runrollback test
// --local --output json`, a fresh process each time.
func BenchmarkLocalDrill(b *testing.B) {
	bn := setup(b)
	ctx := b.Context()
	var runs []LocalRun
	for range b.N {
		for range *localRuns {
			dir := b.TempDir()
			r, err := bn.CLI.Expect(ctx, map[string]string{"RUNROLLBACK_STATE_DIR": dir, "HOME": dir}, 0, "test", "--local", "--output", "json")
			if err != nil {
				b.Fatal(err)
			}
			rep, err := Decode[Report](r)
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, LocalRun{Wall: r.Wall, Total: ms(rep.Timings.Total), Preflight: rep.Step("preflight"), Verify: rep.Step("verify"), User: r.User, Sys: r.Sys, MaxRSS: r.MaxRSS})
		}
	}
	var total, wall float64
	for _, l := range runs {
		total += msf(l.Total)
		wall += msf(l.Wall)
	}
	b.ReportMetric(total/float64(len(runs)), "report_total-ms")
	b.ReportMetric(wall/float64(len(runs)), "process_wall-ms")
	record("LocalDrill", func(r *Results) { r.Local = runs })
}

// BenchmarkExposure runs, -bench.exposure-runs times each and each on a
// fresh fake under the same open-loop load, the usual approach, the guard
// with the CLI's defaults and with the workflow's flags, the drill, and
// guard --candidate with a bad and a good revision, and states each against
// its floor.
func BenchmarkExposure(b *testing.B) {
	bn := setup(b)
	ctx := b.Context()
	m := bn.Model
	out := map[string][]Outcome{}
	var drillFloors []time.Duration
	procs := []struct {
		name string
		run  func(context.Context, *World) (Outcome, error)
	}{
		{ProcBaseline, bn.Baseline},
		{ProcGuardDefaults, func(ctx context.Context, w *World) (Outcome, error) { return bn.Guard(ctx, w, CLIDefaults) }},
		{ProcGuardWorkflow, func(ctx context.Context, w *World) (Outcome, error) { return bn.Guard(ctx, w, WorkflowFlags) }},
		{ProcDrill, func(ctx context.Context, w *World) (Outcome, error) { return bn.Drill(ctx, w, CLIDefaults) }},
		{ProcCandidateBad, func(ctx context.Context, w *World) (Outcome, error) {
			return bn.Candidate(ctx, w, WorkflowFlags, false)
		}},
		{ProcCandidateGood, func(ctx context.Context, w *World) (Outcome, error) { return bn.Candidate(ctx, w, WorkflowFlags, true) }},
	}
	b.Logf("scale 1/%g: round trip %v, deploy operation %v, other operations %v, cold start %v, %g requests/s; floors: deploy at 100%% %v, drill restore %v",
		m.Scale, m.S(m.RTT), m.S(m.DeployOp), m.S(m.OtherOp), m.S(m.ColdStart), m.ScaledRate(), m.ExposureFloor(), m.RestoreFloor())
	for range b.N {
		for i := range *exposureRuns {
			for _, p := range procs {
				b.StopTimer()
				w, err := NewAPIWorld(m)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				o, err := p.run(ctx, w)
				b.StopTimer()
				w.Close()
				b.StartTimer()
				if err != nil {
					b.Fatalf("%s, run %d: %v", p.name, i+1, err)
				}
				out[p.name] = append(out[p.name], o)
				if p.name == ProcDrill {
					drillFloors = append(drillFloors, bn.DrillFloor(o))
				}
			}
		}
	}
	for _, name := range Procedures {
		os := out[name]
		a := over(os, func(o Outcome) float64 { return float64(o.Away) / float64(o.Floor) })
		f := over(os, func(o Outcome) float64 { return float64(o.Users.Failed) })
		b.Logf("%s: away/floor %s, failed requests %s, wall %s ms", name, a.fmt(3), f.fmt(0), over(os, func(o Outcome) float64 { return msf(o.Wall) }).fmt(0))
	}
	for _, name := range []string{ProcBaseline, ProcGuardDefaults, ProcGuardWorkflow, ProcDrill} {
		b.ReportMetric(over(out[name], func(o Outcome) float64 { return float64(o.Away) / float64(o.Floor) }).mean, metricName(name)+"-away/floor")
	}
	b.ReportMetric(over(out[ProcCandidateBad], func(o Outcome) float64 { return float64(o.Users.Failed) }).mean, "candidate-failed-req")
	record("Exposure", func(r *Results) {
		r.Exposure, r.DrillFloors, r.ExposureIterations = out, drillFloors, *exposureRuns*b.N
	})
}

func metricName(proc string) string {
	return map[string]string{ProcBaseline: "usual", ProcGuardDefaults: "guard-defaults", ProcGuardWorkflow: "guard-workflow", ProcDrill: "drill"}[proc]
}

// BenchmarkDetection measures the detector's wrong verdicts on flaky:50,
// flaky:1 and a healthy revision: many runs of the probe the commands use,
// and fewer of the whole `runrollback guard`.
func BenchmarkDetection(b *testing.B) {
	bn := setup(b)
	ctx := b.Context()
	var det []DetectorRates
	var gr []GuardRates
	for i := range b.N {
		var err error
		if det, err = DetectorErrorRates(ctx, CLIDefaults, *detectorRuns, uint64(i)+1); err != nil {
			b.Fatal(err)
		}
		if gr, err = bn.GuardErrorRates(ctx, WorkflowFlags, *guardRuns); err != nil {
			b.Fatal(err)
		}
	}
	for j, d := range det {
		b.Logf("%s: detector wrong %s (rule predicts %.2f%%); runrollback guard wrong %s", d.Behaviour.Name, d.Wrong, 100*d.Exact, gr[j].Wrong)
		b.ReportMetric(100*d.Wrong.P(), d.Behaviour.Name+"-wrong-%")
	}
	record("Detection", func(r *Results) {
		r.Detector, r.Guard, r.DetectorRuns, r.GuardRuns = det, gr, *detectorRuns, *guardRuns
	})
}

// BenchmarkFleet drills -bench.fleet-services services with the real
// command under a write rate scaled like the rest.
func BenchmarkFleet(b *testing.B) {
	bn := setup(b)
	var outs []FleetOutcome
	for range b.N {
		o, err := bn.Fleet(b.Context(), *fleetN, *fleetPar, *fleetRate, *fleetQuota, CLIDefaults)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("exit %d: %d/%d pass, %d restored, %d clean, %d quota errors; %d writes, at most %d in a minute; wall %.2fs, bound %.2fs (%.3fx); restore mean %.0fms max %.0fms; exposure max %.0fms; peak RSS %.1f MiB",
			o.Code, o.Passed, o.Services, o.Restored, o.Clean, o.QuotaErr, o.Writes, o.MaxPerMinute, o.Wall.Seconds(), o.Bound.Seconds(),
			float64(o.Wall)/float64(o.Bound), msf(o.RestoreMean), msf(o.RestoreMax), msf(o.ExposureMax), float64(o.MaxRSS)/(1<<20))
		for _, p := range o.Problems {
			b.Logf("  %s", p)
		}
		b.ReportMetric(float64(o.Wall)/float64(o.Bound), "wall/bound")
		outs = append(outs, o)
	}
	record("Fleet", func(r *Results) {
		r.Fleet, r.FleetQuota, r.FleetPerMinute = outs[len(outs)-1:], *fleetQuota, *fleetRate
	})
}
