package rollback

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Outcome is what a write did to the service, as far as a read can tell. Every
// command decides on it the same way: "nothing was changed" is said only when
// a read proves it.
type Outcome int

// Outcomes of a write.
const (
	// NotApplied: the service does not carry the write, and either still has
	// the etag the write was based on (a read proves nothing changed) or
	// Cloud Run refused the call itself (someone else's change may be there).
	NotApplied Outcome = iota
	// Applied: the service carries the write's change (its rollout may still
	// be in progress when the write returned an error).
	Applied
	// Unknown: neither could be proven: the read failed, or shows a change
	// that is not the write's.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case NotApplied:
		return "not applied"
	case Applied:
		return "applied"
	}
	return "unknown"
}

// refusedOnCall reports whether err is Cloud Run refusing the request itself
// (invalid, denied, a stale etag, a precondition, quota, no such resource)
// rather than an outcome it could not report: an operation still pending, an
// operation poll that failed (its NOT_FOUND or UNAUTHENTICATED is about the
// poll, not the write), a lost reply, a deadline.
func refusedOnCall(err error) bool {
	if err == nil || errors.Is(err, ErrPending) {
		return false
	}
	for _, refused := range []error{ErrInvalid, ErrPermission, ErrUnauthenticated, ErrConflict, ErrRefused, ErrNotFound, ErrQuota} {
		if errors.Is(err, refused) {
			return true
		}
	}
	return false
}

// settle decides what a write did. before is the service the write was based
// on (its etag was sent); svc and err are what the write returned; shows
// reports whether a service carries the write's change. After an error the
// service is read again: a service that shows the change means applied; one
// with the etag the write was sent with means not applied, proven; a refusal
// by Cloud Run means not applied, though someone else may have written; any
// other state is unknown. The service returned is the freshest known (nil
// when the read failed).
func settle(ctx context.Context, cloud CloudRun, ref ServiceRef, before *Service, svc *Service, err error, shows func(*Service) bool) (Outcome, *Service) {
	if err == nil {
		return Applied, svc
	}
	cur, rerr := cloud.GetService(ctx, ref)
	if rerr != nil {
		return Unknown, nil
	}
	switch {
	case shows != nil && shows(cur):
		return Applied, cur
	case before != nil && cur.Etag == before.Etag:
		return NotApplied, cur
	case refusedOnCall(err):
		return NotApplied, cur
	}
	return Unknown, cur
}

// transient reports whether a write that failed with err is worth sending
// again while the budget lasts: the API was unavailable, over quota, or the
// credentials need refreshing; an operation did not finish or failed for a
// reason of Cloud Run's own. Invalid requests, denied permissions and
// refusals in the service's current state are not.
func transient(err error) bool {
	for _, permanent := range []error{ErrInvalid, ErrPermission, ErrRefused, ErrNotReady, ErrNotFound} {
		if errors.Is(err, permanent) && !errors.Is(err, ErrPending) {
			return false
		}
	}
	return !errors.Is(err, context.Canceled)
}

// Backoff between attempts of a write that must get through (a restore):
// jittered, doubling from backoffInitial up to backoffMax, for as long as the
// budget lasts.
var (
	backoffInitial = 100 * time.Millisecond
	backoffMax     = 5 * time.Second
)

// pause waits before attempt n+1, or returns ctx's cause when the budget ends
// first.
func pause(ctx context.Context, attempt int) error {
	d := min(backoffInitial<<min(attempt, 16), backoffMax)
	d = d/2 + time.Duration(rand.Float64()*float64(d/2))
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return fmt.Errorf("the restore budget ends in %s", time.Until(dl).Round(time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
