package rollback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Rollback moves a service's traffic back by hand: to a revision, to the revision
// a tag names, or to a snapshot's split; one traffic-only write, then verify.
type Rollback struct {
	Cloud   CloudRun
	Probe   Prober
	Observe Observer
	Now     func() time.Time
	Calls   func() (reads, writes int64)
	// BeforeStep, when set, runs before each step (see Drill.BeforeStep).
	BeforeStep func(ctx context.Context, step string) error
}

// RollbackOptions say where to roll back to: exactly one of To, Tag, From.
type RollbackOptions struct {
	Service       ServiceRef
	To            string
	Tag           string
	From          *Snapshot
	URL           string
	ExpectVersion string
	// RestoreTimeout bounds the write and the verify once the write is sent.
	// Default DefaultRestoreTimeout.
	RestoreTimeout time.Duration
}

// Steps of a rollback.
const (
	StepRead = "read"
)

// RollbackTarget computes the split to write for a rollback from the current
// service: every tag keeps pointing at its revision (at 0%) and the target gets 100%.
// A snapshot gives its traffic list verbatim, or pinned when LATEST now resolves to
// another revision than when the snapshot was taken.
func RollbackTarget(cur *Service, o RollbackOptions) (Split, string, error) {
	if o.From != nil {
		if cur.LatestReadyRevision == o.From.LatestReady || !o.From.hasLatest() {
			return slices.Clone(o.From.Traffic), "the snapshot's traffic list, verbatim", nil
		}
		return o.From.Pinned(), fmt.Sprintf("the snapshot's traffic list, with LATEST pinned to %s (LATEST now resolves to %s)", o.From.LatestReady, cur.LatestReadyRevision), nil
	}
	target := o.To
	why := "revision " + o.To
	if o.Tag != "" {
		for _, t := range Resolve(cur.Traffic, cur.LatestReadyRevision) {
			if t.Tag == o.Tag {
				target = t.Revision
			}
		}
		if target == "" {
			return nil, "", fmt.Errorf("no revision carries the tag %q on %q: pass --to REVISION or --restore-from FILE", o.Tag, cur.Ref.Name)
		}
		why = fmt.Sprintf("revision %s (tag %s)", target, o.Tag)
	}
	var out Split
	placed := false
	for _, t := range Resolve(cur.Traffic, cur.LatestReadyRevision) {
		if t.Tag == "" {
			continue
		}
		t.Percent = 0
		if t.Revision == target && !placed {
			t.Percent = 100
			placed = true
		}
		out = append(out, t)
	}
	if !placed {
		out = append([]Target{{Revision: target, Percent: 100}}, out...)
	}
	return out, why, nil
}

// Run performs the rollback and returns its report.
func (rb *Rollback) Run(ctx context.Context, o RollbackOptions) *Report {
	rep := &Report{
		Schema:  ReportSchema,
		Command: "rollback",
		Service: ReportService{Project: o.Service.Project, Region: o.Service.Region, Name: o.Service.Name},
	}
	r := newRunner(rep, rb.Observe, rb.Now, rb.BeforeStep, FileJournal{})
	start := r.now()
	result, hint, err := rb.run(ctx, r, o)
	var errText string
	if err != nil {
		errText = errorText(ctx, err)
	}
	conclude(rep, result, errText, hint, rb.Calls, r.now().Sub(start))
	return rep
}

func (rb *Rollback) run(ctx context.Context, r *runner, o RollbackOptions) (result, hint string, err error) {
	var cur *Service
	var want Split
	err = r.step(ctx, StepRead, func(ctx context.Context) (string, error) {
		var err error
		cur, err = rb.Cloud.GetService(ctx, o.Service)
		if err != nil {
			return "", err
		}
		r.rep.Service.URI = cur.URI
		r.rep.Before = &ReportState{Traffic: cur.Traffic, Etag: cur.Etag, Generation: cur.Generation}
		var why string
		want, why, err = RollbackTarget(cur, o)
		if err == nil && o.To != "" {
			err = rb.checkRevision(ctx, o.Service, o.To)
		}
		if err == nil {
			err = ValidateSplit(want)
		}
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrAborted, err)
		}
		for _, t := range want {
			if t.Percent > 0 && !t.Latest {
				r.rep.LastGood = append(r.rep.LastGood, t.Revision)
			}
		}
		return fmt.Sprintf("%s: traffic %s; rolling back to %s: %s", cur.Ref.Name, cur.Traffic, why, want), nil
	})
	if err != nil {
		return ResultAborted, "nothing was changed", err
	}

	// Once the write is sent, finish on a context a signal does not cancel.
	rctx, cancel := urgentContext(ctx, cmp.Or(o.RestoreTimeout, DefaultRestoreTimeout))
	defer cancel()
	if cur.Traffic.Equal(want) && cur.Converged() {
		r.skip(StepRestore, "the split already matches: nothing to write")
	} else {
		err = r.step(ctx, StepRestore, func(ctx context.Context) (string, error) {
			began := r.now()
			defer func() { r.rep.Timings.Restore = ms(r.now().Sub(began)) }()
			c := &converger{cloud: rb.Cloud, ref: o.Service, j: &Journal{}, svc: cur, rep: r.rep, warn: func(m string) { r.warn(StepRestore, m) }}
			// Ctx, not rctx: until the write is sent, a signal may still stop it;
			// settle and the retries run on rctx.
			_, err := c.restore(rctx, func(now *Service) plan {
				switch {
				case now.Traffic.Equal(want):
					return plan{done: true}
				case now.Etag == cur.Etag:
					if ctx.Err() != nil {
						return plan{stop: ctx.Err()}
					}
					return plan{want: want}
				}
				return plan{stop: fmt.Errorf("%w: the traffic of %q is now %s (was %s when read)", ErrConflict, o.Service.Name, now.Traffic, cur.Traffic)}
			})
			if err != nil {
				return "", err
			}
			return "traffic written: " + want.String(), nil
		})
		if err != nil {
			now, rerr := rb.Cloud.GetService(rctx, o.Service)
			switch {
			case rerr != nil:
				return ResultError, "the write's outcome is unknown (the service could not be read back): check 'runrollback status', then run this rollback again", fmt.Errorf("%w: %w", ErrNotRestored, err)
			case now.Traffic.Equal(want):
				return ResultError, "the write was accepted but its rollout was not confirmed: check 'runrollback status', then run this rollback again", fmt.Errorf("%w: %w", ErrNotRestored, err)
			case now.Etag == cur.Etag:
				return ResultAborted, "nothing was changed (a read shows the service as it was)", err
			}
			return ResultAborted, "someone else changed the service since it was read; nothing was overwritten: check 'runrollback status' and run the rollback again", err
		}
	}

	var res ProbeResult
	var verr error
	_ = r.step(rctx, StepVerify, func(ctx context.Context) (string, error) {
		began := r.now()
		defer func() { r.rep.Timings.Verify = ms(r.now().Sub(began)) }()
		var now *Service
		now, res, verr = verifyServing(ctx, rb.Cloud, rb.Probe, o.Service, check{url: o.URL, want: want, version: o.ExpectVersion})
		if verr != nil {
			return "", verr
		}
		_ = now
		return fmt.Sprintf("%s, %d probe(s)", DescribeHealthy(res), res.Attempts), nil
	})
	r.rep.After = &ReportState{Traffic: want, Version: res.Version, Revision: res.Revision, Healthy: verr == nil}
	r.rep.TrafficRestored = verr == nil
	switch {
	case errors.Is(verr, ErrConflict):
		return ResultAborted, "someone else changed the traffic after the rollback; it was left as they set it: check 'runrollback status'", verr
	case verr != nil:
		return ResultFail, "the traffic was written; the revision it points at does not answer healthy: check it with 'runrollback status --probe'", verr
	}
	return ResultPass, "", nil
}

func (rb *Rollback) checkRevision(ctx context.Context, ref ServiceRef, name string) error {
	revs, err := rb.Cloud.ListRevisions(ctx, ref)
	if err != nil {
		return err
	}
	var names []string
	for _, r := range revs {
		if r.Name == name {
			if !r.Ready {
				return fmt.Errorf("revision %s is not ready and cannot serve traffic: %s", name, r.Message)
			}
			return nil
		}
		names = append(names, r.Name)
	}
	if len(names) > 5 {
		names = names[:5]
	}
	return fmt.Errorf("service %q has no revision %q (newest: %v)", ref.Name, name, names)
}
