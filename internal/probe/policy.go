package probe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// MaxStoredAttempts is the most attempts a Verdict keeps in Attempts; the
// counters and Last cover every attempt.
const MaxStoredAttempts = 1000

// Policy says how a wait gathers evidence and when it gives up. The zero value
// uses the default Rule (10 good of the last 11 answers healthy, 2 failing
// broken), DefaultParallel attempts in flight, one attempt that proves nothing
// and no pause.
type Policy struct {
	// Successes and Failures are the detector's Rule: Successes good
	// answers among the last Successes+Failures-1 answers that are evidence
	// make the target healthy; Failures failing ones make it broken. 0 means
	// the default (DefaultSuccesses, DefaultFailures).
	Successes int
	Failures  int
	// Retries is how many times a wait retries after an attempt that proved
	// nothing (no connection, refused, DNS, TLS, token, an answer from a
	// revision outside Expect.Revisions): the Retries+1-th such attempt
	// ends the wait undecided. Attempts started together count once: those
	// in flight when one proves nothing are not retries of it. Answers
	// that are evidence never use it up. Negative counts as 0.
	Retries int
	// RetryDelay is the pause before retrying after an attempt that proved
	// nothing; 0 retries at once. After k such attempts in a row it is
	// RetryDelay*2^(k-1), capped at MaxDelay, times a jitter factor in
	// [0.8, 1.2], and never more than MaxDelay. Answers that are evidence
	// (healthy or failing) are followed by no pause at all: the target
	// answers, so more answers are taken at once.
	RetryDelay time.Duration
	// MaxDelay caps the delay. Default 10*RetryDelay, but at most 30s and
	// at least RetryDelay.
	MaxDelay time.Duration
	// Parallel is the most attempts in flight while the target answers with
	// evidence; after an attempt that proved nothing, attempts go one at a
	// time until one is evidence again. Default DefaultParallel; 1 probes
	// one attempt at a time.
	Parallel int
	// Deadline bounds the whole wait; 0 means only ctx bounds it. A wait
	// stops early, rather than sleep past the deadline of ctx or Deadline.
	Deadline time.Duration
	// Sleep waits d or until ctx is done, returning context.Cause(ctx) then.
	// Default: a timer and a select on ctx.Done().
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns the jitter source in [0, 1). Default math/rand/v2.Float64.
	Rand func() float64
	// OnAttempt, when set, is told of each attempt as the wait uses it, in
	// starting order (for progress output); n counts from 1.
	OnAttempt func(n int, a Attempt)
}

// Rule is the detector rule the policy applies.
func (p Policy) Rule() Rule { return Rule{Successes: p.Successes, Failures: p.Failures}.withDefaults() }

// Verdict sums up a wait.
type Verdict struct {
	// Healthy is true when the detector judged the target healthy (for
	// WaitFailure: its window at the end of the wait).
	Healthy bool
	// Detected is true when WaitFailure's detector judged the target broken.
	// Always false for WaitHealthy.
	Detected bool
	// Decision is the detector's decision when the wait ended.
	Decision Decision
	// Good and Bad count the healthy and failing answers in the detector's
	// window when the wait ended.
	Good, Bad int
	// Inconclusive counts the attempts used that proved nothing.
	Inconclusive int
	// Attempts holds the first MaxStoredAttempts attempts used, in the
	// order they were started.
	Attempts []Attempt
	// Last is the last attempt used: for a decided wait, the answer that
	// decided it.
	Last Attempt
	// Total counts every attempt used. Attempts still in flight when the
	// verdict was reached are cancelled and not counted.
	Total int
	// Errors counts ProbeError attempts.
	Errors int
	// Unhealthy counts Unhealthy and WrongVersion attempts.
	Unhealthy int
	// NotConverged counts WrongRevision attempts.
	NotConverged int
	// Warnings counts Warn attempts.
	Warnings int
	// Elapsed is the time from the start of the wait to its verdict, by
	// Checker.Now.
	Elapsed time.Duration
	// Err is set when ctx or Deadline ended the wait before it had a
	// verdict: context.Cause of the context that ended it.
	Err error
}

// Summary is one line on how the wait ended, e.g. "broken: 2 of the last 2
// answers failed (rule: 2 failing or 10 good of the last 11)".
func (v Verdict) Summary(r Rule) string {
	r = r.withDefaults()
	n := v.Good + v.Bad
	switch {
	case v.Decision == JudgedBroken:
		return fmt.Sprintf("broken: %d of the last %d answers failed (rule: %s)", v.Bad, n, r)
	case v.Decision == JudgedHealthy:
		return fmt.Sprintf("healthy: %d of the last %d answers good (rule: %s)", v.Good, n, r)
	case v.Err != nil:
		return fmt.Sprintf("undecided when the wait was cut short: %d good, %d failing, %d attempts proved nothing (rule: %s)", v.Good, v.Bad, v.Inconclusive, r)
	}
	return fmt.Sprintf("undecided: %d good, %d failing, %d attempts proved nothing (rule: %s)", v.Good, v.Bad, v.Inconclusive, r)
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

// WaitHealthy probes baseURL until the detector reaches a verdict: healthy
// (Verdict.Healthy) or broken. It stops undecided when Retries+1 attempts
// proved nothing, or Deadline or ctx ends. It never needs more than
// Successes+Failures-1 answers that are evidence.
func (c *Checker) WaitHealthy(ctx context.Context, baseURL string, exp Expect, p Policy) Verdict {
	return p.wait(ctx, c.now, false, func(ctx context.Context, _ int) Attempt { return c.Check(ctx, baseURL, exp) })
}

// WaitFailure probes baseURL until the detector judges it broken
// (Verdict.Detected). Unlike WaitHealthy it does not stop at a healthy
// verdict: the window slides on, for at most (Retries+1)*(Successes+Failures-1)
// answers that are evidence, so a failure that only part of the answers show
// (a partial traffic shift) is still met. It also stops when Retries+1
// attempts proved nothing, or Deadline or ctx ends. When nothing was
// detected, Verdict.Healthy says whether the window ended healthy: the broken
// thing answered healthy.
func (c *Checker) WaitFailure(ctx context.Context, baseURL string, exp Expect, p Policy) Verdict {
	return p.wait(ctx, c.now, true, func(ctx context.Context, _ int) Attempt { return c.Check(ctx, baseURL, exp) })
}

// flight is one attempt started.
type flight struct {
	i    int // number in starting order
	done chan struct{}
	a    Attempt
}

// wait runs the detector over attempts made by try (i is the attempt's number
// in starting order). Attempts are used in the order they were started,
// whatever order they end in, so a slow answer (a hang ending at its timeout)
// weighs exactly as it would one attempt at a time: quick good answers cannot
// overtake it.
func (p Policy) wait(ctx context.Context, now func() time.Time, detect bool, try func(ctx context.Context, i int) Attempt) Verdict {
	start := now()
	p = p.withDefaults()
	if p.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.Deadline,
			fmt.Errorf("probe deadline of %s reached: %w", p.Deadline, context.DeadlineExceeded))
		defer cancel()
	}
	// Attempts still in flight at the verdict are cancelled, and waited for
	// before returning: a wait leaves nothing running.
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()

	rule := p.Rule()
	det := NewDetector(rule)
	budget := rule.Window() // evidence answers a wait may use
	if detect {
		budget *= p.Retries + 1
	}
	var (
		v            Verdict
		queue        []*flight // started, not yet used, in starting order
		started      int
		evidence     int // answers used that were evidence
		nothing, run int // attempts that proved nothing: in all, in a row
		retryFrom    int // attempts started from here on retry the last that proved nothing
		ended        bool
	)
	launch := func() {
		i := started
		f := &flight{i: i, done: make(chan struct{})}
		started++
		queue = append(queue, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.a = try(actx, i)
			close(f.done)
		}()
	}
	for !ended {
		// Start what may still matter: while the target answers with
		// evidence, up to Parallel at once (never more than the answers the
		// budget has left); after an attempt that proved nothing, one at a
		// time, after a pause.
		limit := p.Parallel
		if run > 0 {
			limit = 1
		}
		if len(queue) == 0 && run > 0 {
			d := p.delay(run)
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
		if ctx.Err() != nil && len(queue) == 0 {
			v.Err = context.Cause(ctx)
			break
		}
		for len(queue) < limit && evidence+len(queue) < budget && ctx.Err() == nil {
			launch()
		}
		f := queue[0]
		queue = queue[1:]
		<-f.done
		a := f.a
		v.record(a)
		if p.OnAttempt != nil {
			p.OnAttempt(v.Total, a)
		}
		if ctx.Err() != nil { // the attempt was cut short by ctx, not by the service
			v.Err = context.Cause(ctx)
			break
		}
		switch e := a.Evidence(); e {
		case NoEvidence:
			v.Inconclusive++
			// Attempts started together, before this one came back, are
			// not retries of it: a round of them counts once.
			if f.i < retryFrom {
				continue
			}
			nothing, run, retryFrom = nothing+1, run+1, started
			if nothing > p.Retries {
				ended = true // gave up: the target never answered with evidence
			}
		default:
			run = 0
			evidence++
			switch det.Add(e) {
			case JudgedBroken:
				ended = true
			case JudgedHealthy:
				ended = !detect
			}
			ended = ended || evidence >= budget
		}
	}
	end := now()
	v.Decision = det.Decision()
	v.Good, v.Bad = det.Counts()
	v.Healthy = v.Decision == JudgedHealthy
	v.Detected = detect && v.Decision == JudgedBroken
	v.Elapsed = end.Sub(start)
	return v
}

func (p Policy) withDefaults() Policy {
	r := p.Rule()
	p.Successes, p.Failures = r.Successes, r.Failures
	p.Retries = max(p.Retries, 0)
	p.RetryDelay = max(p.RetryDelay, 0)
	if p.Parallel <= 0 {
		p.Parallel = DefaultParallel
	}
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

// delay returns the pause before the next attempt, after run attempts in a
// row that proved nothing.
func (p Policy) delay(run int) time.Duration {
	if p.RetryDelay <= 0 {
		return 0
	}
	d := min(p.RetryDelay, p.MaxDelay)
	for range max(run-1, 0) {
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
