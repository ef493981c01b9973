package rollback

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// manualClock is a clock that moves only when the test says: Advance fires
// the timers that come due, in order, on the test's goroutine.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// next is when the earliest live timer fires (false when none is armed).
func (c *manualClock) next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	ok := false
	for _, t := range c.timers {
		if !t.stopped && (!ok || t.at.Before(at)) {
			at, ok = t.at, true
		}
	}
	return at, ok
}

// Advance moves the clock by d, firing every timer due by then.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		at, ok := c.next()
		if !ok || at.After(end) {
			break
		}
		c.mu.Lock()
		c.now = at
		var due *manualTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(at) {
				due = t
				break
			}
		}
		due.stopped = true
		c.mu.Unlock()
		due.f()
	}
	c.mu.Lock()
	c.now = end
	c.mu.Unlock()
}

func manualLimiter(perMinute int) (*WriteLimiter, *manualClock) {
	c := newManualClock()
	l := NewWriteLimiter(perMinute)
	l.clock = c
	return l, c
}

// waiting is how many writes and reservations wait for a slot.
func (l *WriteLimiter) waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.urgent) + len(l.normal)
}

// until waits, yielding, for cond to hold: a goroutine started by the test
// reaching the limiter. It fails the test rather than hang.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// background runs Wait (or, with reserve, Reserve) in a goroutine, and waits
// until it has either returned or queued.
func background(t *testing.T, l *WriteLimiter, ctx context.Context, reserve bool) <-chan *Ticket {
	t.Helper()
	done := make(chan *Ticket, 1)
	before := l.waiting()
	ret := make(chan struct{})
	go func() {
		var tk *Ticket
		var err error
		if reserve {
			tk, err = l.Reserve(ctx)
		} else {
			err = l.Wait(ctx)
		}
		if err == nil {
			done <- tk
		} else {
			close(done)
		}
		close(ret) // after the result: a caller that saw ret can read it at once
	}()
	until(t, "the call to return or queue", func() bool {
		select {
		case <-ret:
			return true
		default:
			return l.waiting() > before
		}
	})
	return done
}

// mustGet fails the test unless the call behind ch returns nil soon: it was
// granted (the limiter hands the slot over synchronously; the goroutine
// still has to report it).
func mustGet[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("%s: returned an error", what)
		}
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting", what)
	}
	var zero T
	return zero
}

// granted reports, without waiting, whether the call behind ch returned nil.
// Use it on calls that background saw queue, or return.
func granted[T any](ch <-chan T) bool {
	select {
	case _, ok := <-ch:
		return ok
	default:
		return false
	}
}

func TestWriteLimiterSlidingWindow(t *testing.T) {
	l, c := manualLimiter(3)
	for i := range 3 {
		if !granted(background(t, l, t.Context(), false)) {
			t.Fatalf("write %d of 3 in the first minute waited", i+1)
		}
	}
	c.Advance(20 * time.Second)
	fourth := background(t, l, t.Context(), false)
	c.Advance(l.window - 20*time.Second - time.Millisecond)
	if granted(fourth) {
		t.Fatalf("a 4th write went %v after the first 3: 4 in one minute", c.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	}
	c.Advance(time.Millisecond) // the first three leave the window together
	mustGet(t, fourth, "the 4th write, once the first left the window")
	for i := range 2 {
		if !granted(background(t, l, t.Context(), false)) {
			t.Fatalf("write %d of the second minute waited: all 3 slots should be free again", i+5)
		}
	}
}

// TestWriteLimiterExactlyNPerMinute: writers that always want to write get
// perMinute writes in every window (a minute and the margin), never more in
// any minute (the token bucket this replaces gave 5/6 of it).
func TestWriteLimiterExactlyNPerMinute(t *testing.T) {
	for _, n := range []int{1, 7, 60} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l, c := manualLimiter(n)
			start := c.Now()
			var at []time.Duration
			for c.Now().Sub(start) < 5*l.window {
				w := background(t, l, t.Context(), false)
				if !granted(w) {
					next, ok := c.next()
					if !ok {
						t.Fatal("a write waits and no timer is armed")
					}
					c.Advance(next.Sub(c.Now()))
					mustGet(t, w, "the write, when the timer fired")
				}
				at = append(at, c.Now().Sub(start))
			}
			if got := maxIn(at, time.Minute); got != n {
				t.Errorf("at most %d writes in any minute, want exactly %d", got, n)
			}
			if got := maxIn(at, l.window); got != n {
				t.Errorf("at most %d writes in any window of %v, want exactly %d", got, l.window, n)
			}
			// 5 windows of demand: 5n writes, and the (5n+1)-th at the
			// start of the sixth.
			if len(at) != 5*n+1 || at[len(at)-1] != 5*l.window {
				t.Errorf("%d writes in 5 windows (the last at %v), want %d, the last at %v", len(at), at[len(at)-1], 5*n+1, 5*l.window)
			}
		})
	}
}

// maxIn is the most times in any window of length d (times sorted).
func maxIn(at []time.Duration, d time.Duration) int {
	best, lo := 0, 0
	for hi := range at {
		for at[hi]-at[lo] >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func TestWriteLimiterUrgentFirst(t *testing.T) {
	l, c := manualLimiter(1)
	if !granted(background(t, l, t.Context(), false)) {
		t.Fatal("the first write waited")
	}
	shift1 := background(t, l, t.Context(), false)
	shift2 := background(t, l, t.Context(), false)
	restore := background(t, l, Urgent(t.Context()), false)
	c.Advance(l.window)
	mustGet(t, restore, "the restore, first after a minute")
	if granted(shift1) || granted(shift2) || l.waiting() != 2 {
		t.Fatal("after a minute the restore should go alone")
	}
	c.Advance(l.window)
	mustGet(t, shift1, "shift-1, next")
	if granted(shift2) {
		t.Fatal("shift-2 went with shift-1")
	}
}

func TestWriteLimiterCancelledWaiterLeaves(t *testing.T) {
	l, c := manualLimiter(1)
	_ = l.Wait(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	w := background(t, l, ctx, false)
	cancel()
	until(t, "the cancelled waiter to leave", func() bool { return l.waiting() == 0 })
	if _, ok := <-w; ok {
		t.Fatal("a cancelled Wait returned nil")
	}
	next := background(t, l, t.Context(), false)
	c.Advance(l.window)
	mustGet(t, next, "the next write, on the slot the cancelled waiter left")
}

// TestTicketSpendsWithoutWaiting: a reserved write goes at once, even when
// the quota is otherwise used up, and the window still never holds more than
// the quota.
func TestTicketSpendsWithoutWaiting(t *testing.T) {
	l, c := manualLimiter(3)
	tk, err := l.Reserve(t.Context())
	if err != nil || tk == nil {
		t.Fatalf("Reserve() = %v, %v", tk, err)
	}
	for range 2 {
		if !granted(background(t, l, t.Context(), false)) {
			t.Fatal("a write waited with 2 slots free")
		}
	}
	third := background(t, l, t.Context(), false)
	if granted(third) {
		t.Fatal("a third write went while the ticket holds the last slot")
	}
	c.Advance(30 * time.Second)
	restore := background(t, l, WithTicket(Urgent(t.Context()), tk), false)
	if !granted(restore) {
		t.Fatal("the write carrying the ticket waited")
	}
	if !tk.Spent() {
		t.Error("the ticket is not spent after its write")
	}
	// The ticket is spent: a second write on the same context waits.
	again := background(t, l, WithTicket(t.Context(), tk), false)
	if granted(again) {
		t.Fatal("a spent ticket let a second write through")
	}
	tk.Release()                         // a no-op after the spend
	c.Advance(l.window - 30*time.Second) // the first two leave the window: two slots
	mustGet(t, third, "the third write, when the first two left the window")
	mustGet(t, again, "the write after the spend")
}

func TestTicketReleaseGivesTheSlotBack(t *testing.T) {
	l, _ := manualLimiter(2)
	tk, _ := l.Reserve(t.Context())
	_ = l.Wait(t.Context())
	w := background(t, l, t.Context(), false)
	if granted(w) {
		t.Fatal("a write went with the slots used")
	}
	tk.Release()
	mustGet(t, w, "the write, on the released slot")
	tk.Release() // twice: nothing more
	if l.reserved != 0 || len(l.recent) != 2 {
		t.Errorf("reserved %d, writes %d; want 0 and 2", l.reserved, len(l.recent))
	}
}

// TestTicketsNeverHoldEverySlot: tickets hold at most perMinute-1 slots, so a
// drill holding one can always make its shift; a write passes a reservation
// that must wait.
func TestTicketsNeverHoldEverySlot(t *testing.T) {
	l, c := manualLimiter(3)
	a, _ := l.Reserve(t.Context())
	b, _ := l.Reserve(t.Context())
	third := background(t, l, t.Context(), true)
	if granted(third) {
		t.Fatal("a third ticket was granted: tickets would hold every slot")
	}
	if !granted(background(t, l, t.Context(), false)) {
		t.Fatal("a write waited behind a reservation that cannot be granted")
	}
	_ = a.spend()
	if granted(third) {
		t.Fatal("the third ticket was granted with no slot free")
	}
	c.Advance(l.window)
	mustGet(t, third, "the third reservation, once a write left the window")
	b.Release()

	one := NewWriteLimiter(1)
	if tk, err := one.Reserve(t.Context()); tk != nil || err != nil {
		t.Errorf("Reserve on a quota of 1 = %v, %v; want nil, nil (nothing to reserve)", tk, err)
	}
}

// TestWriteLimiterQuotaHoldsUnderAnyMix drives random writes, reservations,
// spends and releases and checks, at every write, that the last minute holds
// at most the quota, and that writes in it plus tickets held never exceed it.
func TestWriteLimiterQuotaHoldsUnderAnyMix(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		n := 2 + rng.IntN(8)
		l, c := manualLimiter(n)
		start := c.Now()
		var at []time.Duration
		var held []*Ticket
		record := func() {
			at = append(at, c.Now().Sub(start))
			l.mu.Lock()
			used := l.limit - l.free(c.Now())
			l.mu.Unlock()
			if used > n {
				t.Fatalf("seed %d: %d writes in the last minute plus tickets, quota %d", seed, used, n)
			}
		}
		for range 300 {
			c.Advance(time.Duration(rng.IntN(20)) * time.Second)
			switch op := rng.IntN(4); {
			case op == 0 && len(held) > 0:
				i := rng.IntN(len(held))
				if held[i].spend() {
					record()
				}
				held = slices.Delete(held, i, i+1)
			case op == 1 && len(held) > 0:
				i := rng.IntN(len(held))
				held[i].Release()
				held = slices.Delete(held, i, i+1)
			case op == 2:
				ctx, cancel := context.WithCancel(t.Context())
				r := background(t, l, ctx, true)
				select {
				case tk, ok := <-r:
					if ok {
						held = append(held, tk)
					}
				default: // would wait: give up, as a cancelled drill does
					cancel()
					until(t, "the cancelled reservation", func() bool { return l.waiting() == 0 })
					if tk, ok := <-r; ok {
						held = append(held, tk) // granted just before the cancel won
					}
				}
				cancel()
			default:
				ctx, cancel := context.WithCancel(t.Context())
				w := background(t, l, ctx, false)
				select {
				case _, ok := <-w:
					if ok {
						record()
					}
				default:
					cancel()
					until(t, "the cancelled write", func() bool { return l.waiting() == 0 })
					if _, ok := <-w; ok {
						record()
					}
				}
				cancel()
			}
		}
		sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
		if got := maxIn(at, time.Minute); got > n {
			t.Fatalf("seed %d: %d writes in one minute, quota %d", seed, got, n)
		}
	}
}

func TestReserveWrite(t *testing.T) {
	m := apiWorld()
	if tk, err := ReserveWrite(t.Context(), m); tk != nil || err != nil {
		t.Errorf("ReserveWrite(no limiter) = %v, %v; want nil, nil", tk, err)
	}
	l, _ := manualLimiter(2)
	mt := &Metered{CloudRun: m, Limiter: l}
	tk, err := ReserveWrite(t.Context(), mt)
	if err != nil || tk == nil {
		t.Fatalf("ReserveWrite(Metered with a limiter) = %v, %v", tk, err)
	}
	_ = l.Wait(t.Context()) // the other slot
	svc := m.Service()
	if _, err := mt.UpdateTraffic(WithTicket(t.Context(), tk), svc.Ref, svc.Etag, svc.Traffic); err != nil {
		t.Fatal(err)
	}
	if !tk.Spent() {
		t.Error("the write through Metered did not spend the ticket")
	}
}

func TestOverallResult(t *testing.T) {
	r := func(res string) *Report { return &Report{Result: res} }
	for _, tt := range []struct {
		in   []*Report
		want string
	}{
		{[]*Report{r(ResultPass), r(ResultPass)}, ResultPass},
		{[]*Report{r(ResultPass), r(ResultAborted)}, ResultAborted},
		{[]*Report{r(ResultAborted), r(ResultFail)}, ResultFail},
		{[]*Report{r(ResultFail), r(ResultError), r(ResultPass)}, ResultError},
	} {
		if got := OverallResult(tt.in); got != tt.want {
			t.Errorf("OverallResult(...) = %s, want %s", got, tt.want)
		}
	}
}
