package main

// Benchmarks behind BENCHMARKS.md (issues 4 and 7). They run only with -bench:
//
//	go test -run '^$' -bench . -benchtime 3x ./cmd/runrollback/
//
// BenchmarkLocalDrill is `runrollback test --local --output json`, end to end.
// BenchmarkDrillVsBaseline runs the real drill, and the usual "deploy, smoke
// check, roll back by hand" approach, against a fake Cloud Run with realistic
// latencies scaled down by -rr.scale, under the same user load, and counts what
// users saw. BENCHMARKS.md defines every figure.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// Real-world figures the scaled harness models (assumptions, not
// measurements: see BENCHMARKS.md), before division by -rr.scale.
var (
	benchScale     = flag.Float64("rr.scale", 20, "BenchmarkDrillVsBaseline: divide every modelled real-world duration by this factor")
	benchRTT       = flag.Duration("rr.api-rtt", 300*time.Millisecond, "BenchmarkDrillVsBaseline: real-world round trip of one Admin API call")
	benchDeployOp  = flag.Duration("rr.deploy-op", 20*time.Second, "BenchmarkDrillVsBaseline: real-world duration of an operation that creates a revision")
	benchTrafficOp = flag.Duration("rr.traffic-op", 5*time.Second, "BenchmarkDrillVsBaseline: real-world duration of any other operation (traffic, annotations, revision delete)")
	benchColdStart = flag.Duration("rr.cold-start", 2*time.Second, "BenchmarkDrillVsBaseline: real-world cold start of a revision's first instance")
	benchThink     = flag.Duration("rr.think", 200*time.Millisecond, "BenchmarkDrillVsBaseline: real-world pause of each user between requests")
	benchUsers     = flag.Int("rr.users", 8, "BenchmarkDrillVsBaseline: concurrent users sending GET / to the service URL")
	benchPercent   = flag.Int("rr.traffic-percent", 100, "BenchmarkDrillVsBaseline: the drill's --traffic-percent")
)

// The usual approach's smoke check (`--retries 3 --retry-delay 10s`), and the
// drill's own probe pause (the CLI default --retry-delay), before scaling.
const (
	benchSmokeRetries    = 3
	benchSmokeDelay      = 10 * time.Second
	benchDrillRetryDelay = 200 * time.Millisecond
)

// benchReport is the part of the runrollback.report/v1 JSON (DESIGN.md §4) the
// benchmarks read.
type benchReport struct {
	Result   string `json:"result"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	Timings  struct {
		DetectTag int64 `json:"detect_tag"`
		Detect    int64 `json:"detect"`
		Restore   int64 `json:"restore"`
		Verify    int64 `json:"verify"`
		Total     int64 `json:"total"`
	} `json:"timings_ms"`
	Exposure struct {
		Percent int32 `json:"percent"`
		MS      int64 `json:"ms"`
	} `json:"exposure"`
	APICalls struct {
		Reads  int64 `json:"reads"`
		Writes int64 `json:"writes"`
	} `json:"api_calls"`
	BrokenRevision string `json:"broken_revision"`
}

func benchEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// benchRun runs the CLI in-process and decodes its JSON report.
func benchRun(b *testing.B, ctx context.Context, args []string, getenv func(string) string) benchReport {
	b.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, getenv)
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		b.Fatalf("%s: exit %d, no JSON report (%v)\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, err, stdout.String(), stderr.String())
	}
	if code != exitOK || rep.Result != rollback.ResultPass {
		b.Fatalf("%s: exit %d, result %q: %s\nstderr: %s", strings.Join(args, " "), code, rep.Result, rep.Error, stderr.String())
	}
	return rep
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkLocalDrill is the laptop's first five minutes: the default drill
// against the built-in fake, as `runrollback test --local --output json`.
func BenchmarkLocalDrill(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	getenv := benchEnv(map[string]string{"RUNROLLBACK_STATE_DIR": b.TempDir()})
	args := []string{"runrollback", "test", "--local", "--output", "json"}
	var wall time.Duration
	var detectTag, detect, restore, verify, total int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep := benchRun(b, ctx, args, getenv)
		wall += time.Since(start)
		detectTag += rep.Timings.DetectTag
		detect += rep.Timings.Detect
		restore += rep.Timings.Restore
		verify += rep.Timings.Verify
		total += rep.Timings.Total
	}
	n := float64(b.N)
	b.ReportMetric(benchMS(wall)/n, "wall-ms")
	b.ReportMetric(float64(detectTag)/n, "detect_tag-ms")
	b.ReportMetric(float64(detect)/n, "detect-ms")
	b.ReportMetric(float64(restore)/n, "restore-ms")
	b.ReportMetric(float64(verify)/n, "verify-ms")
	b.ReportMetric(float64(total)/n, "report_total-ms")
}

// benchLatencies are the modelled real-world durations, scaled.
type benchLatencies struct {
	scale                  float64
	rtt, deployOp, otherOp time.Duration
	coldStart, think       time.Duration
	smokeDelay, drillDelay time.Duration
	users, percent         int
}

func benchLatenciesFromFlags(b *testing.B) benchLatencies {
	if *benchScale < 1 || *benchUsers < 1 || *benchPercent < 1 || *benchPercent > 100 {
		b.Fatalf("-rr.scale must be >= 1, -rr.users >= 1, -rr.traffic-percent 1..100")
	}
	s := func(d time.Duration) time.Duration { return time.Duration(float64(d) / *benchScale) }
	return benchLatencies{
		scale: *benchScale, rtt: s(*benchRTT), deployOp: s(*benchDeployOp), otherOp: s(*benchTrafficOp),
		coldStart: s(*benchColdStart), think: s(*benchThink),
		smokeDelay: s(benchSmokeDelay), drillDelay: s(benchDrillRetryDelay),
		users: *benchUsers, percent: *benchPercent,
	}
}

// Floors: the sum of the injected waits each procedure cannot avoid
// (BENCHMARKS.md, "Overhead").
//
// The drill must read the service once, and make 7 writes (lease, deploy,
// shift, restore, template back, delete the broken revision, release), each a
// request, an operation and one poll that sees it done; 2 of those operations
// create a revision. Its first probe of the broken revision waits for the cold
// start.
func (l benchLatencies) drillFloor() time.Duration {
	return (1+2*7)*l.rtt + 2*l.deployOp + 5*l.otherOp + l.coldStart
}

// The usual approach must read the service, deploy (request, operation, poll),
// wait for the broken revision's cold start before its smoke check can get an
// answer, list revisions, read the service for its etag, and write traffic
// (request, operation, poll).
func (l benchLatencies) baselineFloor() time.Duration {
	return 7*l.rtt + l.deployOp + l.otherOp + l.coldStart
}

const (
	benchProject = "local-project"
	benchRegion  = "us-central1"
	benchService = "api"
)

var benchRef = rollback.ServiceRef{Project: benchProject, Region: benchRegion, Name: benchService}

// benchMethods are the Admin API RPCs fakerun serves; each gets the round trip.
var benchMethods = []string{
	"CreateService", "GetService", "ListServices", "UpdateService", "DeleteService",
	"GetRevision", "ListRevisions", "DeleteRevision",
	"GetOperation", "ListOperations", "DeleteOperation", "WaitOperation",
}

// benchWorld is a fake Cloud Run (API + serving plane) seeded with the default
// world, with latencies injected and operations taking their modelled time.
type benchWorld struct {
	srv   *fakerun.Server
	plane *fakeapp.Plane
	url   string // the service URL of api
	good  string // the revision serving api before anything happens
	stop  chan struct{}
	done  chan struct{}
}

func startBenchWorld(b *testing.B, l benchLatencies) *benchWorld {
	b.Helper()
	srv, err := fakerun.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	plane := fakeapp.New(srv, fakeapp.WithColdStart(l.coldStart))
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		plane.Close()
		srv.Close()
		b.Fatal(err)
	}
	for _, m := range benchMethods {
		srv.SetLatency(m, l.rtt)
	}
	srv.HoldOperations(true)
	svc := srv.Service(benchRef.FullName())
	w := &benchWorld{srv: srv, plane: plane, url: svc.GetUri(), stop: make(chan struct{}), done: make(chan struct{})}
	go w.completeOperations(l)
	if ts := svc.GetTrafficStatuses(); len(ts) == 1 {
		w.good = shortResource(ts[0].GetRevision())
	}
	if w.good == "" {
		w.close()
		b.Fatalf("the default world's %s should serve one revision: %v", benchService, svc.GetTrafficStatuses())
	}
	// The serving revision is warm before the clock starts, as in production.
	resp, err := http.Get(w.url + "/")
	if err != nil {
		w.close()
		b.Fatalf("warm up %s: %v", w.url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.close()
		b.Fatalf("warm up %s: HTTP %d", w.url, resp.StatusCode)
	}
	return w
}

func (w *benchWorld) close() {
	close(w.stop)
	<-w.done
	w.plane.Close()
	w.srv.Close()
}

func benchWrites(calls map[string]int) int {
	return calls["CreateService"] + calls["UpdateService"] + calls["DeleteService"] + calls["DeleteRevision"]
}

// completeOperations plays Cloud Run's operation time: each write's operation
// completes l.rtt (the request's own latency) plus its duration after the
// request arrives: l.deployOp when the write created a revision, else
// l.otherOp. Clients write one at a time, so releasing every pending
// operation releases that write's.
func (w *benchWorld) completeOperations(l benchLatencies) {
	defer close(w.done)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	seen := benchWrites(w.srv.Calls())
	type write struct {
		at      time.Time
		decided bool
		deploy  bool
	}
	var queue []write
	for {
		select {
		case <-w.stop:
			w.srv.ReleaseOperations()
			return
		case <-tick.C:
		}
		now := time.Now()
		if n := benchWrites(w.srv.Calls()); n > seen {
			for range n - seen {
				queue = append(queue, write{at: now})
			}
			seen = n
		}
		if len(queue) == 0 || now.Sub(queue[0].at) < l.rtt+l.otherOp {
			continue
		}
		if !queue[0].decided {
			// By now the request was handled: a revision it created is still
			// reconciling.
			queue[0].decided = true
			for _, r := range w.srv.Revisions(benchRef.FullName()) {
				if r.GetReconciling() {
					queue[0].deploy = true
				}
			}
		}
		if queue[0].deploy && now.Sub(queue[0].at) < l.rtt+l.deployOp {
			continue
		}
		w.srv.ReleaseOperations()
		queue = queue[1:]
	}
}

// benchLoad is the user load: users each send GET / to the service URL, then
// pause, until stopped.
type benchLoad struct {
	good string
	stop chan struct{}
	wg   sync.WaitGroup

	start time.Time

	mu                      sync.Mutex
	total, failed, broken   int
	firstBroken, lastBroken time.Time
}

// benchUsersSaw is what users saw during one procedure.
type benchUsersSaw struct {
	total, failed, broken int
	window                time.Duration // first to last answer from a revision other than the good one
	elapsed               time.Duration
}

func startBenchLoad(url, good string, l benchLatencies) *benchLoad {
	ld := &benchLoad{good: good, stop: make(chan struct{}), start: time.Now()}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: l.users, DisableCompression: true},
	}
	for range l.users {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			pause := time.NewTimer(0)
			defer pause.Stop()
			for {
				select {
				case <-ld.stop:
					return
				case <-pause.C:
				}
				ld.request(client, url+"/")
				pause.Reset(l.think)
			}
		}()
	}
	return ld
}

func (ld *benchLoad) request(client *http.Client, url string) {
	resp, err := client.Get(url)
	servedBy, failed := "", true
	if err == nil {
		servedBy = resp.Header.Get("X-Served-By")
		failed = resp.StatusCode < 200 || resp.StatusCode > 299
		resp.Body.Close()
	}
	now := time.Now()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.total++
	if failed {
		ld.failed++
	}
	if servedBy != "" && servedBy != ld.good {
		ld.broken++
		if ld.firstBroken.IsZero() {
			ld.firstBroken = now
		}
		ld.lastBroken = now
	}
}

func (ld *benchLoad) finish() benchUsersSaw {
	close(ld.stop)
	ld.wg.Wait()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	saw := benchUsersSaw{total: ld.total, failed: ld.failed, broken: ld.broken, elapsed: time.Since(ld.start)}
	if !ld.firstBroken.IsZero() {
		saw.window = ld.lastBroken.Sub(ld.firstBroken)
	}
	return saw
}

// benchOutcome is one procedure's figures.
type benchOutcome struct {
	wall                              time.Duration
	detectTag, detect, restore, verif time.Duration
	exposure                          time.Duration // the drill's report; 0 for the baseline
	reads, writes                     int64
	users                             benchUsersSaw
	overhead                          float64
}

// runBenchDrill runs `runrollback test` against w under load.
func runBenchDrill(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	args := []string{"runrollback", "test",
		"--emulator-host", w.srv.Addr, "--project", benchProject, "--region", benchRegion, "--service", benchService,
		"--retry-delay", l.drillDelay.String(), "--traffic-percent", fmt.Sprint(l.percent), "--output", "json"}
	// urfave/cli reads the flags' env fallbacks from the process environment, not
	// from getenv; the flags above say the same for the parser.
	getenv := benchEnv(map[string]string{
		"CLOUD_RUN_EMULATOR_HOST": w.srv.Addr,
		"GOOGLE_CLOUD_PROJECT":    benchProject,
		"CLOUDSDK_RUN_REGION":     benchRegion,
		"RUNROLLBACK_STATE_DIR":   b.TempDir(),
	})
	load := startBenchLoad(w.url, w.good, l)
	start := time.Now()
	rep := benchRun(b, ctx, args, getenv)
	wall := time.Since(start)
	saw := load.finish()
	return benchOutcome{
		wall:      wall,
		detectTag: time.Duration(rep.Timings.DetectTag) * time.Millisecond,
		detect:    time.Duration(rep.Timings.Detect) * time.Millisecond,
		restore:   time.Duration(rep.Timings.Restore) * time.Millisecond,
		verif:     time.Duration(rep.Timings.Verify) * time.Millisecond,
		exposure:  time.Duration(rep.Exposure.MS) * time.Millisecond,
		reads:     rep.APICalls.Reads, writes: rep.APICalls.Writes,
		users:    saw,
		overhead: float64(wall) / float64(l.drillFloor()),
	}
}

// runBenchBaseline is the usual approach: a plain deploy that sends 100% to the
// new (broken) revision, a smoke check with fixed retries and delay, and, when
// it fails, a traffic update to the previous revision by creation order.
func runBenchBaseline(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	c, err := cloudrun.New(ctx, cloudrun.Config{
		// As openBackend configures the drill's client for an emulator.
		EmulatorHost: w.srv.Addr,
		CallTimeout:  10 * time.Second,
		PollInterval: 20 * time.Millisecond,
		Retry:        cloudrun.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	load := startBenchLoad(w.url, w.good, l)
	start := time.Now()
	svc, err := c.GetService(ctx, benchRef)
	if err != nil {
		b.Fatal(err)
	}
	_, err = c.DeployRevision(ctx, benchRef, svc.Etag, rollback.Deploy{
		Env:     map[string]string{fakeapp.EnvBreak: "health"},
		Traffic: rollback.Split{{Latest: true, Percent: 100}},
	})
	if err != nil {
		b.Fatalf("baseline deploy: %v", err)
	}
	deployed := time.Now()
	if benchSmoke(ctx, svc.URI, benchSmokeRetries, l.smokeDelay) {
		b.Fatal("baseline: the smoke check passed on the broken revision")
	}
	detected := time.Now()
	revs, err := c.ListRevisions(ctx, benchRef) // newest first
	if err != nil || len(revs) < 2 {
		b.Fatalf("baseline: list revisions: %v %v", revs, err)
	}
	prev := revs[1].Name
	cur, err := c.GetService(ctx, benchRef)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.UpdateTraffic(ctx, benchRef, cur.Etag, rollback.Split{{Revision: prev, Percent: 100}}); err != nil {
		b.Fatalf("baseline: roll back to %s: %v", prev, err)
	}
	end := time.Now()
	saw := load.finish()
	if prev != w.good {
		b.Fatalf("baseline rolled back to %s, not to %s", prev, w.good)
	}
	reads, writes := c.Calls()
	return benchOutcome{
		wall:    end.Sub(start),
		detect:  detected.Sub(deployed),
		restore: end.Sub(detected),
		reads:   reads, writes: writes,
		users:    saw,
		overhead: float64(end.Sub(start)) / float64(l.baselineFloor()),
	}
}

// benchSmoke is a deploy workflow's smoke check, like
// `curl --fail --retry N --retry-delay D URL/api/v1/health/`: healthy on the
// first 2xx, else after retries+1 attempts with a fixed pause between them.
func benchSmoke(ctx context.Context, baseURL string, retries int, delay time.Duration) bool {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; ; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/health/", nil)
		if err != nil {
			return false
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
				return true
			}
		}
		if i == retries {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
	}
}

// BenchmarkDrillVsBaseline runs, per iteration, the real drill and then the
// usual approach, each against a fresh fake with the same injected latencies
// and the same user load, and reports both side by side (BENCHMARKS.md).
func BenchmarkDrillVsBaseline(b *testing.B) {
	l := benchLatenciesFromFlags(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.Logf("scale 1/%g: API round trip %v, deploy operation %v, other operations %v, cold start %v, %d users pausing %v, smoke --retries %d --retry-delay %v, drill --retry-delay %v --traffic-percent %d; floors: drill %v, baseline %v",
		l.scale, l.rtt, l.deployOp, l.otherOp, l.coldStart, l.users, l.think, benchSmokeRetries, l.smokeDelay, l.drillDelay, l.percent,
		l.drillFloor(), l.baselineFloor())

	var drills, bases []benchOutcome
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		w := startBenchWorld(b, l)
		b.StartTimer()
		d := runBenchDrill(b, ctx, w, l)
		b.StopTimer()
		w.close()

		w = startBenchWorld(b, l)
		b.StartTimer()
		base := runBenchBaseline(b, ctx, w, l)
		b.StopTimer()
		w.close()
		b.StartTimer()

		drills, bases = append(drills, d), append(bases, base)
		b.Logf("drill wall %.0fms (detect-tag %.0f, detect %.0f, restore %.0f, verify %.0f ms; api %dr/%dw; users %d req, %d failed, %d broken, window %.0fms; overhead %.2fx) | baseline wall %.0fms (detect %.0f, restore %.0f ms; api %dr/%dw; users %d req, %d failed, %d broken, window %.0fms; overhead %.2fx)",
			benchMS(d.wall), benchMS(d.detectTag), benchMS(d.detect), benchMS(d.restore), benchMS(d.verif), d.reads, d.writes,
			d.users.total, d.users.failed, d.users.broken, benchMS(d.users.window), d.overhead,
			benchMS(base.wall), benchMS(base.detect), benchMS(base.restore), base.reads, base.writes,
			base.users.total, base.users.failed, base.users.broken, benchMS(base.users.window), base.overhead)
	}

	avg := func(xs []benchOutcome, f func(benchOutcome) float64) float64 {
		sum := 0.0
		for _, x := range xs {
			sum += f(x)
		}
		return sum / float64(len(xs))
	}
	report := func(prefix string, xs []benchOutcome, drill bool) {
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.wall) }), prefix+"-wall-ms")
		if drill {
			b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.detectTag) }), prefix+"-detect_tag-ms")
		}
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.detect) }), prefix+"-detect-ms")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.restore) }), prefix+"-restore-ms")
		if drill {
			b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.verif) }), prefix+"-verify-ms")
			b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.exposure) }), prefix+"-exposure-ms")
		}
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return float64(o.reads) }), prefix+"-api-reads")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return float64(o.writes) }), prefix+"-api-writes")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return float64(o.users.total) }), prefix+"-user-req")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return float64(o.users.failed) }), prefix+"-failed-req")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return float64(o.users.broken) }), prefix+"-broken-req")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return benchMS(o.users.window) }), prefix+"-window-ms")
		b.ReportMetric(avg(xs, func(o benchOutcome) float64 { return o.overhead }), prefix+"-overhead-x")
	}
	report("drill", drills, true)
	report("base", bases, false)
	drillFailed, baseFailed := 0, 0
	for i := range drills {
		drillFailed += drills[i].users.failed
		baseFailed += bases[i].users.failed
	}
	// Over all iterations; with no failed request in the drill, a lower bound.
	b.ReportMetric(float64(baseFailed)/float64(max(drillFailed, 1)), "failed-ratio")
}
