package rollback

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestWriteLimiterRateAndBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewWriteLimiter(63, 3) // bursts of 3, then 60 a minute: one a second
		start := time.Now()
		var at []time.Duration
		for range 6 {
			if err := l.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			at = append(at, time.Since(start))
		}
		want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 3 * time.Second}
		for i := range want {
			if at[i] != want[i] {
				t.Fatalf("write times = %v, want %v", at, want)
			}
		}
	})
}

func TestWriteLimiterUrgentFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewWriteLimiter(60, 1)
		if err := l.Wait(t.Context()); err != nil { // uses the burst
			t.Fatal(err)
		}
		var mu sync.Mutex
		var order []string
		var wg sync.WaitGroup
		wait := func(name string, ctx context.Context) {
			defer wg.Done()
			if err := l.Wait(ctx); err == nil {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
			}
		}
		for _, n := range []string{"shift-1", "shift-2"} {
			wg.Add(1)
			go wait(n, t.Context())
			synctest.Wait() // queued in this order
		}
		wg.Add(1)
		go wait("restore", Urgent(t.Context()))
		synctest.Wait()
		wg.Wait()
		if got := order; len(got) != 3 || got[0] != "restore" || got[1] != "shift-1" || got[2] != "shift-2" {
			t.Errorf("order = %v, want [restore shift-1 shift-2]", got)
		}
	})
}

func TestWriteLimiterCancelledWaiterLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewWriteLimiter(61, 1) // a burst of 1, then one a second
		_ = l.Wait(t.Context())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- l.Wait(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-done; err == nil {
			t.Fatalf("Wait() after cancel = nil, want an error")
		}
		start := time.Now()
		if err := l.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("the next write waited %s, want at most one interval (the cancelled waiter took no token)", d)
		}
	})
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

// TestWriteLimiterNeverExceedsQuota checks the quota: however writes arrive, no minute
// holds more than perMinute of them.
func TestWriteLimiterNeverExceedsQuota(t *testing.T) {
	for _, tt := range []struct{ perMinute, burst int }{{60, 10}, {30, 5}, {60, 59}, {7, 1}} {
		synctest.Test(t, func(t *testing.T) {
			l := NewWriteLimiter(tt.perMinute, tt.burst)
			start := time.Now()
			var at []time.Duration
			for time.Since(start) < 3*time.Minute {
				if err := l.Wait(t.Context()); err != nil {
					t.Fatal(err)
				}
				at = append(at, time.Since(start))
			}
			for i := range at {
				n := 0
				for j := i; j < len(at) && at[j] < at[i]+time.Minute; j++ {
					n++
				}
				if n > tt.perMinute {
					t.Fatalf("NewWriteLimiter(%d, %d): %d writes in the minute from %s", tt.perMinute, tt.burst, n, at[i])
				}
			}
		})
	}
}
