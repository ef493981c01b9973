package bench

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// Outcome is one procedure's figures.
type Outcome struct {
	Wall time.Duration
	// Away is the time users' traffic was off the good revision, by the
	// operation clock (0 for a procedure that never moved it).
	Away                    time.Duration
	Detect, Restore, Verify time.Duration // from the report (or the procedure's own clock)
	Exposure                time.Duration // the drill's report
	Reads, Writes           int64         // RPCs the fake saw
	Deploys, Others         int           // operations completed, by kind
	Users                   UsersSaw
	Floor                   time.Duration // the floor this procedure's Away (or Wall) is stated against
	Verdict                 time.Duration // guard --candidate: deploy done → the guard's exit
	To100                   time.Duration // good candidate: its deploy landed → it had 100% (operation clock)
	ProcessStart            time.Duration // the guard's exec → its first API call
	Processes               int           // runrollback processes run
	ProcessUser, ProcessSys time.Duration // CPU of those processes
	ProcessMaxRSS           int64
	RunsOK                  bool
}

func (o *Outcome) add(r Run) {
	o.Processes++
	o.ProcessUser += r.User
	o.ProcessSys += r.Sys
	o.ProcessMaxRSS = max(o.ProcessMaxRSS, r.MaxRSS)
}

// Bench is what every procedure needs.
type Bench struct {
	CLI   *CLI
	Model Model
	// TempDir returns a fresh directory (testing.B.TempDir).
	TempDir func() string
}

func (bn *Bench) client(ctx context.Context, w *World) (*cloudrun.Client, error) {
	return cloudrun.New(ctx, cloudrun.Config{
		EmulatorHost: w.Srv.Addr,
		CallTimeout:  10 * time.Second,
		PollInterval: 20 * time.Millisecond,
		Retry:        cloudrun.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond},
	})
}

// Drill is `runrollback test` (break health, 100%) under load. Its Floor is
// the restore's write: what users' time on the broken revision cannot go
// below once the tag URL has proved it broken.
func (bn *Bench) Drill(ctx context.Context, w *World, flags ProbeFlags) (Outcome, error) {
	m := bn.Model
	dir := bn.TempDir()
	args := append(append([]string{"test"}, Target(w.Srv.Addr)...), flags.Args(m)...)
	args = append(args, "--output", "json")
	calls0 := w.Srv.Calls()
	load := StartLoad(w.URL, w.Good, m.ScaledRate())
	r, err := bn.CLI.Expect(ctx, Env(w.Srv.Addr, dir), 0, args...)
	saw := load.Finish()
	if err != nil {
		return Outcome{}, err
	}
	rep, err := Decode[Report](r)
	if err != nil {
		return Outcome{}, err
	}
	away, err := w.Away()
	if err != nil {
		return Outcome{}, fmt.Errorf("drill: %w", err)
	}
	o := Outcome{
		Wall: r.Wall, Away: away, Users: saw, Floor: m.RestoreFloor(),
		Detect: ms(rep.Timings.Detect), Restore: ms(rep.Timings.Restore), Verify: ms(rep.Timings.Verify),
		Exposure: ms(rep.Exposure.MS),
	}
	o.add(r)
	o.Reads, o.Writes = Calls(calls0, w.Srv.Calls())
	o.Deploys, o.Others = w.Ops()
	return o, nil
}

// DrillFloor is the least wall time of a drill that made the writes o
// counts: one read, each write's round trip and operation, and the broken
// revision's cold start before its tag URL answers.
func (bn *Bench) DrillFloor(o Outcome) time.Duration {
	return bn.Model.WritesFloor(1, o.Deploys, o.Others, 1)
}

// badDeploy is a plain deploy of a broken revision with traffic LATEST=100,
// as `gcloud run deploy` of a LATEST-tracking service does. It returns once
// the deploy is done.
func badDeploy(ctx context.Context, c *cloudrun.Client, env map[string]string) error {
	svc, err := c.GetService(ctx, Ref)
	if err != nil {
		return err
	}
	_, err = c.DeployRevision(ctx, Ref, svc.Etag, rollback.Deploy{Env: env, Traffic: rollback.Split{{Latest: true, Percent: 100}}})
	return err
}

// Baseline is the usual approach: the bad deploy, a smoke check with fixed
// retries and delay, and, when it fails, a traffic update to the previous
// revision by creation order. Its Floor is ExposureFloor.
func (bn *Bench) Baseline(ctx context.Context, w *World) (Outcome, error) {
	m := bn.Model
	c, err := bn.client(ctx, w)
	if err != nil {
		return Outcome{}, err
	}
	defer c.Close()
	calls0 := w.Srv.Calls()
	load := StartLoad(w.URL, w.Good, m.ScaledRate())
	fail := func(err error) (Outcome, error) { load.Finish(); return Outcome{}, err }
	start := time.Now()
	if err := badDeploy(ctx, c, map[string]string{fakeapp.EnvBreak: "health"}); err != nil {
		return fail(err)
	}
	deployed := time.Now()
	if smoke(ctx, w.URL, SmokeRetries, m.S(SmokeDelay)) {
		return fail(fmt.Errorf("baseline: the smoke check passed on the broken revision"))
	}
	detected := time.Now()
	revs, err := c.ListRevisions(ctx, Ref) // newest first
	if err != nil || len(revs) < 2 {
		return fail(fmt.Errorf("baseline: list revisions: %v %v", revs, err))
	}
	prev := revs[1].Name
	cur, err := c.GetService(ctx, Ref)
	if err != nil {
		return fail(err)
	}
	if _, err := c.UpdateTraffic(ctx, Ref, cur.Etag, rollback.Split{{Revision: prev, Percent: 100}}); err != nil {
		return fail(fmt.Errorf("baseline: roll back to %s: %w", prev, err))
	}
	end := time.Now()
	saw := load.Finish()
	if prev != w.Good {
		return Outcome{}, fmt.Errorf("baseline rolled back to %s, not to %s", prev, w.Good)
	}
	away, err := w.Away()
	if err != nil {
		return Outcome{}, fmt.Errorf("baseline: %w", err)
	}
	o := Outcome{Wall: end.Sub(start), Away: away, Detect: detected.Sub(deployed), Restore: end.Sub(detected), Users: saw, Floor: m.ExposureFloor()}
	o.Reads, o.Writes = Calls(calls0, w.Srv.Calls())
	o.Deploys, o.Others = w.Ops()
	return o, nil
}

// smoke is a deploy workflow's smoke check, like `curl --fail --retry N
// --retry-delay D URL/api/v1/health/`: healthy on the first 2xx, else after
// retries+1 attempts with a fixed pause between them.
func smoke(ctx context.Context, baseURL string, retries int, delay time.Duration) bool {
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

// Guard is the same bad deploy inside the workflow: `runrollback snapshot`
// before it, and `runrollback guard --restore-from FILE` with flags after it.
// Its Floor is ExposureFloor.
func (bn *Bench) Guard(ctx context.Context, w *World, flags ProbeFlags) (Outcome, error) {
	m := bn.Model
	c, err := bn.client(ctx, w)
	if err != nil {
		return Outcome{}, err
	}
	defer c.Close()
	dir := bn.TempDir()
	env := Env(w.Srv.Addr, filepath.Join(dir, "state"))
	snapFile := filepath.Join(dir, "snapshot.json")
	calls0 := w.Srv.Calls()
	load := StartLoad(w.URL, w.Good, m.ScaledRate())
	fail := func(err error) (Outcome, error) { load.Finish(); return Outcome{}, err }
	var o Outcome
	start := time.Now()
	snap, err := bn.CLI.Expect(ctx, env, 0, append(append([]string{"snapshot"}, Target(w.Srv.Addr)...), "--out", snapFile)...)
	if err != nil {
		return fail(err)
	}
	o.add(snap)
	if err := badDeploy(ctx, c, map[string]string{fakeapp.EnvBreak: "health"}); err != nil {
		return fail(err)
	}
	w.MarkStart()
	execAt := time.Now()
	args := append(append([]string{"guard"}, Target(w.Srv.Addr)...), "--restore-from", snapFile, "--output", "json")
	g, err := bn.CLI.Expect(ctx, env, 1, append(args, flags.Args(m)...)...) // unhealthy, rolled back
	if err != nil {
		return fail(err)
	}
	o.add(g)
	end := time.Now()
	o.Users = load.Finish()
	if first, ok := w.FirstRPC(); ok {
		o.ProcessStart = first.Sub(execAt)
	}
	rep, err := Decode[Report](g)
	if err != nil {
		return Outcome{}, err
	}
	if rep.Result != rollback.ResultFail || !rep.TrafficRestored || rep.After == nil || !rep.After.Healthy || rep.After.Revision != w.Good {
		return Outcome{}, fmt.Errorf("guard: want a rollback to %s verified healthy; got result %q, traffic_restored %v, after %+v: %s", w.Good, rep.Result, rep.TrafficRestored, rep.After, rep.Error)
	}
	if o.Away, err = w.Away(); err != nil {
		return Outcome{}, fmt.Errorf("guard: %w", err)
	}
	o.Wall = end.Sub(start)
	o.Detect, o.Restore, o.Verify = ms(rep.Timings.Detect), ms(rep.Timings.Restore), ms(rep.Timings.Verify)
	o.Floor = m.ExposureFloor()
	o.Reads, o.Writes = Calls(calls0, w.Srv.Calls())
	o.Deploys, o.Others = w.Ops()
	return o, nil
}

// The revisions `guard --candidate` judges.
const (
	CandidateTag  = "candidate"
	CandidateBad  = "api-00003-bad"
	CandidateGood = "api-00003-new"
)

// stageCandidate deploys rev with no traffic and the candidate tag, like
// `gcloud run deploy --no-traffic --tag candidate`.
func stageCandidate(ctx context.Context, c *cloudrun.Client, rev string, env map[string]string) error {
	svc, err := c.GetService(ctx, Ref)
	if err != nil {
		return err
	}
	traffic := append(rollback.Resolve(svc.Traffic, svc.LatestReadyRevision), rollback.Target{Revision: rev, Tag: CandidateTag})
	_, err = c.DeployRevision(ctx, Ref, svc.Etag, rollback.Deploy{Revision: rev, Env: env, Traffic: traffic})
	return err
}

// Candidate is a revision deployed with no traffic and the candidate tag,
// then `runrollback guard --candidate candidate`: bad (RUNROLLBACK_BREAK=health)
// must be found unhealthy with nothing changed and users never off the good
// revision; good (APP_VERSION=1.2.0) must be promoted. Its Floor is the
// candidate's cold start on its tag URL: no verdict can come sooner.
func (bn *Bench) Candidate(ctx context.Context, w *World, flags ProbeFlags, good bool) (Outcome, error) {
	m := bn.Model
	c, err := bn.client(ctx, w)
	if err != nil {
		return Outcome{}, err
	}
	defer c.Close()
	rev, env, code := CandidateBad, map[string]string{fakeapp.EnvBreak: "health"}, 1
	if good {
		rev, env, code = CandidateGood, map[string]string{"APP_VERSION": "1.2.0"}, 0
	}
	dir := bn.TempDir()
	calls0 := w.Srv.Calls()
	load := StartLoad(w.URL, w.Good, m.ScaledRate())
	fail := func(err error) (Outcome, error) { load.Finish(); return Outcome{}, err }
	start := time.Now()
	if err := stageCandidate(ctx, c, rev, env); err != nil {
		return fail(err)
	}
	deployed := time.Now()
	callsDeployed := w.Srv.Calls()
	args := append(append([]string{"guard"}, Target(w.Srv.Addr)...), "--candidate", CandidateTag, "--output", "json")
	g, err := bn.CLI.Expect(ctx, Env(w.Srv.Addr, dir), code, append(args, flags.Args(m)...)...)
	if err != nil {
		return fail(err)
	}
	end := time.Now()
	o := Outcome{Users: load.Finish(), Wall: end.Sub(start), Verdict: end.Sub(deployed), Floor: m.S(m.ColdStart)}
	o.add(g)
	rep, err := Decode[Report](g)
	if err != nil {
		return Outcome{}, err
	}
	o.Detect, o.Verify = ms(rep.Timings.Detect), ms(rep.Timings.Verify)
	if good {
		if !rep.TrafficRestored || rep.After == nil || !rep.After.Healthy || rep.After.Revision != CandidateGood {
			return Outcome{}, fmt.Errorf("guard --candidate (good): want %s promoted and healthy; got %+v", CandidateGood, rep)
		}
		landed, full, ok := w.LandedFull(CandidateGood)
		if !ok {
			return Outcome{}, fmt.Errorf("guard --candidate (good): %s never had all the traffic: %+v", CandidateGood, w.Landings())
		}
		o.To100 = full.Sub(landed)
		o.Restore = rep.Step("promote")
	} else {
		if rep.Result != rollback.ResultFail {
			return Outcome{}, fmt.Errorf("guard --candidate: want result fail (candidate unhealthy); got %q: %s", rep.Result, rep.Error)
		}
		if _, writes := Calls(callsDeployed, w.Srv.Calls()); writes != 0 {
			return Outcome{}, fmt.Errorf("guard --candidate: %d writes for an unhealthy candidate, want none", writes)
		}
		if n, left := w.LeftGood(); n != 1 || left {
			return Outcome{}, fmt.Errorf("guard --candidate: want one operation (the deploy) and users never off %s; got %d operations, left: %v", w.Good, n, left)
		}
		if got, want := w.Traffic(Service), w.Good+"=100, "+CandidateBad+"=0@"+CandidateTag; got != want {
			return Outcome{}, fmt.Errorf("guard --candidate: traffic %s, want %s", got, want)
		}
	}
	o.Reads, o.Writes = Calls(calls0, w.Srv.Calls())
	o.Deploys, o.Others = w.Ops()
	return o, nil
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
