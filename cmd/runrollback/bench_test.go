package main

// Benchmarks behind BENCHMARKS.md (issues 4 and 7). They run only with -bench
// (`task bench`):
//
//	go test -run '^$' -bench '^Benchmark(LocalDrill|DrillVsBaseline)$' -benchtime 3x ./cmd/runrollback/
//	go test -run '^$' -bench '^BenchmarkFleet100$' -benchtime 1x ./cmd/runrollback/
//
// BenchmarkLocalDrill is `runrollback test --local --output json`, end to end.
// BenchmarkDrillVsBaseline runs the real drill, the usual "deploy, smoke check,
// roll back by hand" approach, the same bad deploy caught by the real
// `runrollback guard`, and the same bad revision deployed with no traffic and
// the tag candidate, then judged by the real `runrollback guard --candidate`
// (plus one good candidate promoted the same way), against a fake Cloud Run
// with realistic latencies scaled down by -rr.scale, under the same user load,
// and counts what users saw.
// BenchmarkFleet100 drills 100 services with the real command, --parallel 20,
// under a write rate scaled the same way. BENCHMARKS.md defines every figure.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// Real-world figures the scaled harness models (assumptions, not
// measurements: see BENCHMARKS.md), before division by -rr.scale.
var (
	benchScale     = flag.Float64("rr.scale", 20, "divide every modelled real-world duration (and minute of write quota) by this factor")
	benchRTT       = flag.Duration("rr.api-rtt", 300*time.Millisecond, "real-world round trip of one Admin API call")
	benchDeployOp  = flag.Duration("rr.deploy-op", 20*time.Second, "BenchmarkDrillVsBaseline: real-world duration of an operation that creates a revision")
	benchTrafficOp = flag.Duration("rr.traffic-op", 5*time.Second, "BenchmarkDrillVsBaseline: real-world duration of any other operation (traffic, annotations, revision delete)")
	benchColdStart = flag.Duration("rr.cold-start", 2*time.Second, "real-world cold start of a revision's first instance")
	benchThink     = flag.Duration("rr.think", 200*time.Millisecond, "BenchmarkDrillVsBaseline: real-world pause of each user between requests")
	benchUsers     = flag.Int("rr.users", 8, "BenchmarkDrillVsBaseline: concurrent users sending GET / to the service URL")
	benchPercent   = flag.Int("rr.traffic-percent", 100, "BenchmarkDrillVsBaseline: the drill's --traffic-percent")
	benchFailures  = flag.Int("rr.guard-failures", 3, "BenchmarkDrillVsBaseline: the guard's --failures (the CLI default is 3)")

	benchFleetServices = flag.Int("rr.fleet-services", 100, "BenchmarkFleet100: services in the fake, all drilled")
	benchFleetParallel = flag.Int("rr.fleet-parallel", 20, "BenchmarkFleet100: the drill's --parallel")
	benchFleetRate     = flag.Float64("rr.fleet-rate", 60, "BenchmarkFleet100: real-world writes a minute given as --write-rate (passed multiplied by -rr.scale)")
	benchFleetQuota    = flag.Int("rr.fleet-quota", 0, "BenchmarkFleet100: when > 0, a proxy in front of the fake answers RESOURCE_EXHAUSTED to a write that would make more than this many in any scaled minute (sliding window)")
)

// The usual approach's smoke check (`--retries 3 --retry-delay 10s`), and the
// CLI's own probe pause (its default --retry-delay), before scaling.
const (
	benchSmokeRetries  = 3
	benchSmokeDelay    = 10 * time.Second
	benchCLIRetryDelay = 200 * time.Millisecond
)

// benchReport is the part of the runrollback.report/v1 JSON (DESIGN.md §4) the
// benchmarks read.
type benchReport struct {
	Command  string `json:"command"`
	Result   string `json:"result"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	Service  struct {
		Name string `json:"name"`
	} `json:"service"`
	After *struct {
		Healthy  bool   `json:"healthy"`
		Revision string `json:"revision"`
	} `json:"after"`
	TrafficRestored bool `json:"traffic_restored"`
	Timings         struct {
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
	Steps          []struct {
		Name       string `json:"name"`
		DurationMS int64  `json:"duration_ms"`
	} `json:"steps"`
}

// benchFleetReport is the combined report of a drill of several services.
type benchFleetReport struct {
	Schema   string        `json:"schema"`
	Command  string        `json:"command"`
	Result   string        `json:"result"`
	ExitCode int           `json:"exit_code"`
	Reports  []benchReport `json:"reports"`
}

func benchEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// benchCLI runs the CLI in-process, fails b unless it exits with wantCode,
// and returns its stdout.
func benchCLI(b *testing.B, ctx context.Context, args []string, getenv func(string) string, wantCode int) []byte {
	b.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr, getenv); code != wantCode {
		b.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// benchRun runs a command that must pass, and decodes its JSON report.
func benchRun(b *testing.B, ctx context.Context, args []string, getenv func(string) string) benchReport {
	b.Helper()
	out := benchCLI(b, ctx, args, getenv, exitOK)
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		b.Fatalf("%s: no JSON report (%v)\nstdout: %s", strings.Join(args, " "), err, out)
	}
	if rep.Result != rollback.ResultPass {
		b.Fatalf("%s: result %q: %s", strings.Join(args, " "), rep.Result, rep.Error)
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
	smokeDelay, cliDelay   time.Duration
	users, percent         int
	failures               int
}

func benchLatenciesFromFlags(b *testing.B) benchLatencies {
	if *benchScale < 1 || *benchUsers < 1 || *benchPercent < 1 || *benchPercent > 100 || *benchFailures < 0 {
		b.Fatalf("-rr.scale must be >= 1, -rr.users >= 1, -rr.traffic-percent 1..100, -rr.guard-failures >= 0")
	}
	s := func(d time.Duration) time.Duration { return time.Duration(float64(d) / *benchScale) }
	return benchLatencies{
		scale: *benchScale, rtt: s(*benchRTT), deployOp: s(*benchDeployOp), otherOp: s(*benchTrafficOp),
		coldStart: s(*benchColdStart), think: s(*benchThink),
		smokeDelay: s(benchSmokeDelay), cliDelay: s(benchCLIRetryDelay),
		users: *benchUsers, percent: *benchPercent, failures: *benchFailures,
	}
}

// Floors: the sum of the injected waits each procedure cannot avoid
// (BENCHMARKS.md, "Overhead"). A write costs its request's round trip and its
// operation: the adapter long-polls the operation with WaitOperation, whose
// own round trip runs while the operation does, so it answers as soon as the
// operation is done.
//
// The drill must read the service once, and make 7 writes (lease, deploy,
// shift, restore, template back, delete the broken revision, release); 2 of
// those operations create a revision. Its first probe of the broken revision
// waits for the cold start.
func (l benchLatencies) drillFloor() time.Duration {
	return (1+7)*l.rtt + 2*l.deployOp + 5*l.otherOp + l.coldStart
}

// The usual approach must read the service, deploy (request, operation), wait
// for the broken revision's cold start before its smoke check can get an
// answer, list revisions, read the service for its etag, and write traffic
// (request, operation).
func (l benchLatencies) baselineFloor() time.Duration {
	return 5*l.rtt + l.deployOp + l.otherOp + l.coldStart
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

// benchWriteMethods are the RPCs that count against Cloud Run's write quota
// (the ones fakerun's Writes counts).
var benchWriteMethods = map[string]bool{"CreateService": true, "UpdateService": true, "DeleteService": true, "DeleteRevision": true}

// benchCalls splits fakerun's per-method call counts, since before, into reads
// and writes (every RPC the fake saw, failed ones and operation waits included).
func benchCalls(before, after map[string]int) (reads, writes int64) {
	for m, n := range after {
		d := int64(n - before[m])
		if benchWriteMethods[m] {
			writes += d
		} else {
			reads += d
		}
	}
	return reads, writes
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

	mu       sync.Mutex
	landings []benchLanding
}

// benchLanding is an operation completing: when, whether api's actual split
// then sent every request to the good revision, and the revision that then had
// all of it ("" when none had).
type benchLanding struct {
	at   time.Time
	good bool
	full string
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
// operation releases that write's. After each release it records whether
// users are on the good revision.
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
		landed := benchLanding{at: time.Now(), good: w.servingGood(), full: w.servingAll()}
		w.mu.Lock()
		w.landings = append(w.landings, landed)
		w.mu.Unlock()
		queue = queue[1:]
	}
}

// servingGood reports whether api's actual split sends every request to the
// good revision.
func (w *benchWorld) servingGood() bool {
	for _, t := range w.srv.Service(benchRef.FullName()).GetTrafficStatuses() {
		if t.GetPercent() > 0 && shortResource(t.GetRevision()) != w.good {
			return false
		}
	}
	return true
}

// servingAll returns the revision api's actual split sends every request to,
// or "" when it sends them to more than one.
func (w *benchWorld) servingAll() string {
	for _, t := range w.srv.Service(benchRef.FullName()).GetTrafficStatuses() {
		if t.GetPercent() == 100 {
			return shortResource(t.GetRevision())
		}
	}
	return ""
}

// leftGood reports how many operations completed, and whether any of them
// left api's actual split sending requests to a revision other than the good
// one.
func (w *benchWorld) leftGood() (n int, left bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.landings), slices.ContainsFunc(w.landings, func(l benchLanding) bool { return !l.good })
}

// landedFull returns, by the fake's clock, when the first operation completed
// (the deploy, on a fresh world) and when the first one that left all of api's
// traffic on rev completed. ok is false unless both happened.
func (w *benchWorld) landedFull(rev string) (first, full time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.landings) == 0 {
		return first, full, false
	}
	for _, l := range w.landings {
		if l.full == rev {
			return w.landings[0].at, l.at, true
		}
	}
	return first, full, false
}

// away is the time users spent on other revisions, by the fake's clock: from
// the operation that moved traffic off the good revision completing to the
// one that moved it all back completing. ok is false unless both happened.
func (w *benchWorld) away() (d time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var left time.Time
	for _, l := range w.landings {
		switch {
		case left.IsZero() && !l.good:
			left = l.at
		case !left.IsZero() && l.good:
			return l.at.Sub(left), true
		}
	}
	return 0, false
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
	exposure                          time.Duration // the drill's report; 0 otherwise
	away                              time.Duration // the fake's clock: traffic off the good revision → all back on it
	reads, writes                     int64         // RPCs the fake saw
	repReads, repWrites               int64         // the report's api_calls (drill, guard)
	users                             benchUsersSaw
	overhead                          float64       // drill and baseline
	verdict                           time.Duration // guard --candidate: deploy returned → the guard's exit
	to100                             time.Duration // good candidate: its deploy's operation completed → the operation that gave it 100% completed (the fake's clock)
}

// benchTarget is the flags that point a command at w's api service.
func benchTarget(w *benchWorld) []string {
	return []string{"--emulator-host", w.srv.Addr, "--project", benchProject, "--region", benchRegion, "--service", benchService}
}

// benchGetenv is the environment commands run with against w. urfave/cli reads
// the flags' env fallbacks from the process environment, not from getenv;
// benchTarget's flags say the same for the parser.
func benchGetenv(w *benchWorld, stateDir string) func(string) string {
	return benchEnv(map[string]string{
		"CLOUD_RUN_EMULATOR_HOST": w.srv.Addr,
		"GOOGLE_CLOUD_PROJECT":    benchProject,
		"CLOUDSDK_RUN_REGION":     benchRegion,
		"RUNROLLBACK_STATE_DIR":   stateDir,
	})
}

func (w *benchWorld) mustAway(b *testing.B, who string) time.Duration {
	b.Helper()
	d, ok := w.away()
	if !ok {
		b.Fatalf("%s: traffic never left and came back to %s: %v", who, w.good, w.landings)
	}
	return d
}

// runBenchDrill runs `runrollback test` against w under load.
func runBenchDrill(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	args := append([]string{"runrollback", "test"}, benchTarget(w)...)
	args = append(args, "--retry-delay", l.cliDelay.String(), "--traffic-percent", fmt.Sprint(l.percent), "--output", "json")
	getenv := benchGetenv(w, b.TempDir())
	calls0 := w.srv.Calls()
	load := startBenchLoad(w.url, w.good, l)
	start := time.Now()
	rep := benchRun(b, ctx, args, getenv)
	wall := time.Since(start)
	saw := load.finish()
	reads, writes := benchCalls(calls0, w.srv.Calls())
	return benchOutcome{
		wall:      wall,
		detectTag: time.Duration(rep.Timings.DetectTag) * time.Millisecond,
		detect:    time.Duration(rep.Timings.Detect) * time.Millisecond,
		restore:   time.Duration(rep.Timings.Restore) * time.Millisecond,
		verif:     time.Duration(rep.Timings.Verify) * time.Millisecond,
		exposure:  time.Duration(rep.Exposure.MS) * time.Millisecond,
		away:      w.mustAway(b, "drill"),
		reads:     reads, writes: writes,
		repReads: rep.APICalls.Reads, repWrites: rep.APICalls.Writes,
		users:    saw,
		overhead: float64(wall) / float64(l.drillFloor()),
	}
}

// benchClient is a Cloud Run client on w with the settings openBackend uses
// for an emulator: the deploy workflow's and the usual approach's client.
func benchClient(b *testing.B, ctx context.Context, w *benchWorld) *cloudrun.Client {
	b.Helper()
	c, err := cloudrun.New(ctx, cloudrun.Config{
		EmulatorHost: w.srv.Addr,
		CallTimeout:  10 * time.Second,
		PollInterval: 20 * time.Millisecond,
		Retry:        cloudrun.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond},
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchBadDeploy is the bad deploy both the usual approach and the guard
// react to: a plain deploy of a broken revision (RUNROLLBACK_BREAK=health)
// with traffic LATEST=100, as `gcloud run deploy` of a LATEST-tracking
// service does. It returns the service's URL once the deploy is done.
func benchBadDeploy(b *testing.B, ctx context.Context, c *cloudrun.Client) string {
	b.Helper()
	svc, err := c.GetService(ctx, benchRef)
	if err != nil {
		b.Fatal(err)
	}
	_, err = c.DeployRevision(ctx, benchRef, svc.Etag, rollback.Deploy{
		Env:     map[string]string{fakeapp.EnvBreak: "health"},
		Traffic: rollback.Split{{Latest: true, Percent: 100}},
	})
	if err != nil {
		b.Fatalf("bad deploy: %v", err)
	}
	return svc.URI
}

// runBenchBaseline is the usual approach: the bad deploy, a smoke check with
// fixed retries and delay, and, when it fails, a traffic update to the
// previous revision by creation order.
func runBenchBaseline(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	c := benchClient(b, ctx, w)
	defer c.Close()

	calls0 := w.srv.Calls()
	load := startBenchLoad(w.url, w.good, l)
	start := time.Now()
	uri := benchBadDeploy(b, ctx, c)
	deployed := time.Now()
	if benchSmoke(ctx, uri, benchSmokeRetries, l.smokeDelay) {
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
	reads, writes := benchCalls(calls0, w.srv.Calls())
	return benchOutcome{
		wall:    end.Sub(start),
		detect:  detected.Sub(deployed),
		restore: end.Sub(detected),
		away:    w.mustAway(b, "baseline"),
		reads:   reads, writes: writes,
		users:    saw,
		overhead: float64(end.Sub(start)) / float64(l.baselineFloor()),
	}
}

// runBenchGuard is the same bad deploy inside the workflow DESIGN.md §1
// describes: `runrollback snapshot --out FILE` before it, and
// `runrollback guard --restore-from FILE` after it, both the real command.
func runBenchGuard(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	c := benchClient(b, ctx, w)
	defer c.Close()
	dir := b.TempDir()
	snapFile := filepath.Join(dir, "snapshot.json")
	getenv := benchGetenv(w, filepath.Join(dir, "state"))
	snapArgs := append(append([]string{"runrollback", "snapshot"}, benchTarget(w)...), "--out", snapFile)
	guardArgs := append(append([]string{"runrollback", "guard"}, benchTarget(w)...),
		"--restore-from", snapFile, "--retry-delay", l.cliDelay.String(), "--failures", fmt.Sprint(l.failures), "--output", "json")

	calls0 := w.srv.Calls()
	load := startBenchLoad(w.url, w.good, l)
	start := time.Now()
	benchCLI(b, ctx, snapArgs, getenv, exitOK)
	benchBadDeploy(b, ctx, c)
	out := benchCLI(b, ctx, guardArgs, getenv, exitFail) // unhealthy, rolled back
	end := time.Now()
	saw := load.finish()
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		b.Fatalf("guard: no JSON report (%v)\nstdout: %s", err, out)
	}
	if rep.Result != rollback.ResultFail || !rep.TrafficRestored || rep.After == nil || !rep.After.Healthy || rep.After.Revision != w.good {
		b.Fatalf("guard: want a rollback to %s verified healthy; got result %q, traffic_restored %v, after %+v: %s", w.good, rep.Result, rep.TrafficRestored, rep.After, rep.Error)
	}
	reads, writes := benchCalls(calls0, w.srv.Calls())
	return benchOutcome{
		wall:    end.Sub(start),
		detect:  time.Duration(rep.Timings.Detect) * time.Millisecond,
		restore: time.Duration(rep.Timings.Restore) * time.Millisecond,
		verif:   time.Duration(rep.Timings.Verify) * time.Millisecond,
		away:    w.mustAway(b, "guard"),
		reads:   reads, writes: writes,
		repReads: rep.APICalls.Reads, repWrites: rep.APICalls.Writes,
		users: saw,
	}
}

// The revisions `guard --candidate` judges: the bad one is the bad deploy's
// revision (RUNROLLBACK_BREAK=health), the good one a new version.
const (
	benchCandidateTag  = "candidate"
	benchCandidateBad  = "api-00003-bad"
	benchCandidateGood = "api-00003-new"
)

// benchStageCandidate deploys a revision with no traffic and the candidate
// tag, like `gcloud run deploy --no-traffic --tag candidate`: the current
// traffic pinned as it was, plus {rev, 0%, tag candidate} (the testscript
// command stage does the same). It returns once the deploy is done.
func benchStageCandidate(b *testing.B, ctx context.Context, c *cloudrun.Client, rev string, env map[string]string) {
	b.Helper()
	svc, err := c.GetService(ctx, benchRef)
	if err != nil {
		b.Fatal(err)
	}
	traffic := append(rollback.Resolve(svc.Traffic, svc.LatestReadyRevision), rollback.Target{Revision: rev, Tag: benchCandidateTag})
	if _, err := c.DeployRevision(ctx, benchRef, svc.Etag, rollback.Deploy{Revision: rev, Env: env, Traffic: traffic}); err != nil {
		b.Fatalf("deploy %s with no traffic: %v", rev, err)
	}
}

// benchCandidateArgs is `runrollback guard --candidate candidate` on w, with
// the same probe flags as the plain guard.
func benchCandidateArgs(w *benchWorld, l benchLatencies) []string {
	return append(append([]string{"runrollback", "guard"}, benchTarget(w)...),
		"--candidate", benchCandidateTag, "--retry-delay", l.cliDelay.String(), "--failures", fmt.Sprint(l.failures), "--output", "json")
}

// candidateRun is a revision staged with no traffic and the candidate tag,
// under user load, ready for the guard.
type candidateRun struct {
	args            []string
	getenv          func(string) string
	calls0          map[string]int
	load            *benchLoad
	start, deployed time.Time
}

// stageCandidateUnderLoad starts the user load and deploys rev with no traffic
// and the candidate tag, as 'gcloud run deploy --no-traffic --tag' does.
func stageCandidateUnderLoad(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies, rev string, env map[string]string) candidateRun {
	b.Helper()
	c := benchClient(b, ctx, w)
	defer c.Close()
	cr := candidateRun{args: benchCandidateArgs(w, l), getenv: benchGetenv(w, b.TempDir()), calls0: w.srv.Calls()}
	cr.load = startBenchLoad(w.url, w.good, l)
	cr.start = time.Now()
	benchStageCandidate(b, ctx, c, rev, env)
	cr.deployed = time.Now()
	return cr
}

// runBenchCandidate is the bad deploy's revision deployed with no traffic and
// the candidate tag, then `runrollback guard --candidate candidate` (the real
// command): it must find the candidate unhealthy on its tag URL and exit 1
// without changing anything, and users' traffic must never have left the good
// revision.
func runBenchCandidate(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	cr := stageCandidateUnderLoad(b, ctx, w, l, benchCandidateBad, map[string]string{fakeapp.EnvBreak: "health"})
	callsDeployed := w.srv.Calls()
	out := benchCLI(b, ctx, cr.args, cr.getenv, exitFail) // unhealthy, nothing changed
	end := time.Now()
	saw := cr.load.finish()
	var rep benchReport
	if err := json.Unmarshal(out, &rep); err != nil {
		b.Fatalf("guard --candidate: no JSON report (%v)\nstdout: %s", err, out)
	}
	if rep.Result != rollback.ResultFail {
		b.Fatalf("guard --candidate: want result fail (candidate unhealthy); got %q: %s", rep.Result, rep.Error)
	}
	if _, guardWrites := benchCalls(callsDeployed, w.srv.Calls()); guardWrites != 0 {
		b.Fatalf("guard --candidate: %d writes for an unhealthy candidate, want none", guardWrites)
	}
	if n, left := w.leftGood(); n != 1 || left {
		b.Fatalf("guard --candidate: want one operation (the deploy) and users' traffic never off %s; got %d operations, traffic left: %v", w.good, n, left)
	}
	if got, want := renderTargets(w.srv.Service(benchRef.FullName()).GetTraffic()), w.good+"=100, "+benchCandidateBad+"=0@"+benchCandidateTag; got != want {
		b.Fatalf("guard --candidate: traffic %s, want %s", got, want)
	}
	reads, writes := benchCalls(cr.calls0, w.srv.Calls())
	return benchOutcome{
		wall:    end.Sub(cr.start),
		detect:  time.Duration(rep.Timings.Detect) * time.Millisecond,
		verdict: end.Sub(cr.deployed),
		reads:   reads, writes: writes,
		repReads: rep.APICalls.Reads, repWrites: rep.APICalls.Writes,
		users: saw,
	}
}

// runBenchCandidateGood is the same procedure with a good release
// (APP_VERSION=1.2.0): the guard must promote it to 100% and exit 0. users.broken
// counts the answers from the new revision.
func runBenchCandidateGood(b *testing.B, ctx context.Context, w *benchWorld, l benchLatencies) benchOutcome {
	b.Helper()
	cr := stageCandidateUnderLoad(b, ctx, w, l, benchCandidateGood, map[string]string{"APP_VERSION": "1.2.0"})
	rep := benchRun(b, ctx, cr.args, cr.getenv) // promoted
	end := time.Now()
	saw := cr.load.finish()
	if !rep.TrafficRestored || rep.After == nil || !rep.After.Healthy || rep.After.Revision != benchCandidateGood {
		b.Fatalf("guard --candidate (good): want %s promoted and healthy; got traffic_restored %v, after %+v", benchCandidateGood, rep.TrafficRestored, rep.After)
	}
	if got, want := renderTargets(w.srv.Service(benchRef.FullName()).GetTraffic()), benchCandidateGood+"=100@"+benchCandidateTag+", "+benchCandidateGood+"=0@last-good"; got != want {
		b.Fatalf("guard --candidate (good): traffic %s, want %s", got, want)
	}
	landed, full, ok := w.landedFull(benchCandidateGood)
	if !ok {
		b.Fatalf("guard --candidate (good): %s never had all the traffic: %v", benchCandidateGood, w.landings)
	}
	reads, writes := benchCalls(cr.calls0, w.srv.Calls())
	return benchOutcome{
		wall:    end.Sub(cr.start),
		detect:  time.Duration(rep.Timings.Detect) * time.Millisecond,
		restore: time.Duration(stepMS(rep, "promote")) * time.Millisecond,
		verif:   time.Duration(rep.Timings.Verify) * time.Millisecond,
		verdict: end.Sub(cr.deployed),
		to100:   full.Sub(landed),
		reads:   reads, writes: writes,
		repReads: rep.APICalls.Reads, repWrites: rep.APICalls.Writes,
		users: saw,
	}
}

// stepMS is the duration of the report's step name (0 when absent).
func stepMS(rep benchReport, name string) int64 {
	for _, s := range rep.Steps {
		if s.Name == name {
			return s.DurationMS
		}
	}
	return 0
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

// BenchmarkDrillVsBaseline runs, per iteration, the real drill, the usual
// approach, the real guard after the usual approach's bad deploy, the real
// guard --candidate after the same bad revision deployed with no traffic, and
// guard --candidate after a good one, each against a fresh fake with the same
// injected latencies and the same user load, and reports them side by side
// (BENCHMARKS.md).
func BenchmarkDrillVsBaseline(b *testing.B) {
	l := benchLatenciesFromFlags(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.Logf("scale 1/%g: API round trip %v, deploy operation %v, other operations %v, cold start %v, %d users pausing %v, smoke --retries %d --retry-delay %v, drill --retry-delay %v --traffic-percent %d, guard --retry-delay %v --failures %d; floors: drill %v, baseline %v",
		l.scale, l.rtt, l.deployOp, l.otherOp, l.coldStart, l.users, l.think, benchSmokeRetries, l.smokeDelay, l.cliDelay, l.percent,
		l.cliDelay, l.failures, l.drillFloor(), l.baselineFloor())

	var drills, bases, guards, cands, goods []benchOutcome
	b.ResetTimer()
	for range b.N {
		for _, p := range []struct {
			run  func(*testing.B, context.Context, *benchWorld, benchLatencies) benchOutcome
			into *[]benchOutcome
		}{{runBenchDrill, &drills}, {runBenchBaseline, &bases}, {runBenchGuard, &guards}, {runBenchCandidate, &cands}, {runBenchCandidateGood, &goods}} {
			b.StopTimer()
			w := startBenchWorld(b, l)
			b.StartTimer()
			o := p.run(b, ctx, w, l)
			b.StopTimer()
			w.close()
			b.StartTimer()
			*p.into = append(*p.into, o)
		}
		d, base, g, cd, gd := drills[len(drills)-1], bases[len(bases)-1], guards[len(guards)-1], cands[len(cands)-1], goods[len(goods)-1]
		// One line per iteration: go test keeps only the first 10 lines of a
		// benchmark's log.
		b.Logf("drill wall %.0fms (detect-tag %.0f, detect %.0f, restore %.0f, verify %.0f ms; away %.0fms; api %dr/%dw, report %dr/%dw; users %d req, %d failed, %d broken, window %.0fms; overhead %.2fx) | baseline wall %.0fms (detect %.0f, restore %.0f ms; away %.0fms; api %dr/%dw; users %d req, %d failed, %d broken, window %.0fms; overhead %.2fx) | guard wall %.0fms (detect %.0f, restore %.0f, verify %.0f ms; away %.0fms; api %dr/%dw, report %dr/%dw; users %d req, %d failed, %d broken, window %.0fms) | guard --candidate, bad wall %.0fms (verdict %.0f, detect %.0f ms; api %dr/%dw, report %dr/%dw; users %d req, %d failed, %d broken) | good wall %.0fms (verdict %.0f, detect %.0f, promote %.0f, verify %.0f ms; deploy landed → 100%% on the new revision %.0fms; api %dr/%dw, report %dr/%dw; users %d req, %d failed, %d from the new revision)",
			benchMS(d.wall), benchMS(d.detectTag), benchMS(d.detect), benchMS(d.restore), benchMS(d.verif), benchMS(d.away), d.reads, d.writes, d.repReads, d.repWrites,
			d.users.total, d.users.failed, d.users.broken, benchMS(d.users.window), d.overhead,
			benchMS(base.wall), benchMS(base.detect), benchMS(base.restore), benchMS(base.away), base.reads, base.writes,
			base.users.total, base.users.failed, base.users.broken, benchMS(base.users.window), base.overhead,
			benchMS(g.wall), benchMS(g.detect), benchMS(g.restore), benchMS(g.verif), benchMS(g.away), g.reads, g.writes, g.repReads, g.repWrites,
			g.users.total, g.users.failed, g.users.broken, benchMS(g.users.window),
			benchMS(cd.wall), benchMS(cd.verdict), benchMS(cd.detect), cd.reads, cd.writes, cd.repReads, cd.repWrites,
			cd.users.total, cd.users.failed, cd.users.broken,
			benchMS(gd.wall), benchMS(gd.verdict), benchMS(gd.detect), benchMS(gd.restore), benchMS(gd.verif), benchMS(gd.to100), gd.reads, gd.writes, gd.repReads, gd.repWrites,
			gd.users.total, gd.users.failed, gd.users.broken)
	}

	avg := func(xs []benchOutcome, f func(benchOutcome) float64) float64 {
		sum := 0.0
		for _, x := range xs {
			sum += f(x)
		}
		return sum / float64(len(xs))
	}
	report := func(prefix string, xs []benchOutcome, drill, overhead bool) {
		m := func(name string, f func(benchOutcome) float64) { b.ReportMetric(avg(xs, f), prefix+"-"+name) }
		m("wall-ms", func(o benchOutcome) float64 { return benchMS(o.wall) })
		if drill {
			m("detect_tag-ms", func(o benchOutcome) float64 { return benchMS(o.detectTag) })
			m("exposure-ms", func(o benchOutcome) float64 { return benchMS(o.exposure) })
		}
		m("detect-ms", func(o benchOutcome) float64 { return benchMS(o.detect) })
		m("restore-ms", func(o benchOutcome) float64 { return benchMS(o.restore) })
		if prefix != "base" {
			m("verify-ms", func(o benchOutcome) float64 { return benchMS(o.verif) })
		}
		m("away-ms", func(o benchOutcome) float64 { return benchMS(o.away) })
		m("api-reads", func(o benchOutcome) float64 { return float64(o.reads) })
		m("api-writes", func(o benchOutcome) float64 { return float64(o.writes) })
		m("user-req", func(o benchOutcome) float64 { return float64(o.users.total) })
		m("failed-req", func(o benchOutcome) float64 { return float64(o.users.failed) })
		m("broken-req", func(o benchOutcome) float64 { return float64(o.users.broken) })
		m("window-ms", func(o benchOutcome) float64 { return benchMS(o.users.window) })
		if overhead {
			m("overhead-x", func(o benchOutcome) float64 { return o.overhead })
		}
	}
	report("drill", drills, true, true)
	report("base", bases, false, true)
	report("guard", guards, false, false)
	// guard --candidate: the bad candidate, then the good one.
	for _, c := range []struct {
		prefix string
		xs     []benchOutcome
		good   bool
	}{{"cand", cands, false}, {"cand-good", goods, true}} {
		m := func(name string, f func(benchOutcome) float64) { b.ReportMetric(avg(c.xs, f), c.prefix+"-"+name) }
		m("wall-ms", func(o benchOutcome) float64 { return benchMS(o.wall) })
		m("verdict-ms", func(o benchOutcome) float64 { return benchMS(o.verdict) })
		m("detect-ms", func(o benchOutcome) float64 { return benchMS(o.detect) })
		m("api-reads", func(o benchOutcome) float64 { return float64(o.reads) })
		m("api-writes", func(o benchOutcome) float64 { return float64(o.writes) })
		m("user-req", func(o benchOutcome) float64 { return float64(o.users.total) })
		m("failed-req", func(o benchOutcome) float64 { return float64(o.users.failed) })
		if c.good {
			m("promote-ms", func(o benchOutcome) float64 { return benchMS(o.restore) })
			m("verify-ms", func(o benchOutcome) float64 { return benchMS(o.verif) })
			m("to100-ms", func(o benchOutcome) float64 { return benchMS(o.to100) })
			m("new-req", func(o benchOutcome) float64 { return float64(o.users.broken) })
		} else {
			m("broken-req", func(o benchOutcome) float64 { return float64(o.users.broken) })
		}
	}
	sum := func(xs []benchOutcome, f func(benchOutcome) float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += f(x)
		}
		return s
	}
	failed := func(o benchOutcome) float64 { return float64(o.users.failed) }
	away := func(o benchOutcome) float64 { return benchMS(o.away) }
	// Over all iterations; with no failed request in the denominator, a lower bound.
	b.ReportMetric(sum(bases, failed)/max(sum(drills, failed), 1), "failed-ratio")
	b.ReportMetric(sum(bases, failed)/max(sum(guards, failed), 1), "guard-failed-ratio")
	b.ReportMetric(sum(bases, away)/sum(guards, away), "guard-away-ratio")
	// guard --candidate: no ratio when no user request failed (it would be a
	// division by zero); the log says so, with the absolute numbers.
	baseFailed, candFailed := sum(bases, failed), sum(cands, failed)
	ratio := "∞ (0 failed)"
	if candFailed > 0 {
		b.ReportMetric(baseFailed/candFailed, "cand-failed-ratio")
		ratio = fmt.Sprintf("%.4gx", baseFailed/candFailed)
	}
	b.Logf("guard --candidate vs the usual approach over %d iteration(s): failed user requests %g vs %g, requests that reached the broken revision %g vs %g; failed-request ratio %s",
		len(cands), candFailed, baseFailed, sum(cands, func(o benchOutcome) float64 { return float64(o.users.broken) }), sum(bases, func(o benchOutcome) float64 { return float64(o.users.broken) }), ratio)
}

// benchFleetWorld is n copies of the default world's api: svc-000, svc-001, …,
// each with two revisions (1.0.0, 1.1.0) and 100% pinned to the newer.
func benchFleetWorld(n int) fakerun.World {
	var w fakerun.World
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		rev := func(suffix, version string) fakerun.SeedRevision {
			return fakerun.SeedRevision{Name: name + suffix, Env: map[string]string{"APP_VERSION": version}}
		}
		w.Services = append(w.Services, fakerun.SeedService{
			Project: benchProject, Region: benchRegion, Name: name,
			Revisions: []fakerun.SeedRevision{rev("-00001-abc", "1.0.0"), rev("-00002-def", "1.1.0")},
			Traffic:   []fakerun.SeedTarget{{Revision: name + "-00002-def", Percent: 100}},
		})
	}
	return w
}

// benchSampler watches a run: fakerun's accepted writes (polled every
// millisecond: the time of each), goroutines and heap.
type benchSampler struct {
	srv  *fakerun.Server
	stop chan struct{}
	done chan struct{}

	writes         []time.Time
	peakGoroutines int
	peakHeapInuse  uint64
	peakSys        uint64
}

func startBenchSampler(srv *fakerun.Server) *benchSampler {
	s := &benchSampler{srv: srv, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		seen := srv.Writes()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			now := time.Now()
			if n := srv.Writes(); n > seen {
				for range n - seen {
					s.writes = append(s.writes, now)
				}
				seen = n
			}
			if i%10 == 0 {
				s.peakGoroutines = max(s.peakGoroutines, runtime.NumGoroutine())
			}
			if i%100 == 0 { // ReadMemStats stops the world: 10 times a second
				runtime.ReadMemStats(&ms)
				s.peakHeapInuse = max(s.peakHeapInuse, ms.HeapInuse)
				s.peakSys = max(s.peakSys, ms.Sys)
			}
		}
	}()
	return s
}

func (s *benchSampler) finish() {
	close(s.stop)
	<-s.done
}

// maxInWindow is the most times in any window of length d (times sorted).
func maxInWindow(times []time.Time, d time.Duration) int {
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// benchVmHWM returns the process's peak resident set size (VmHWM) in bytes;
// resetPeakRSS starts it again from the current RSS (Linux: clear_refs 5).
func benchVmHWM() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

func resetPeakRSS() bool { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil }

// benchQuotaProxy stands in front of the fake and plays a write quota: a
// write (benchWriteMethods) that would make more than limit writes within any
// window is refused with RESOURCE_EXHAUSTED before it reaches the fake;
// everything else is passed through byte for byte.
type benchQuotaProxy struct {
	addr   string
	srv    *grpc.Server
	conn   *grpc.ClientConn
	limit  int
	window time.Duration

	mu       sync.Mutex
	recent   []time.Time
	rejected int
}

// benchFrame is a message passed through undecoded.
type benchFrame struct{ b []byte }

type benchRawCodec struct{}

func (benchRawCodec) Marshal(v any) ([]byte, error) { return v.(*benchFrame).b, nil }
func (benchRawCodec) Unmarshal(data []byte, v any) error {
	v.(*benchFrame).b = slices.Clone(data)
	return nil
}
func (benchRawCodec) Name() string { return "proto" }

func startQuotaProxy(target string, limit int, window time.Duration) (*benchQuotaProxy, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := &benchQuotaProxy{addr: lis.Addr().String(), conn: conn, limit: limit, window: window}
	p.srv = grpc.NewServer(grpc.ForceServerCodec(benchRawCodec{}), grpc.UnknownServiceHandler(p.handle))
	go func() { _ = p.srv.Serve(lis) }()
	return p, nil
}

func (p *benchQuotaProxy) close() {
	p.srv.Stop()
	p.conn.Close()
}

func (p *benchQuotaProxy) admit(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.recent) && now.Sub(p.recent[i]) >= p.window {
		i++
	}
	p.recent = p.recent[i:]
	if len(p.recent) >= p.limit {
		p.rejected++
		return false
	}
	p.recent = append(p.recent, now)
	return true
}

func (p *benchQuotaProxy) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	var req, resp benchFrame
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	if benchWriteMethods[method[strings.LastIndexByte(method, '/')+1:]] && !p.admit(time.Now()) {
		return status.Errorf(codes.ResourceExhausted,
			"Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per region' of service 'run.googleapis.com' (benchmark proxy: %d writes per %v)", p.limit, p.window)
	}
	if err := p.conn.Invoke(stream.Context(), method, &req, &resp, grpc.ForceCodec(benchRawCodec{})); err != nil {
		return err
	}
	return stream.SendMsg(&resp)
}

// BenchmarkFleet100 drills -rr.fleet-services services (100) with the real
// command, `runrollback test --services-file FILE --parallel 20 --write-rate
// R`, R being -rr.fleet-rate (60 a minute, the quota Cloud Run is reported to
// allow per region) times -rr.scale, against one fake with the scaled API round
// trip on every call (operations finish at once). It reports whether every
// service was restored and left clean, quota errors in the reports, the wall
// time against the quota bound (writes ÷ R), the most writes in any scaled
// minute, and peak memory and goroutines.
func BenchmarkFleet100(b *testing.B) {
	l := benchLatenciesFromFlags(b)
	n, parallel := *benchFleetServices, *benchFleetParallel
	rate := int(math.Round(*benchFleetRate * l.scale))
	if n < 1 || parallel < 1 || rate < 1 {
		b.Fatalf("-rr.fleet-services, -rr.fleet-parallel and -rr.fleet-rate × -rr.scale must be >= 1")
	}
	minute := time.Duration(float64(time.Minute) / l.scale) // one scaled minute
	burst := min(max(rate/6, 1), max(rate-1, 1))            // rollback.Fleet's default burst, as NewWriteLimiter clamps it
	steady := max(rate-burst, 1)                            // NewWriteLimiter's refill a minute after the burst
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	b.Logf("scale 1/%g: %d services, --parallel %d, --write-rate %d (%g a minute scaled; burst %d), API round trip %v, cold start %v, --retry-delay %v, operations finish at once; injected quota: %s",
		l.scale, n, parallel, rate, *benchFleetRate, burst, l.rtt, l.coldStart, l.cliDelay, map[bool]string{true: fmt.Sprintf("%d writes in any %v", *benchFleetQuota, minute), false: "none"}[*benchFleetQuota > 0])

	type outcome struct {
		wall                              time.Duration
		passed, restored, clean, quotaErr int
		writes, maxPerMinute, rejected    int
		goroutines0, peakGoroutines       int
		peakHeapInuse, peakSys, peakRSS   uint64
		rssOK                             bool
		restoreMean, restoreMax           time.Duration // report timings_ms.restore of the drills that restored
		exposureMax, totalMax             time.Duration
	}
	var outs []outcome
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		f, err := startFake(benchFleetWorld(n), fakeapp.WithColdStart(l.coldStart))
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range benchMethods {
			f.srv.SetLatency(m, l.rtt)
		}
		addr := f.srv.Addr
		var proxy *benchQuotaProxy
		if *benchFleetQuota > 0 {
			if proxy, err = startQuotaProxy(f.srv.Addr, *benchFleetQuota, minute); err != nil {
				b.Fatal(err)
			}
			addr = proxy.addr
		}
		dir := b.TempDir()
		var list strings.Builder
		for i := range n {
			fmt.Fprintf(&list, "svc-%03d\n", i)
		}
		servicesFile := filepath.Join(dir, "services.txt")
		if err := os.WriteFile(servicesFile, []byte(list.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		args := []string{"runrollback", "test", "--emulator-host", addr, "--project", benchProject, "--region", benchRegion,
			"--services-file", servicesFile, "--parallel", fmt.Sprint(parallel), "--write-rate", fmt.Sprint(rate),
			"--retry-delay", l.cliDelay.String(), "--output", "json"}
		getenv := benchEnv(map[string]string{
			"CLOUD_RUN_EMULATOR_HOST": addr,
			"GOOGLE_CLOUD_PROJECT":    benchProject,
			"CLOUDSDK_RUN_REGION":     benchRegion,
			"RUNROLLBACK_STATE_DIR":   filepath.Join(dir, "state"),
		})
		runtime.GC()
		var o outcome
		o.goroutines0 = runtime.NumGoroutine()
		o.rssOK = resetPeakRSS()
		writes0 := f.srv.Writes()
		sampler := startBenchSampler(f.srv)
		var stdout, stderr bytes.Buffer
		b.StartTimer()
		start := time.Now()
		code := run(ctx, args, &stdout, &stderr, getenv)
		o.wall = time.Since(start)
		b.StopTimer()
		sampler.finish()
		if rss, ok := benchVmHWM(); ok && o.rssOK {
			o.peakRSS = rss
		} else {
			o.rssOK = false
		}
		o.writes = f.srv.Writes() - writes0
		o.maxPerMinute = maxInWindow(sampler.writes, minute)
		o.peakGoroutines, o.peakHeapInuse, o.peakSys = sampler.peakGoroutines, sampler.peakHeapInuse, sampler.peakSys
		if proxy != nil {
			proxy.mu.Lock()
			o.rejected = proxy.rejected
			proxy.mu.Unlock()
		}

		var rep benchFleetReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			b.Fatalf("fleet drill: exit %d, no JSON report (%v)\nstdout: %.2000s\nstderr: %.2000s", code, err, stdout.String(), stderr.String())
		}
		if len(rep.Reports) != n || rep.ExitCode != code {
			b.Fatalf("fleet drill: exit %d, %d reports (exit_code %d), want %d", code, len(rep.Reports), rep.ExitCode, n)
		}
		var problems []string
		var restores time.Duration
		nRestores := 0
		for _, r := range rep.Reports {
			if d := time.Duration(r.Timings.Restore) * time.Millisecond; d > 0 {
				restores += d
				nRestores++
				o.restoreMax = max(o.restoreMax, d)
			}
			o.exposureMax = max(o.exposureMax, time.Duration(r.Exposure.MS)*time.Millisecond)
			o.totalMax = max(o.totalMax, time.Duration(r.Timings.Total)*time.Millisecond)
			if r.Result == rollback.ResultPass {
				o.passed++
			}
			if r.TrafficRestored {
				o.restored++
			}
			low := strings.ToLower(r.Error)
			if strings.Contains(low, "quota") || strings.Contains(low, "resource_exhausted") || strings.Contains(low, "resource exhausted") {
				o.quotaErr++
			}
			if r.Result != rollback.ResultPass && len(problems) < 5 {
				problems = append(problems, fmt.Sprintf("%s %s: %s", r.Service.Name, r.Result, r.Error))
			}
		}
		if nRestores > 0 {
			o.restoreMean = restores / time.Duration(nRestores)
		}
		for i := range n {
			name := fmt.Sprintf("svc-%03d", i)
			left := leftovers(f, name)
			if got, want := renderTargets(f.srv.Service(fullName(name)).GetTraffic()), name+"-00002-def=100"; got != want {
				left = append(left, fmt.Sprintf("traffic %s, want %s", got, want))
			}
			if len(left) == 0 {
				o.clean++
			} else if len(problems) < 8 {
				problems = append(problems, name+": "+strings.Join(left, "; "))
			}
		}
		f.close()
		if proxy != nil {
			proxy.close()
		}
		b.StartTimer()

		outs = append(outs, o)
		bound := time.Duration(float64(o.writes) / float64(rate) * float64(time.Minute))
		b.Logf("exit %d (%s): %d/%d pass, %d traffic_restored, %d clean, %d with a quota error; %d writes (%d refused by the quota proxy), at most %d in any %v; wall %.2fs, quota bound %.2fs (%.3fx); goroutines %d before, peak %d; peak heap in use %.1f MiB, Sys %.1f MiB, RSS (VmHWM) %.1f MiB; per drill: restore mean %.0fms max %.0fms, exposure max %.0fms, total max %.2fs",
			code, rep.Result, o.passed, n, o.restored, o.clean, o.quotaErr, o.writes, o.rejected, o.maxPerMinute, minute,
			o.wall.Seconds(), bound.Seconds(), float64(o.wall)/float64(bound), o.goroutines0, o.peakGoroutines,
			float64(o.peakHeapInuse)/(1<<20), float64(o.peakSys)/(1<<20), float64(o.peakRSS)/(1<<20),
			benchMS(o.restoreMean), benchMS(o.restoreMax), benchMS(o.exposureMax), o.totalMax.Seconds())
		for _, p := range problems {
			b.Logf("  %s", p)
		}
	}

	k := float64(len(outs))
	var wall, bound, afterBurst, passed, restored, clean, quotaErr, writes, rejected float64
	var maxPerMinute, peakGoroutines, goroutines0 int
	var restoreMean float64
	var restoreMax, exposureMax, totalMax time.Duration
	var peakHeap, peakSys, peakRSS uint64
	rssOK := true
	for _, o := range outs {
		wall += o.wall.Seconds()
		bound += float64(o.writes) / float64(rate) * 60
		afterBurst += float64(max(o.writes-burst, 0)) / float64(steady) * 60
		passed += float64(o.passed)
		restored += float64(o.restored)
		clean += float64(o.clean)
		quotaErr += float64(o.quotaErr)
		writes += float64(o.writes)
		rejected += float64(o.rejected)
		maxPerMinute = max(maxPerMinute, o.maxPerMinute)
		peakGoroutines = max(peakGoroutines, o.peakGoroutines)
		goroutines0 = max(goroutines0, o.goroutines0)
		peakHeap, peakSys, peakRSS = max(peakHeap, o.peakHeapInuse), max(peakSys, o.peakSys), max(peakRSS, o.peakRSS)
		rssOK = rssOK && o.rssOK
		restoreMean += benchMS(o.restoreMean)
		restoreMax, exposureMax, totalMax = max(restoreMax, o.restoreMax), max(exposureMax, o.exposureMax), max(totalMax, o.totalMax)
	}
	b.ReportMetric(passed/k, "passed")
	b.ReportMetric(restored/k, "traffic-restored")
	b.ReportMetric(clean/k, "clean")
	b.ReportMetric(quotaErr/k, "quota-errors")
	b.ReportMetric(rejected/k, "quota-refused-writes")
	b.ReportMetric(writes/k, "writes")
	b.ReportMetric(float64(maxPerMinute), "max-writes/scaled-min")
	b.ReportMetric(wall/k, "wall-s")
	b.ReportMetric(bound/k, "quota-bound-s")
	b.ReportMetric(wall/bound, "wall/bound-x")
	// The limiter starts with a full bucket: burst writes go at once, then it
	// refills at rate - burst a minute, so (writes - burst) ÷ (rate - burst) is
	// the least time the limiter allows.
	b.ReportMetric(afterBurst/k, "bound-after-burst-s")
	if afterBurst > 0 {
		b.ReportMetric(wall/afterBurst, "wall/bound-after-burst-x")
	}
	b.ReportMetric(restoreMean/k, "restore-mean-ms")
	b.ReportMetric(benchMS(restoreMax), "restore-max-ms")
	b.ReportMetric(benchMS(exposureMax), "exposure-max-ms")
	b.ReportMetric(totalMax.Seconds(), "drill-total-max-s")
	b.ReportMetric(float64(peakGoroutines), "peak-goroutines")
	b.ReportMetric(float64(goroutines0), "goroutines-before")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heapinuse-MiB")
	b.ReportMetric(float64(peakSys)/(1<<20), "peak-sys-MiB")
	if rssOK {
		b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	}
}
