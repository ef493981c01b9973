package rollback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Guard runs after a real deploy: it probes the service; when healthy it moves
// the last-good tag to the serving revision; when not, it restores the snapshot
// taken before the deploy (or sends 100% to the last-good revision), verifies,
// and reports what it rolled back. Leased and journaled like the drill.
type Guard struct {
	Cloud   CloudRun
	Probe   Prober
	Journal FileJournal
	Observe Observer
	Now     func() time.Time
	Calls   func() (reads, writes int64)
	// BeforeStep, when set, runs before each step (see Drill.BeforeStep).
	BeforeStep func(ctx context.Context, step string) error
}

// GuardOptions are the guard's inputs, validated by the caller.
type GuardOptions struct {
	Service       ServiceRef
	RestoreFrom   *Snapshot
	LastGoodTag   string
	URL           string
	ExpectVersion string
	Owner         string
	// Candidate, when set, is the tag of a revision deployed with no traffic
	// (gcloud run deploy --no-traffic --tag TAG): it is probed on its own URL
	// and promoted to 100% only when healthy, so users never reach a bad one.
	Candidate string
	// LeaseTTL default 15m; RestoreTimeout default DefaultRestoreTimeout.
	LeaseTTL       time.Duration
	RestoreTimeout time.Duration
}

// Guard steps.
const (
	StepProbe = "probe"
	StepTag   = "tag"
)

type guardRun struct {
	*runner
	g    *Guard
	o    GuardOptions
	svc  *Service
	hint string
	// leased: the service may carry our lease and journal.
	leased bool
	// left lists what of the guard's stays on the service.
	left, fixes []string
}

// Run guards the service and returns the report: pass when healthy; fail when
// unhealthy (rolled back or not: the report says which); aborted when it
// stopped before changing anything; error when a rollback it started could not
// be confirmed.
func (g *Guard) Run(ctx context.Context, o GuardOptions) *Report {
	o.LeaseTTL = cmp.Or(o.LeaseTTL, 15*time.Minute)
	o.RestoreTimeout = cmp.Or(o.RestoreTimeout, DefaultRestoreTimeout)
	if o.LastGoodTag == "" {
		// The default that fits the service's name; "" when none does.
		o.LastGoodTag, _ = LastGoodTag(o.Service.Name, "", false)
	}
	rep := &Report{
		Schema:  ReportSchema,
		Command: "guard",
		Service: ReportService{Project: o.Service.Project, Region: o.Service.Region, Name: o.Service.Name},
	}
	gr := &guardRun{runner: newRunner(rep, g.Observe, g.Now, g.BeforeStep, g.Journal), g: g, o: o}
	start := gr.now()
	result, err := gr.run(ctx)
	var errText string
	if err != nil {
		errText = errorText(ctx, err)
	}
	result, errText, gr.hint = withLeft(gr.rep, result, errText, gr.hint, gr.left, gr.fixes)
	conclude(gr.rep, result, errText, gr.hint, g.Calls, gr.now().Sub(start))
	return gr.rep
}

func (gr *guardRun) run(ctx context.Context) (string, error) {
	g, ref := gr.g, gr.o.Service
	var res ProbeResult
	err := gr.step(ctx, StepPreflight, func(ctx context.Context) (string, error) {
		svc, err := g.Cloud.GetService(ctx, ref)
		if err != nil {
			return "", err
		}
		gr.svc = svc
		gr.rep.Service.URI = svc.URI
		gr.rep.Before = &ReportState{Traffic: svc.Traffic, Etag: svc.Etag, Generation: svc.Generation}
		lease, journal, err := LeaseAndJournal(svc)
		if err != nil {
			return "", err
		}
		if lease != nil && !lease.Expired(gr.now()) {
			gr.hint = fmt.Sprintf("another run (%s by %s) holds the service until %s; run 'runrollback recover' if it died", lease.Command, lease.Owner, lease.Expires.Format(time.RFC3339))
			return "", fmt.Errorf("%w: a lease is held on %q", ErrAborted, ref.Name)
		}
		if journal != nil && lease == nil {
			gr.hint = "an earlier run was interrupted: run 'runrollback recover' first"
			return "", fmt.Errorf("%w: an interrupted run's journal is on %q", ErrAborted, ref.Name)
		}
		if cmp.Or(gr.o.URL, svc.URI) == "" {
			return "", fmt.Errorf("%w: service %q reports no URL to probe; pass --url", ErrAborted, ref.Name)
		}
		return fmt.Sprintf("%s: traffic %s, latest ready %s", ref.Name, svc.Traffic, svc.LatestReadyRevision), nil
	})
	if err != nil {
		return ResultAborted, err
	}
	if gr.o.Candidate != "" {
		return gr.promote(ctx)
	}
	url := cmp.Or(gr.o.URL, gr.svc.URI)
	perr := gr.step(ctx, StepProbe, func(ctx context.Context) (string, error) {
		res = g.Probe.WaitHealthy(ctx, url, Expect{Version: gr.o.ExpectVersion})
		gr.rep.Timings.Detect = ms(res.Elapsed)
		gr.rep.Before.Healthy, gr.rep.Before.Version, gr.rep.Before.Revision = res.OK, res.Version, res.Revision
		if !res.OK {
			return "", fmt.Errorf("%s is unhealthy after %d probe(s): %s", url, res.Attempts, res.Detail)
		}
		_, serving := MoveTag(gr.svc, gr.o.LastGoodTag)
		note, err := gr.checkVersion(ctx, StepProbe, serving, res)
		if err != nil {
			res.OK, res.Detail = false, err.Error()
			gr.rep.Before.Healthy = false
			return "", err
		}
		return fmt.Sprintf("%s, %d probe(s)%s", DescribeHealthy(res), res.Attempts, note), nil
	})
	if ctx.Err() != nil && !res.OK {
		return ResultAborted, cmp.Or(ctx.Err(), perr)
	}
	if res.OK {
		return gr.healthy(ctx)
	}
	return gr.rollback(ctx, res)
}

// healthy moves the last-good tag to the serving revision.
func (gr *guardRun) healthy(ctx context.Context) (string, error) {
	err := gr.step(ctx, StepTag, func(ctx context.Context) (string, error) {
		if gr.o.LastGoodTag == "" {
			gr.warn(StepTag, fmt.Sprintf("no last-good tag fits with the service name %q (tag and name together at most %d characters): not tagged", gr.o.Service.Name, MaxTagAndService))
			return "", nil
		}
		want, serving := MoveTag(gr.svc, gr.o.LastGoodTag)
		gr.rep.LastGood = []string{serving}
		if gr.svc.Traffic.Equal(want) {
			return "", nil
		}
		before := gr.svc
		svc, err := gr.g.Cloud.UpdateTraffic(ctx, gr.o.Service, before.Etag, want)
		out, cur := settle(ctx, gr.g.Cloud, gr.o.Service, before, svc, err, func(s *Service) bool { return s.Traffic.Equal(want) })
		if cur != nil {
			gr.svc = cur
		}
		if out != Applied {
			if errors.Is(err, ErrConflict) {
				gr.hint = "someone changed the service during the guard; the tag was not moved: run the guard again"
			}
			return "", err
		}
		return fmt.Sprintf("tag %s now on %s: %s", gr.o.LastGoodTag, serving, want), nil
	})
	gr.rep.After = &ReportState{Traffic: gr.svc.Traffic, Healthy: true, Version: gr.rep.Before.Version, Revision: gr.rep.Before.Revision}
	gr.rep.TrafficRestored = true
	if err != nil {
		// The service is healthy; only the bookkeeping failed.
		return ResultAborted, err
	}
	return ResultPass, nil
}

// MoveTag returns svc's traffic with tag on the revision serving the largest share
// (LATEST resolved), and removed from anywhere else.
func MoveTag(svc *Service, tag string) (Split, string) {
	serving := ""
	var best int32 = -1
	for _, t := range Resolve(svc.Traffic, svc.LatestReadyRevision) {
		if t.Percent > best {
			best, serving = t.Percent, t.Revision
		}
	}
	var out Split
	placed := false
	for _, t := range svc.Traffic {
		switch {
		case t.Tag == tag && t.Revision == serving && !t.Latest:
			placed = true
		case t.Tag == tag && t.Percent == 0:
			continue // a tag-only entry: drop it
		case t.Tag == tag:
			t.Tag = "" // keep its traffic, lose the tag
		}
		out = append(out, t)
	}
	if !placed {
		out = append(out, Target{Revision: serving, Percent: 0, Tag: tag})
	}
	return out, serving
}

// converger is the shared restore path on the guard's journal and its view of
// the service.
func (gr *guardRun) converger() *converger {
	return &converger{cloud: gr.g.Cloud, ref: gr.o.Service, j: &gr.j, svc: gr.svc, rep: gr.rep,
		warn: func(msg string) { gr.warn(StepRestore, msg) }}
}

// rollback restores the snapshot, or 100% to the last-good tag's revision.
func (gr *guardRun) rollback(ctx context.Context, res ProbeResult) (string, error) {
	g, ref := gr.g, gr.o.Service
	failure := fmt.Errorf("the service is unhealthy after the deploy: %s", res.Detail)
	ro := RollbackOptions{Service: ref, From: gr.o.RestoreFrom, Tag: gr.o.LastGoodTag}
	if ro.From != nil {
		ro.Tag = ""
	}
	want, why, err := RollbackTarget(gr.svc, ro)
	if err == nil {
		err = ValidateSplit(want)
	}
	if err != nil {
		gr.hint = "no known good target, so nothing was changed: take a snapshot before deploying (runrollback snapshot --out FILE, then guard --restore-from FILE), or tag a good revision last-good"
		_ = gr.step(ctx, StepRestore, func(context.Context) (string, error) { return "", err })
		return ResultFail, fmt.Errorf("%v; and no rollback target: %w", failure, err)
	}
	for _, t := range Resolve(want, gr.svc.LatestReadyRevision) {
		if t.Percent > 0 && !slices.Contains(gr.rep.LastGood, t.Revision) {
			gr.rep.LastGood = append(gr.rep.LastGood, t.Revision)
		}
	}
	snap := TakeSnapshot(gr.svc, gr.now())
	snap.Traffic = want
	if ro.From != nil {
		snap.LatestReady = ro.From.LatestReady
	}
	// Restore on a context a signal does not cancel: a rollback once started finishes.
	rctx, cancel := urgentContext(ctx, gr.o.RestoreTimeout)
	defer cancel()
	// The lease and journal go on the service in the same write as the
	// restore: users are not kept on the bad deploy for a separate write, and a
	// drill or guard that started meanwhile makes this write's etag stale.
	var restored plan
	err = gr.step(rctx, StepRestore, func(ctx context.Context) (string, error) {
		ann, err := gr.journalWith(Journal{Step: StepRestore, Snapshot: snap, From: gr.svc.Traffic, Expect: want})
		if err != nil {
			return "", err
		}
		start := gr.now()
		defer func() { gr.rep.Timings.Restore = ms(gr.now().Sub(start)) }()
		restored, err = gr.restoreTo(ctx, want, ann)
		if err != nil {
			return "", err
		}
		if restored.done {
			return fmt.Sprintf("the traffic is already %s: nothing to write", want), nil
		}
		if !gr.leased {
			return fmt.Sprintf("rolled back to %s: %s (journal %s kept locally only)", why, want, gr.j.ID), nil
		}
		return fmt.Sprintf("rolled back to %s: %s (lease %s taken with it)", why, want, gr.j.ID), nil
	})
	if err != nil {
		switch {
		case errors.Is(err, ErrConflict):
			gr.hint = "someone else changed the service during the rollback; nothing was overwritten: check 'runrollback status'"
			gr.forgetIfUntouched(rctx)
			return ResultAborted, fmt.Errorf("%v; rollback not written: %w", failure, err)
		case gr.forgetIfUntouched(rctx):
			gr.hint = "the rollback was not written, and a read shows the service as the guard found it, so nothing was changed: roll back by hand to a revision that exists (runrollback status; runrollback rollback --to REVISION)"
			return ResultFail, fmt.Errorf("%v; the rollback was not written: %w", failure, err)
		}
		gr.hint = RecoverHint(ref, g.Journal, gr.j.Operation)
		return ResultError, fmt.Errorf("%v; %w: %w", failure, ErrNotRestored, err)
	}
	var verr error
	_ = gr.step(rctx, StepVerify, func(ctx context.Context) (string, error) {
		start := gr.now()
		defer func() { gr.rep.Timings.Verify = ms(gr.now().Sub(start)) }()
		cur, r, err := verifyServing(ctx, g.Cloud, g.Probe, ref, check{url: gr.o.URL, want: want})
		if cur != nil {
			gr.svc = cur
			gr.rep.After = &ReportState{Traffic: cur.Traffic, Healthy: err == nil, Version: r.Version, Revision: r.Revision}
		}
		if err != nil {
			verr = err
			if errors.Is(err, errUnhealthy) {
				return "", fmt.Errorf("the last good revision(s) do not answer healthy either: %s", r.Detail)
			}
			return "", err
		}
		return DescribeHealthy(r) + " after the rollback", nil
	})
	gr.rep.TrafficRestored = gr.svc.Traffic.Equal(want)
	if err := gr.release(rctx); err != nil {
		gr.hint = RecoverHint(ref, g.Journal, "")
		return ResultError, fmt.Errorf("%v; rolled back, but %w", failure, err)
	}
	switch {
	case errors.Is(verr, ErrConflict):
		gr.hint = "someone else changed the traffic after the rollback; it was left as they set it: check 'runrollback status'"
		return ResultAborted, fmt.Errorf("%v; rolled back, but %w", failure, verr)
	case verr != nil:
		gr.hint = "traffic is on the last good revision(s), which do not answer healthy either: check them with 'runrollback status --probe'"
		return ResultFail, fmt.Errorf("%v; rolled back, but %w", failure, verr)
	}
	gr.hint = "the deploy was rolled back; fix the release before deploying again"
	return ResultFail, fmt.Errorf("%v; rolled back to %s in %dms", failure, strings.TrimSpace(why), gr.rep.Timings.Restore)
}

// restoreTo writes want, with the annotations ann in the same write, over the
// service the guard read, never over anyone else's change. A journal Cloud
// Run refuses (too large, say) never stands between users and their restore:
// the traffic is then written alone, the local journal still kept.
func (gr *guardRun) restoreTo(ctx context.Context, want Split, ann map[string]string) (plan, error) {
	based := gr.svc
	c := gr.converger()
	decide := func(cur *Service) plan {
		switch {
		case cur.Traffic.Equal(want) && (ann == nil || sameAnnotations(cur.Annotations, ann)):
			return plan{done: true}
		case cur.Etag == based.Etag:
			return plan{want: want, annotations: ann}
		case cur.Traffic.Equal(want):
			// Traffic is where we wanted it (our write applied, or someone
			// else's): take the lease in a write of its own.
			if ann == nil {
				return plan{done: true}
			}
			based = cur
			return plan{want: want, annotations: WithRunAnnotationsFrom(cur.Annotations, ann)}
		}
		return plan{stop: fmt.Errorf("%w: traffic of %q is now %s (was %s when the guard read it)", ErrConflict, gr.o.Service.Name, cur.Traffic, based.Traffic)}
	}
	p, err := c.restore(ctx, decide)
	gr.svc = c.svc
	if err != nil && ann != nil && errors.Is(err, ErrInvalid) {
		gr.warn(StepRestore, fmt.Sprintf("Cloud Run refused the journal annotation (%v): writing the traffic alone; the local journal %s is kept", err, gr.g.Journal.Path(gr.o.Service)))
		ann = nil
		gr.leased = false
		c.svc = gr.svc
		p, err = c.restore(ctx, decide)
		gr.svc = c.svc
	}
	if err == nil && ann != nil {
		gr.leased = true
	}
	return p, err
}

// forgetIfUntouched deletes the local journal when a read proves the service
// carries nothing of the run's (the restore was not applied); it reports
// whether it did.
func (gr *guardRun) forgetIfUntouched(ctx context.Context) bool {
	cur, err := gr.g.Cloud.GetService(ctx, gr.o.Service)
	if err != nil {
		return false
	}
	l, _, _ := LeaseAndJournal(cur)
	if (l != nil && l.ID == gr.j.ID) || cur.Traffic.Equal(gr.j.Expect) && !cur.Traffic.Equal(gr.j.From) {
		return false
	}
	if err := gr.forget(gr.o.Service); err != nil {
		return false
	}
	gr.leased = false
	return true
}

// journalWith completes j (id, owner, times), saves it locally and returns the
// service's annotations with the lease and journal added.
func (gr *guardRun) journalWith(j Journal) (map[string]string, error) {
	now := gr.now()
	id := NewDrillID()
	j.Schema, j.ID, j.Command, j.Owner, j.Started, j.PID = JournalSchema, id, "guard", gr.o.Owner, now.UTC(), os.Getpid()
	l := Lease{ID: id, Owner: gr.o.Owner, Command: "guard", Started: now.UTC(), Expires: now.Add(gr.o.LeaseTTL).UTC()}
	ann, err := WithRunAnnotations(gr.svc.Annotations, l, j)
	if err != nil {
		return nil, err
	}
	if err := gr.journal(j); err != nil {
		return nil, err
	}
	return ann, nil
}

// release removes the lease and journal from the service, then the local file.
func (gr *guardRun) release(ctx context.Context) error {
	if !gr.journaled {
		return nil
	}
	return gr.step(ctx, StepCleanup, func(ctx context.Context) (string, error) {
		c := gr.converger()
		d, err := c.release(ctx, func() error { return gr.forget(gr.o.Service) })
		gr.svc = c.svc
		gr.left, gr.fixes = append(gr.left, c.left...), append(gr.fixes, c.fixes...)
		if err != nil {
			return "", err
		}
		gr.leased = false
		return cmp.Or(d, "no lease on the service; local journal removed"), nil
	})
}

// WithRunAnnotationsFrom returns annotations with our keys taken from ours.
func WithRunAnnotationsFrom(annotations, ours map[string]string) map[string]string {
	out := WithoutRunAnnotations(annotations)
	for k, v := range ours {
		if isRunAnnotation(k) {
			out[k] = v
		}
	}
	return out
}
