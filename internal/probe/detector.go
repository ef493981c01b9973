package probe

import (
	"fmt"
	"math"
)

// Defaults of the detector's rule and of the attempts a wait keeps in flight.
// With them a target that fails half of its answers is judged healthy with
// probability 0.59%, and one that fails 1% of them is judged broken with
// probability 0.52% (Rule.PassProbability; BENCHMARKS.md measures both).
const (
	DefaultSuccesses = 10
	DefaultFailures  = 2
	DefaultParallel  = 4
)

// Evidence is what one attempt says about the target.
type Evidence int8

const (
	// NoEvidence: the attempt proves nothing about the app (no connection,
	// refused, DNS, TLS, token, an answer from a revision outside
	// Expect.Revisions). The target is not settled yet: the wait pauses and
	// retries.
	NoEvidence Evidence = iota
	// Good: a healthy answer (Healthy or Warn).
	Good
	// Bad: an answer that proves failure (Attempt.ProvesFailure): Unhealthy,
	// WrongVersion, or a timeout after connecting.
	Bad
)

// Evidence classifies the attempt for the detector.
func (a Attempt) Evidence() Evidence {
	switch {
	case a.ProvesFailure():
		return Bad
	case a.OK():
		return Good
	}
	return NoEvidence
}

// Rule is the detector's m-of-n test over answers that are evidence (Good or
// Bad), in the order the attempts were started: among the last
// Successes+Failures-1 of them (the window), Failures Bad answers make the
// verdict broken and Successes Good ones make it healthy. The window is just
// long enough that once it is full one of the two holds, so a wait that stops
// at its first verdict needs at most Successes+Failures-1 answers; Failures
// Bad answers in a row are always a broken verdict.
//
// It is a sequential test: it stops as soon as the evidence suffices, after
// Failures answers when every one fails and after Successes answers when
// none does. Rule.PassProbability gives its error rates for a target whose
// answers fail independently with a given probability.
type Rule struct {
	// Successes is the Good answers in the window that make a healthy
	// verdict; 0 or less means DefaultSuccesses.
	Successes int
	// Failures is the Bad answers in the window that make a broken verdict;
	// 0 or less means DefaultFailures.
	Failures int
}

func (r Rule) withDefaults() Rule {
	if r.Successes <= 0 {
		r.Successes = DefaultSuccesses
	}
	if r.Failures <= 0 {
		r.Failures = DefaultFailures
	}
	return r
}

// Window is the number of most recent answers the rule looks at:
// Successes+Failures-1.
func (r Rule) Window() int {
	r = r.withDefaults()
	return r.Successes + r.Failures - 1
}

// PassProbability is the probability that the rule, fed answers from the
// start, reaches a healthy verdict before a broken one when each answer fails
// independently with probability pFail: that fewer than Failures answers fail
// before the Successes-th good one,
//
//	sum over f < Failures of C(Successes-1+f, f) (1-pFail)^Successes pFail^f.
//
// 1-PassProbability(p) is the chance of catching a target that fails a
// fraction p of its answers; PassProbability(p) for a small p is the chance
// of not raising a false alarm.
func (r Rule) PassProbability(pFail float64) float64 {
	r = r.withDefaults()
	pFail = min(max(pFail, 0), 1)
	k, m := r.Successes, r.Failures
	sum := 0.0
	for f := range m {
		sum += binomial(k-1+f, f) * math.Pow(1-pFail, float64(k)) * math.Pow(pFail, float64(f))
	}
	return min(sum, 1)
}

func binomial(n, k int) float64 {
	c := 1.0
	for i := 1; i <= k; i++ {
		c = c * float64(n-k+i) / float64(i)
	}
	return c
}

// String is "2 failing or 10 good of the last 11".
func (r Rule) String() string {
	r = r.withDefaults()
	return fmt.Sprintf("%d failing or %d good of the last %d", r.Failures, r.Successes, r.Window())
}

// Decision is a detector's verdict so far.
type Decision int8

const (
	// Undecided: the window holds too few answers to say.
	Undecided Decision = iota
	// JudgedHealthy: Successes Good answers in the window.
	JudgedHealthy
	// JudgedBroken: Failures Bad answers in the window.
	JudgedBroken
)

func (d Decision) String() string {
	switch d {
	case JudgedHealthy:
		return "healthy"
	case JudgedBroken:
		return "broken"
	}
	return "undecided"
}

// Detector applies a Rule to answers fed one at a time, sliding its window.
// The zero value is not usable; use NewDetector.
type Detector struct {
	rule      Rule
	ring      []bool // the window, oldest first from head: true = Bad
	head, len int
	good, bad int // in the window
}

// NewDetector returns a detector with an empty window.
func NewDetector(r Rule) *Detector {
	r = r.withDefaults()
	return &Detector{rule: r, ring: make([]bool, r.Window())}
}

// Add feeds one answer that is evidence and returns the decision over the
// window now. NoEvidence answers change nothing.
func (d *Detector) Add(e Evidence) Decision {
	if e == NoEvidence {
		return d.Decision()
	}
	bad := e == Bad
	if d.len == len(d.ring) { // drop the oldest
		if d.ring[d.head] {
			d.bad--
		} else {
			d.good--
		}
		d.ring[d.head] = bad
		d.head = (d.head + 1) % len(d.ring)
	} else {
		d.ring[(d.head+d.len)%len(d.ring)] = bad
		d.len++
	}
	if bad {
		d.bad++
	} else {
		d.good++
	}
	return d.Decision()
}

// Decision is the verdict over the window: broken when Failures of its
// answers are Bad, healthy when Successes are Good (both cannot hold at once),
// undecided otherwise.
func (d *Detector) Decision() Decision {
	switch {
	case d.bad >= d.rule.Failures:
		return JudgedBroken
	case d.good >= d.rule.Successes:
		return JudgedHealthy
	}
	return Undecided
}

// Counts returns the Good and Bad answers in the window.
func (d *Detector) Counts() (good, bad int) { return d.good, d.bad }
