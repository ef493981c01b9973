package rollback

import (
	"cmp"
	"context"
	"fmt"
)

// check is what the one verify path checks.
type check struct {
	// url is --url, else the service's URI.
	url string
	// want is the traffic that was written; nil skips the traffic check
	// (another writer's split stands, whatever it is).
	want Split
	// version is the version a healthy answer reports ("" = any).
	version string
	// serving lists the revisions allowed to answer; nil means those that the
	// service's traffic sends users to.
	serving []string
}

// verifyServing is the verify step of every command. It reads the service,
// waiting while a rollout is in progress; checks that the traffic is still
// what was written (another writer's change since is a conflict, with the
// difference) and that the actual split serves it; then probes until the
// service answers healthy, from the revisions it serves, with the version.
func verifyServing(ctx context.Context, cloud CloudRun, prober Prober, ref ServiceRef, c check) (*Service, ProbeResult, error) {
	cur, err := cloud.GetService(ctx, ref)
	for attempt := 0; err == nil && cur.Reconciling; attempt++ {
		if perr := pause(ctx, attempt); perr != nil {
			return cur, ProbeResult{}, fmt.Errorf("%w: %q is still rolling out generation %d: %v", ErrPending, ref.Name, cur.Generation, perr)
		}
		cur, err = cloud.GetService(ctx, ref)
	}
	if err != nil {
		return nil, ProbeResult{}, err
	}
	if c.want != nil && !SameSplit(Resolve(cur.Traffic, cur.LatestReadyRevision), Resolve(c.want, cur.LatestReadyRevision)) {
		return cur, ProbeResult{}, fmt.Errorf("%w: the traffic of %q changed after it was written: wrote %s, now %s", ErrConflict, ref.Name, c.want, cur.Traffic)
	}
	resolved := Resolve(cur.Traffic, cur.LatestReadyRevision)
	if !SameSplit(cur.ActualSplit(), resolved) {
		return cur, ProbeResult{}, fmt.Errorf("actual split %s differs from the written %s", cur.ActualSplit(), resolved)
	}
	serving := c.serving
	if serving == nil {
		serving = servingOf(resolved)
	}
	res := prober.WaitHealthy(ctx, cmp.Or(c.url, cur.URI), Expect{Version: c.version, Revisions: serving})
	if !res.OK {
		return cur, res, fmt.Errorf("%w: %s did not answer healthy from %v: %s", errUnhealthy, cmp.Or(c.url, cur.URI), serving, res.Detail)
	}
	return cur, res, nil
}

// servingOf lists the revisions a resolved split sends traffic to.
func servingOf(resolved Split) []string {
	var out []string
	for _, t := range resolved {
		if t.Percent > 0 {
			out = appendNew(out, t.Revision)
		}
	}
	return out
}
