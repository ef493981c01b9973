package rollback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// breaker is how a drill breaks, chosen once from --break: what deploy writes,
// and what detect-tag, shift and detect probe for.
type breaker interface {
	// deploy makes what the drill probes: a broken revision at 0% with the
	// drill tag, or (simulate) the tag on the serving revision.
	deploy(ctx context.Context, r *drillRun) (string, error)
	// deploySplit is the traffic deploy writes.
	deploySplit(r *drillRun) Split
	// templateSplit is the traffic written with the pre-drill template, right
	// after deploy; nil when deploy changed no template.
	templateSplit(r *drillRun) Split
	detectTag(ctx context.Context, r *drillRun) (string, error)
	// shiftSplit is the traffic the shift writes.
	shiftSplit(r *drillRun, pct int32) Split
	detect(ctx context.Context, r *drillRun) (string, error)
	// exposes reports whether the shift sends users to a broken revision.
	exposes() bool
}

func breakerFor(b Break) breaker {
	switch b.Mode {
	case BreakSimulate:
		return simulateBreak{}
	case BreakStartup:
		return startupBreak{}
	}
	return revisionBreak{}
}

// revisionBreak deploys a revision that answers broken (health, version, slow,
// flaky, or --break-image) and expects the detector to fire on its tag URL,
// then on the service URL once users are shifted to it.
type revisionBreak struct{}

func (revisionBreak) exposes() bool { return true }

func (revisionBreak) deploy(ctx context.Context, r *drillRun) (string, error) {
	svc, err := deployBroken(ctx, r)
	if err != nil {
		if errors.Is(err, ErrNotReady) {
			r.hint = "the broken revision never started, so there was nothing to detect; to drill a revision that cannot start, pass --break startup"
		}
		return "", err
	}
	r.svc = svc
	r.tagURL = tagURI(svc, r.tag)
	return fmt.Sprintf("revision %s deployed at 0%% with tag %s (%s); lease %s taken with it", r.broken, r.tag, describeBreak(r.o.Break), r.id), nil
}

func (revisionBreak) templateSplit(r *drillRun) Split { return r.brk.deploySplit(r) }

// untemplate takes the break out of the template again as soon as the broken
// revision exists, with traffic: the service's template carries the break for
// one operation only, so a deploy by someone else (which copies the template)
// is unlikely to inherit it, and the broken revision, no longer the latest,
// can be deleted at cleanup. It returns the revision Cloud Run built.
func (r *drillRun) untemplate(ctx context.Context) (string, error) {
	traffic := r.brk.templateSplit(r)
	if err := r.intend(traffic); err != nil {
		return "", err
	}
	d := r.j.Mark.undo()
	d.Traffic = traffic
	before := r.svc
	svc, err := r.d.Cloud.DeployRevision(ctx, r.o.Service, before.Etag, d)
	out, cur := settle(ctx, r.d.Cloud, r.o.Service, before, svc, err, func(s *Service) bool { return s.Template.Hash == r.snap.Template.Hash })
	if cur != nil {
		r.svc = cur
	}
	if out != Applied {
		return "", fmt.Errorf("write the pre-drill template back: %w", err)
	}
	r.own = r.svc.Etag
	if err != nil {
		r.warn(StepDeploy, fmt.Sprintf("writing the pre-drill template back reported %v, but the service shows it", err))
	}
	fresh := r.svc.LatestCreatedRevision
	r.rep.RevisionsCreated = appendNew(r.rep.RevisionsCreated, fresh)
	r.tagURL = cmp.Or(tagURI(r.svc, r.tag), r.tagURL)
	return fmt.Sprintf("the pre-drill template written back as revision %s: the template carried the break for one write; %s is no longer the latest revision", fresh, r.broken), nil
}

func (revisionBreak) deploySplit(r *drillRun) Split {
	return append(slices.Clone(r.snap.Pinned()), Target{Revision: r.broken, Tag: r.tag})
}

// deployBroken writes the template with the break, creating the broken
// revision at 0% with the drill tag (the rest of the traffic pinned).
func deployBroken(ctx context.Context, r *drillRun) (*Service, error) {
	r.rep.BrokenRevision = r.broken
	split := r.brk.deploySplit(r)
	if err := r.intend(split); err != nil {
		return nil, err
	}
	svc, err := r.leaseWith(ctx, func(etag string, ann map[string]string) (*Service, error) {
		return r.d.Cloud.DeployRevision(ctx, r.o.Service, etag, Deploy{
			Revision: r.broken, Env: r.o.Break.Env, Image: r.o.Break.Image, Traffic: split, Annotations: ann,
		})
	})
	if r.leased {
		r.rep.RevisionsCreated = appendNew(r.rep.RevisionsCreated, r.broken)
	}
	return svc, err
}

func (revisionBreak) detectTag(ctx context.Context, r *drillRun) (string, error) {
	res := r.d.Probe.WaitFailure(ctx, r.tagURL, Expect{Version: r.expectVersion()})
	r.rep.Timings.DetectTag = ms(res.Elapsed)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if !res.OK {
		r.hint = "make the app honour RUNROLLBACK_BREAK (see docs/drill.md, 'Make your app drillable'), or pass --break-image with an image that fails its health check"
		if r.o.Break.Mode == BreakVersion && r.expectVersion() == "" {
			r.hint = "pass --expect-version: the service serves several revisions, so the drill cannot tell which version is right"
		}
		return "", failed(fmt.Sprintf("the broken revision answered healthy on its tag URL after %d probes (%s): the app ignored the break, or the probe is blind", res.Attempts, res.Detail))
	}
	return fmt.Sprintf("detector fired on the tag URL after %d probe(s) in %s: %s", res.Attempts, res.Elapsed.Round(time.Millisecond), res.Detail), nil
}

func (revisionBreak) shiftSplit(r *drillRun, pct int32) Split {
	return ShiftTo(r.snap.Pinned(), r.broken, r.tag, pct)
}

func (revisionBreak) detect(ctx context.Context, r *drillRun) (string, error) {
	pct := r.o.TrafficPercent
	res := r.d.Probe.WaitFailure(ctx, r.baseURL, Expect{Version: r.expectVersion()})
	r.rep.Timings.Detect = ms(r.now().Sub(r.shiftAt))
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if !res.OK {
		r.hint = "raise --traffic-percent or --retries so the probe meets the broken revision"
		return "", failed(fmt.Sprintf("after sending %d%% to the broken revision, the service URL answered healthy %d times (%s): users would not be protected", pct, res.Attempts, res.Detail))
	}
	return fmt.Sprintf("failure seen on the service URL %s after the shift: %s", time.Duration(r.rep.Timings.Detect)*time.Millisecond, res.Detail), nil
}

// startupBreak deploys a revision that never starts: Cloud Run must refuse it
// and leave the split untouched; there is nothing to probe after that.
type startupBreak struct{ revisionBreak }

func (startupBreak) deploy(ctx context.Context, r *drillRun) (string, error) {
	svc, err := deployBroken(ctx, r)
	if err == nil {
		r.svc = svc
		r.hint = "the app must refuse to start when RUNROLLBACK_BREAK=startup (exit non-zero before listening), or use --break-image with an image that cannot start"
		return "", failed(fmt.Sprintf("Cloud Run accepted revision %s, which should never start (--break startup)", r.broken))
	}
	if !errors.Is(err, ErrNotReady) {
		return "", err
	}
	cur, rerr := r.d.Cloud.GetService(ctx, r.o.Service)
	if rerr != nil {
		return "", rerr
	}
	r.svc = cur
	if !SameSplit(cur.ActualSplit(), r.snap.Actual) {
		return "", failed(fmt.Sprintf("the split moved although revision %s never became ready: actual %s, before %s", r.broken, cur.ActualSplit(), r.snap.Actual))
	}
	r.skipWhy = "the revision never started"
	return fmt.Sprintf("Cloud Run refused revision %s as expected; the split never moved (%s)", r.broken, cur.ActualSplit()), nil
}

// templateSplit: the template carries the break although the revision never
// started; it is written back with traffic that no longer names the broken
// revision (Cloud Run refuses any write whose traffic names it).
func (startupBreak) templateSplit(r *drillRun) Split { return r.snap.Pinned() }

// simulateBreak deploys nothing: it tags the serving revision and runs every
// later step with a synthetic failure, so permissions, API writes and timings
// are exercised with no user impact.
type simulateBreak struct{}

func (simulateBreak) exposes() bool { return false }

func (simulateBreak) deploySplit(r *drillRun) Split {
	return append(slices.Clone(r.snap.Pinned()), Target{Revision: r.servingRevision(), Tag: r.tag})
}

func (simulateBreak) templateSplit(*drillRun) Split { return nil }

func (simulateBreak) deploy(ctx context.Context, r *drillRun) (string, error) {
	serving := r.servingRevision()
	split := r.brk.deploySplit(r)
	if err := r.intend(split); err != nil {
		return "", err
	}
	svc, err := r.leaseWith(ctx, func(etag string, ann map[string]string) (*Service, error) {
		return r.d.Cloud.UpdateTrafficAnnotated(ctx, r.o.Service, etag, split, ann)
	})
	if err != nil {
		return "", err
	}
	r.svc = svc
	r.tagURL = tagURI(svc, r.tag)
	return fmt.Sprintf("simulate: tagged serving revision %s as %s (nothing deployed; lease %s taken with it)", serving, r.tag, r.id), nil
}

func (simulateBreak) detectTag(ctx context.Context, r *drillRun) (string, error) {
	res := r.d.Probe.WaitHealthy(ctx, r.tagURL, Expect{})
	if !res.OK {
		return "", fmt.Errorf("the tag URL %s of the serving revision did not answer healthy: %s", r.tagURL, res.Detail)
	}
	return fmt.Sprintf("simulate: tag URL answered (%s); synthetic failure detected", res.Detail), nil
}

func (simulateBreak) shiftSplit(r *drillRun, pct int32) Split {
	return shiftWithin(r.snap.Pinned(), r.servingRevision(), r.tag, pct)
}

func (simulateBreak) detect(ctx context.Context, r *drillRun) (string, error) {
	res := r.d.Probe.WaitHealthy(ctx, r.baseURL, Expect{})
	r.rep.Timings.Detect = ms(res.Elapsed)
	return fmt.Sprintf("simulate: service URL answered (%s); synthetic failure detected", res.Detail), nil
}
