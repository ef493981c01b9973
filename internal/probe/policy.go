package probe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// MaxStoredAttempts is the most attempts a Verdict keeps in Attempts; the
// counters and Last cover every attempt.
const MaxStoredAttempts = 1000

// Policy says how often to probe and when to give up. The zero value makes one
// attempt that must be OK.
type Policy struct {
	// Retries is the number of attempts after the first; negative counts as 0.
	Retries int
	// RetryDelay is the base delay between attempts; 0 retries at once. The
	// delay after k consecutive answers that are not OK is
	// RetryDelay*2^(k-1), capped at MaxDelay, times a jitter factor in
	// [0.8, 1.2], and never more than MaxDelay. After an OK answer it is
	// RetryDelay (with jitter) again.
	RetryDelay time.Duration
	// MaxDelay caps the delay. Default 10*RetryDelay, but at most 30s and
	// at least RetryDelay.
	MaxDelay time.Duration
	// Successes is the number of consecutive OK answers WaitHealthy needs.
	// Default 1.
	Successes int
	// Failures, when positive, ends WaitHealthy early after that many
	// consecutive answers that prove failure (Attempt.ProvesFailure: unhealthy,
	// wrong version, a timeout after connecting). Answers that prove nothing
	// (refused, DNS, not converged) never count. 0 uses every attempt.
	Failures int
	// Deadline bounds the whole wait; 0 means only ctx bounds it. A wait
	// stops early, rather than sleep past the deadline of ctx or Deadline.
	Deadline time.Duration
	// Sleep waits d or until ctx is done, returning context.Cause(ctx) then.
	// Default: a timer and a select on ctx.Done().
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns the jitter source in [0, 1). Default math/rand/v2.Float64.
	Rand func() float64
}

// Verdict sums up a wait.
type Verdict struct {
	// Healthy is true when Successes consecutive OK answers were seen (for
	// WaitFailure: at the end of the wait).
	Healthy bool
	// Detected is true when WaitFailure saw an answer that proves failure
	// (Attempt.ProvesFailure). Always false for WaitHealthy.
	Detected bool
	// Attempts holds the first MaxStoredAttempts attempts.
	Attempts []Attempt
	// Last is the last attempt made.
	Last Attempt
	// Total counts every attempt.
	Total int
	// Errors counts ProbeError attempts.
	Errors int
	// Unhealthy counts Unhealthy and WrongVersion attempts.
	Unhealthy int
	// NotConverged counts WrongRevision attempts.
	NotConverged int
	// Warnings counts Warn attempts.
	Warnings int
	// Elapsed is the time from the start to the end of the wait, by
	// Checker.Now.
	Elapsed time.Duration
	// Err is set when ctx or Deadline ended the wait before it had an
	// answer: context.Cause of the context that ended it.
	Err error
}

func (v *Verdict) record(a Attempt) {
	if len(v.Attempts) < MaxStoredAttempts {
		v.Attempts = append(v.Attempts, a)
	}
	v.Last = a
	v.Total++
	switch a.Outcome {
	case ProbeError:
		v.Errors++
	case Unhealthy, WrongVersion:
		v.Unhealthy++
	case WrongRevision:
		v.NotConverged++
	case Warn:
		v.Warnings++
	}
}

// WaitHealthy probes baseURL until Successes consecutive answers are OK
// (Verdict.Healthy) or attempts, Deadline or ctx run out. Any answer that is
// not OK resets the count. It stops as soon as the remaining attempts could
// no longer make up the count.
func (c *Checker) WaitHealthy(ctx context.Context, baseURL string, exp Expect, p Policy) Verdict {
	return c.wait(ctx, baseURL, exp, p, false)
}

// WaitFailure probes baseURL until an answer proves the service broken
// (Attempt.ProvesFailure: Unhealthy, WrongVersion or a timeout after
// connecting), which sets Verdict.Detected, or until attempts, Deadline or ctx
// run out. Refused connections, DNS and TLS errors and WrongRevision answers
// (traffic not there yet) do not count as detection. When nothing was
// detected, Verdict.Healthy says whether the last Successes answers were OK:
// the broken thing answered healthy.
func (c *Checker) WaitFailure(ctx context.Context, baseURL string, exp Expect, p Policy) Verdict {
	return c.wait(ctx, baseURL, exp, p, true)
}

func (c *Checker) wait(ctx context.Context, baseURL string, exp Expect, p Policy, detect bool) Verdict {
	start := c.now()
	p = p.withDefaults()
	if p.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.Deadline,
			fmt.Errorf("probe deadline of %s reached: %w", p.Deadline, context.DeadlineExceeded))
		defer cancel()
	}
	var v Verdict
	streak, notOK := 0, 0 // consecutive OK answers; consecutive others
	proven := 0           // consecutive answers that prove failure
	attempts := p.Retries + 1
	for i := range attempts {
		if i > 0 {
			d := p.delay(notOK)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				v.Err = fmt.Errorf("next attempt (in %s) would start after the deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
				break
			}
			if d > 0 {
				if err := p.Sleep(ctx, d); err != nil {
					v.Err = err
					break
				}
			}
		}
		if ctx.Err() != nil {
			v.Err = context.Cause(ctx)
			break
		}
		a := c.Check(ctx, baseURL, exp)
		v.record(a)
		if ctx.Err() != nil { // the attempt was cut short by ctx, not by the service
			v.Err = context.Cause(ctx)
			break
		}
		if a.OK() {
			streak, notOK = streak+1, 0
		} else {
			streak, notOK = 0, notOK+1
		}
		if a.ProvesFailure() {
			proven++
		} else {
			proven = 0
		}
		if detect {
			if a.ProvesFailure() {
				v.Detected = true
				break
			}
			continue
		}
		if streak >= p.Successes {
			v.Healthy = true
			break
		}
		if p.Failures > 0 && proven >= p.Failures {
			break // broken, not merely starting: no need to wait out the retries
		}
		if left := attempts - i - 1; left < p.Successes-streak {
			break
		}
	}
	if detect && !v.Detected {
		v.Healthy = streak >= p.Successes
	}
	v.Elapsed = c.now().Sub(start)
	return v
}

func (p Policy) withDefaults() Policy {
	p.Retries = max(p.Retries, 0)
	p.Successes = max(p.Successes, 1)
	p.RetryDelay = max(p.RetryDelay, 0)
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
		if p.RetryDelay < p.MaxDelay/10 {
			p.MaxDelay = 10 * p.RetryDelay
		}
		p.MaxDelay = max(p.MaxDelay, p.RetryDelay)
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

// delay returns the pause before the next attempt, after notOK consecutive
// answers that were not OK.
func (p Policy) delay(notOK int) time.Duration {
	if p.RetryDelay <= 0 {
		return 0
	}
	d := min(p.RetryDelay, p.MaxDelay)
	for range max(notOK-1, 0) {
		if d >= p.MaxDelay/2 {
			d = p.MaxDelay
			break
		}
		d *= 2
	}
	r := p.Rand()
	if r < 0 || r > 1 || math.IsNaN(r) {
		r = 0.5
	}
	f := float64(d) * (0.8 + 0.4*r)
	if f >= float64(p.MaxDelay) {
		return p.MaxDelay
	}
	return time.Duration(f)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
