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
}

// RollbackOptions say where to roll back to: exactly one of To, Tag, From.
type RollbackOptions struct {
	Service       ServiceRef
	To            string
	Tag           string
	From          *Snapshot
	URL           string
	ExpectVersion string
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
	now := rb.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	rep := &Report{
		Schema:  ReportSchema,
		Command: "rollback",
		Service: ReportService{Project: o.Service.Project, Region: o.Service.Region, Name: o.Service.Name},
	}
	stepDone := func(name, status, detail string, began time.Time) {
		recordStep(rep, rb.Observe, name, status, began, now().Sub(began), detail)
	}
	finish := func(result string, err error, hint string) *Report {
		var errText string
		if err != nil {
			errText = err.Error()
		}
		conclude(rep, result, errText, hint, rb.Calls, now().Sub(start))
		return rep
	}

	began := now()
	cur, err := rb.Cloud.GetService(ctx, o.Service)
	if err != nil {
		stepDone(StepRead, StepFail, err.Error(), began)
		return finish(ResultAborted, err, "nothing was changed")
	}
	rep.Service.URI = cur.URI
	rep.Before = &ReportState{Traffic: cur.Traffic, Etag: cur.Etag, Generation: cur.Generation}
	want, why, err := RollbackTarget(cur, o)
	if err == nil && o.To != "" {
		err = rb.checkRevision(ctx, o.Service, o.To)
	}
	if err == nil {
		err = ValidateSplit(want)
	}
	if err != nil {
		stepDone(StepRead, StepFail, err.Error(), began)
		return finish(ResultAborted, fmt.Errorf("%w: %w", ErrAborted, err), "nothing was changed")
	}
	for _, t := range want {
		if t.Percent > 0 && !t.Latest {
			rep.LastGood = append(rep.LastGood, t.Revision)
		}
	}
	stepDone(StepRead, StepPass, fmt.Sprintf("%s: traffic %s; rolling back to %s: %s", cur.Ref.Name, cur.Traffic, why, want), began)

	if cur.Traffic.Equal(want) && cur.Converged() {
		stepDone(StepRestore, StepSkipped, "the split already matches: nothing to write", now())
	} else {
		began = now()
		_, err := rb.Cloud.UpdateTraffic(ctx, o.Service, cur.Etag, want)
		rep.Timings.Restore = ms(now().Sub(began))
		if err != nil {
			stepDone(StepRestore, StepFail, err.Error(), began)
			switch {
			case errors.Is(err, ErrPending):
				return finish(ResultError, fmt.Errorf("%w: %w", ErrNotRestored, err), "the write was accepted but did not finish: check 'runrollback status', then run this rollback again")
			case errors.Is(err, ErrConflict):
				return finish(ResultAborted, err, "someone else changed the service since it was read; nothing was overwritten: check 'runrollback status' and run the rollback again")
			}
			return finish(ResultAborted, err, "nothing was changed")
		}
		stepDone(StepRestore, StepPass, "traffic written: "+want.String(), began)
	}

	began = now()
	res, verr := rb.verify(ctx, o, want)
	rep.Timings.Verify = ms(now().Sub(began))
	rep.After = &ReportState{Traffic: want, Version: res.Version, Revision: res.Revision, Healthy: verr == nil}
	rep.TrafficRestored = verr == nil
	if verr != nil {
		stepDone(StepVerify, StepFail, verr.Error(), began)
		return finish(ResultFail, verr, "the traffic was written; the revision it points at does not answer healthy: check it with 'runrollback status --probe'")
	}
	stepDone(StepVerify, StepPass, fmt.Sprintf("healthy %s from %s, %d probe(s)", res.Version, res.Revision, res.Attempts), began)
	return finish(ResultPass, nil, "")
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

func (rb *Rollback) verify(ctx context.Context, o RollbackOptions, want Split) (ProbeResult, error) {
	cur, err := rb.Cloud.GetService(ctx, o.Service)
	if err != nil {
		return ProbeResult{}, err
	}
	resolved := Resolve(want, cur.LatestReadyRevision)
	if !SameSplit(cur.ActualSplit(), resolved) {
		return ProbeResult{}, fmt.Errorf("actual split %s differs from the written %s", cur.ActualSplit(), resolved)
	}
	var serving []string
	for _, t := range resolved {
		if t.Percent > 0 {
			serving = append(serving, t.Revision)
		}
	}
	url := cmp.Or(o.URL, cur.URI)
	res := rb.Probe.WaitHealthy(ctx, url, Expect{Version: o.ExpectVersion, Revisions: serving})
	if !res.OK {
		return res, fmt.Errorf("%s did not answer healthy from %v: %s", url, serving, res.Detail)
	}
	return res, nil
}
