package rollback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Guard steps of a promotion.
const (
	StepPromote = "promote"
)

// promote guards a revision deployed with no traffic and the candidate tag:
// probe it on its tag URL; unhealthy, it never gets users (exit 1, nothing
// changed); healthy, one write sends it 100% (with the lease and journal), the
// service URL is checked, and then one write moves the last-good tag and
// releases the lease. If the service URL then fails, the prior split is put
// back, in the same kind of single write.
func (gr *guardRun) promote(ctx context.Context) (string, error) {
	g, ref := gr.g, gr.o.Service
	var cand, tagURL string
	for _, st := range gr.svc.TrafficStatuses {
		if st.Tag == gr.o.Candidate {
			cand, tagURL = st.Revision, st.URI
		}
	}
	switch {
	case cand == "":
		gr.hint = fmt.Sprintf("deploy the new revision with 'gcloud run deploy --no-traffic --tag %s', then run the guard with --candidate %s", gr.o.Candidate, gr.o.Candidate)
		return ResultAborted, fmt.Errorf("%w: no revision of %q carries the tag %q", ErrAborted, ref.Name, gr.o.Candidate)
	case tagURL == "":
		return ResultAborted, fmt.Errorf("%w: Cloud Run reports no URL for the tag %q", ErrAborted, gr.o.Candidate)
	case slices.ContainsFunc(gr.svc.ActualSplit(), func(t Target) bool { return t.Revision == cand && t.Percent > 0 }):
		gr.hint = "deploy with --no-traffic, which pins the traffic, so the candidate gets none until it is proven"
		return ResultAborted, fmt.Errorf("%w: candidate %s already receives traffic", ErrAborted, cand)
	}
	gr.rep.BrokenRevision = ""

	var res ProbeResult
	_ = gr.step(ctx, StepProbe, func(ctx context.Context) (string, error) {
		res = g.Probe.WaitHealthy(ctx, tagURL, Expect{Version: gr.o.ExpectVersion})
		gr.rep.Timings.Detect = ms(res.Elapsed)
		if !res.OK {
			return "", fmt.Errorf("candidate %s is unhealthy on its tag URL after %d probe(s): %s", cand, res.Attempts, res.Detail)
		}
		note, err := gr.checkVersion(ctx, StepProbe, cand, res)
		if err != nil {
			res.OK, res.Detail = false, err.Error()
			return "", err
		}
		return fmt.Sprintf("candidate %s healthy %s on its tag URL, %d probe(s)%s", cand, res.Version, res.Attempts, note), nil
	})
	if !res.OK {
		if ctx.Err() != nil {
			return ResultAborted, ctx.Err()
		}
		gr.rep.After = &ReportState{Traffic: gr.svc.Traffic, Healthy: true}
		gr.rep.TrafficRestored = true
		gr.hint = fmt.Sprintf("no user reached %s and nothing was changed; fix the release and deploy again", cand)
		return ResultFail, fmt.Errorf("candidate %s is unhealthy: %s", cand, res.Detail)
	}

	before := TakeSnapshot(gr.svc, gr.now())
	want, _, err := RollbackTarget(gr.svc, RollbackOptions{To: cand})
	if err == nil {
		err = ValidateSplit(want)
	}
	if err != nil {
		return ResultAborted, fmt.Errorf("%w: %w", ErrAborted, err)
	}
	// From the promotion on, a signal must not stop us half-way: finish on a
	// context it does not cancel.
	rctx, cancel := urgentContext(ctx, gr.o.RestoreTimeout)
	defer cancel()
	var promotedAt time.Time // users reach the candidate from here
	var outcome Outcome
	err = gr.step(ctx, StepPromote, func(ctx context.Context) (string, error) {
		ann, err := gr.journalWith(Journal{Step: StepPromote, Snapshot: before, Expect: want, Prior: gr.svc.Traffic})
		if err != nil {
			return "", err
		}
		based := gr.svc
		svc, err := g.Cloud.UpdateTrafficAnnotated(ctx, ref, based.Etag, want, ann)
		var cur *Service
		outcome, cur = settle(rctx, g.Cloud, ref, based, svc, err, func(s *Service) bool { return s.Traffic.Equal(want) })
		if cur != nil {
			gr.svc = cur
		}
		if outcome == Applied {
			promotedAt = gr.now()
			gr.leased = true
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("candidate %s promoted: %s (lease %s taken with it)", cand, want, gr.j.ID), nil
	})
	switch {
	case err == nil:
	case outcome == NotApplied:
		if derr := gr.forget(ref); derr == nil {
			gr.leased = false
		}
		gr.hint = "nothing was changed (a read shows the service as the guard found it): " + cmp.Or(gr.hint, "check 'runrollback status' and run the guard again")
		return ResultAborted, err
	case outcome == Applied:
		// The promotion landed though its reply said otherwise (a lost
		// reply, an operation poll that failed): wait for its rollout, then
		// verify it like any other.
		c := gr.converger()
		werr := c.rollout(rctx, err)
		gr.svc = c.svc
		if werr != nil {
			gr.hint = RecoverHint(ref, g.Journal, gr.j.Operation)
			return ResultError, fmt.Errorf("%w: candidate %s was promoted but its rollout was not confirmed: %w", ErrNotRestored, cand, werr)
		}
		gr.warn(StepPromote, fmt.Sprintf("the promotion reported %v, but the service shows it: verifying", err))
	default:
		gr.hint = RecoverHint(ref, g.Journal, gr.j.Operation)
		return ResultError, fmt.Errorf("%w: the promotion of %s was not confirmed: %w", ErrNotRestored, cand, err)
	}

	var vres ProbeResult
	verr := gr.step(rctx, StepVerify, func(ctx context.Context) (string, error) {
		cur, r, err := verifyServing(ctx, g.Cloud, g.Probe, ref, check{url: gr.o.URL, want: want, version: gr.o.ExpectVersion, serving: []string{cand}})
		vres = r
		gr.rep.Timings.Verify = ms(r.Elapsed)
		if cur != nil {
			gr.svc = cur
		}
		if errors.Is(err, errUnhealthy) {
			return "", fmt.Errorf("after the promotion %s is unhealthy: %s", cmp.Or(gr.o.URL, gr.svc.URI), r.Detail)
		}
		if err != nil {
			return "", err
		}
		return DescribeHealthy(r) + " on the service URL", nil
	})
	if errors.Is(verr, ErrConflict) {
		// Someone moved traffic after the promotion: theirs stands.
		gr.rep.After = &ReportState{Traffic: gr.svc.Traffic}
		rerr := gr.release(rctx)
		gr.hint = "someone else changed the traffic after the promotion; it was left as they set it: check 'runrollback status'"
		if rerr != nil {
			gr.hint = RecoverHint(ref, g.Journal, "")
			return ResultError, fmt.Errorf("%w: %w; and the lease could not be released: %w", ErrNotRestored, verr, rerr)
		}
		return ResultAborted, verr
	}
	if verr == nil {
		err := gr.step(rctx, StepTag, func(ctx context.Context) (string, error) {
			c := gr.converger()
			tagged := gr.svc.Traffic
			if gr.o.LastGoodTag != "" {
				tagged, _ = MoveTag(gr.svc, gr.o.LastGoodTag)
			}
			p, err := c.restore(ctx, func(cur *Service) plan {
				switch {
				case !HasRunAnnotations(cur.Annotations) && cur.Traffic.Equal(tagged):
					return plan{done: true}
				case cur.Traffic.Equal(want) || cur.Traffic.Equal(tagged):
					return plan{want: tagged, annotations: WithoutRunAnnotations(cur.Annotations)}
				}
				return plan{stop: fmt.Errorf("%w: the traffic of %q changed after the promotion: now %s", ErrConflict, ref.Name, cur.Traffic)}
			})
			gr.svc = c.svc
			_ = p
			if err != nil {
				return "", err
			}
			gr.leased = false
			return fmt.Sprintf("tag %s now on %s; lease released", gr.o.LastGoodTag, cand), gr.forget(ref)
		})
		gr.rep.LastGood = []string{cand}
		gr.rep.After = &ReportState{Traffic: gr.svc.Traffic, Healthy: true, Version: vres.Version, Revision: vres.Revision}
		gr.rep.TrafficRestored = true
		if err != nil {
			gr.hint = RecoverHint(ref, g.Journal, "")
			return ResultError, fmt.Errorf("%w: candidate %s serves healthy, but the lease could not be released: %w", ErrNotRestored, cand, err)
		}
		return ResultPass, nil
	}

	// Promoted, then unhealthy for users: put the prior split back.
	failure := fmt.Errorf("candidate %s was healthy on its tag URL but not for users: %s", cand, vres.Detail)
	back := before.Pinned()
	err = gr.step(rctx, StepRestore, func(ctx context.Context) (string, error) {
		c := gr.converger()
		start := gr.now()
		_, err := c.restore(ctx, func(cur *Service) plan {
			switch {
			case !HasRunAnnotations(cur.Annotations) && cur.Traffic.Equal(back):
				return plan{done: true}
			case cur.Traffic.Equal(want) || cur.Traffic.Equal(back):
				return plan{want: back, annotations: WithoutRunAnnotations(cur.Annotations)}
			}
			return plan{stop: fmt.Errorf("%w: the traffic of %q changed after the promotion: now %s", ErrConflict, ref.Name, cur.Traffic)}
		})
		gr.rep.Timings.Restore = ms(gr.now().Sub(start))
		gr.svc = c.svc
		if err != nil {
			return "", err
		}
		gr.rep.Exposure = Exposure{Percent: 100, MS: ms(gr.now().Sub(promotedAt))}
		gr.leased = false
		return "prior split back: " + back.String() + "; lease released", gr.forget(ref)
	})
	gr.rep.LastGood = before.Serving()
	gr.rep.After = &ReportState{Traffic: gr.svc.Traffic}
	gr.rep.TrafficRestored = gr.svc.Traffic.Equal(back)
	if err != nil {
		gr.hint = RecoverHint(ref, g.Journal, "")
		if errors.Is(err, ErrConflict) {
			return ResultAborted, fmt.Errorf("%v; someone else changed the service meanwhile, nothing was overwritten: %w", failure, err)
		}
		return ResultError, fmt.Errorf("%v; %w: %w", failure, ErrNotRestored, err)
	}
	gr.hint = "the promotion was undone; fix the release before deploying again"
	return ResultFail, failure
}
