package probe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runrollback/runrollback/internal/probe"
)

// The wait loops are tested in memory: a scripted RoundTripper answers, and
// synctest's fake clock runs the default sleeper and per-attempt timeouts, so
// nothing here sleeps or touches the network.

const base = "https://api-abc123-uc.a.run.app"

// step is one scripted answer.
type step func(*http.Request) (*http.Response, error)

func reply(code int, body string) step {
	return func(r *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: code,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(body)),
			Request:    r,
		}, nil
	}
}

var (
	ok      = reply(200, `{"status":"healthy","version":"1.1.0","revision":"api-00002-def"}`)
	down    = reply(503, `{"status":"unhealthy"}`)
	oldRev  = reply(200, `{"status":"healthy","version":"1.0.0","revision":"api-00001-abc"}`)
	refused = step(func(*http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED)
	})
	hang = step(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	})
	connectTimeout = step(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: r.Context().Err()}
	})
)

// script is a RoundTripper that answers with its steps in order, repeating
// the last one.
type script struct {
	mu    sync.Mutex
	steps []step
	n     int
}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	st := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	s.mu.Unlock()
	return st(r)
}

// sleeps records the delays a wait asked for, without sleeping.
type sleeps struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = append(s.ds, d)
	return ctx.Err()
}

func secs(ds ...float64) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		out = append(out, time.Duration(d*float64(time.Second)))
	}
	return out
}

func outcomes(v probe.Verdict) string {
	var s []string
	for _, a := range v.Attempts {
		s = append(s, a.Outcome.String())
	}
	return strings.Join(s, ",")
}

func TestWaitHealthy(t *testing.T) {
	half := func() float64 { return 0.5 } // no jitter
	tests := []struct {
		name       string
		steps      []step
		policy     probe.Policy
		want       bool
		wantOut    string
		wantSleeps []time.Duration
	}{
		{
			name:    "zero policy: one good attempt",
			steps:   []step{ok},
			want:    true,
			wantOut: "healthy",
		},
		{
			name:    "zero policy: one bad attempt",
			steps:   []step{down, ok},
			want:    false,
			wantOut: "unhealthy",
		},
		{
			name:       "backoff doubles up to the cap",
			steps:      []step{down},
			policy:     probe.Policy{Retries: 6, RetryDelay: time.Second, MaxDelay: 5 * time.Second, Rand: half},
			want:       false,
			wantOut:    "unhealthy,unhealthy,unhealthy,unhealthy,unhealthy,unhealthy,unhealthy",
			wantSleeps: secs(1, 2, 4, 5, 5, 5),
		},
		{
			name:       "default cap is ten times the delay",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 6, RetryDelay: time.Second, Rand: half},
			wantOut:    "error,error,error,error,error,error,error",
			wantSleeps: secs(1, 2, 4, 8, 10, 10),
		},
		{
			name:       "delay resets after an OK answer",
			steps:      []step{down, down, down, ok, down, ok, ok},
			policy:     probe.Policy{Retries: 10, RetryDelay: time.Second, Successes: 2, Rand: half},
			want:       true,
			wantOut:    "unhealthy,unhealthy,unhealthy,healthy,unhealthy,healthy,healthy",
			wantSleeps: secs(1, 2, 4, 1, 1, 1),
		},
		{
			name:       "a failure resets consecutive successes",
			steps:      []step{ok, down, ok, ok},
			policy:     probe.Policy{Retries: 5, RetryDelay: time.Second, Successes: 2, Rand: half},
			want:       true,
			wantOut:    "healthy,unhealthy,healthy,healthy",
			wantSleeps: secs(1, 1, 1),
		},
		{
			name:       "stops once successes can no longer add up",
			steps:      []step{ok, down, down, ok, ok},
			policy:     probe.Policy{Retries: 3, RetryDelay: time.Second, Successes: 2, Rand: half},
			want:       false,
			wantOut:    "healthy,unhealthy,unhealthy",
			wantSleeps: secs(1, 1),
		},
		{
			name:       "wrong revision is not healthy",
			steps:      []step{oldRev, oldRev, ok},
			policy:     probe.Policy{Retries: 5, RetryDelay: time.Second, Rand: half},
			want:       true,
			wantOut:    "wrong-revision,wrong-revision,healthy",
			wantSleeps: secs(1, 2),
		},
		{
			name:       "jitter low end",
			steps:      []step{down},
			policy:     probe.Policy{Retries: 4, RetryDelay: time.Second, MaxDelay: 5 * time.Second, Rand: func() float64 { return 0 }},
			wantOut:    "unhealthy,unhealthy,unhealthy,unhealthy,unhealthy",
			wantSleeps: secs(0.8, 1.6, 3.2, 4),
		},
		{
			name:       "jitter high end never exceeds the cap",
			steps:      []step{down},
			policy:     probe.Policy{Retries: 4, RetryDelay: time.Second, MaxDelay: 5 * time.Second, Rand: func() float64 { return 1 }},
			wantOut:    "unhealthy,unhealthy,unhealthy,unhealthy,unhealthy",
			wantSleeps: secs(1.2, 2.4, 4.8, 5),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &probe.Checker{Transport: &script{steps: tt.steps}}
			rec := &sleeps{}
			p := tt.policy
			p.Sleep = rec.Sleep
			v := c.WaitHealthy(t.Context(), base, probe.Expect{Revisions: []string{"api-00002-def"}}, p)
			if v.Healthy != tt.want || v.Detected {
				t.Errorf("WaitHealthy() healthy, detected = %v, %v, want %v, false", v.Healthy, v.Detected, tt.want)
			}
			if got := outcomes(v); got != tt.wantOut {
				t.Errorf("WaitHealthy() attempts = %s, want %s", got, tt.wantOut)
			}
			if fmt.Sprint(rec.ds) != fmt.Sprint(tt.wantSleeps) {
				t.Errorf("WaitHealthy() slept %v, want %v", rec.ds, tt.wantSleeps)
			}
			if v.Total != len(v.Attempts) || v.Last.Outcome != v.Attempts[len(v.Attempts)-1].Outcome {
				t.Errorf("WaitHealthy() total %d, last %v, inconsistent with %s", v.Total, v.Last.Outcome, outcomes(v))
			}
			if v.Err != nil {
				t.Errorf("WaitHealthy() err = %v, want nil", v.Err)
			}
		})
	}
}

func TestWaitHealthyJitterBounds(t *testing.T) {
	c := &probe.Checker{Transport: &script{steps: []step{down}}}
	rec := &sleeps{}
	p := probe.Policy{Retries: 30, RetryDelay: 100 * time.Millisecond, MaxDelay: 3 * time.Second, Sleep: rec.Sleep}
	c.WaitHealthy(t.Context(), base, probe.Expect{}, p)
	if len(rec.ds) != 30 {
		t.Fatalf("WaitHealthy() slept %d times, want 30", len(rec.ds))
	}
	nominal := p.RetryDelay
	for i, d := range rec.ds {
		lo, hi := nominal*8/10, min(nominal*12/10, p.MaxDelay)
		if d < lo || d > hi {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i, d, lo, hi)
		}
		nominal = min(2*nominal, p.MaxDelay)
	}
}

func TestWaitHealthyCounts(t *testing.T) {
	c := &probe.Checker{Transport: &script{steps: []step{refused, down, oldRev, reply(200, `{"status":"warn","revision":"api-00002-def"}`), ok}}}
	v := c.WaitHealthy(t.Context(), base, probe.Expect{Version: "1.1.0", Revisions: []string{"api-00002-def"}},
		probe.Policy{Retries: 9, Successes: 2, Sleep: (&sleeps{}).Sleep})
	// The warn answer has no version, so it is WrongVersion, not Warn.
	if got, want := outcomes(v), "error,unhealthy,wrong-revision,wrong-version,healthy,healthy"; got != want {
		t.Fatalf("WaitHealthy() attempts = %s, want %s", got, want)
	}
	if !v.Healthy || v.Errors != 1 || v.Unhealthy != 2 || v.NotConverged != 1 || v.Total != 6 {
		t.Errorf("WaitHealthy() = %+v, want healthy with 1 error, 2 unhealthy, 1 not converged, 6 in all", v)
	}
}

func TestWaitFailure(t *testing.T) {
	half := func() float64 { return 0.5 }
	tests := []struct {
		name         string
		steps        []step
		policy       probe.Policy
		wantDetected bool
		wantHealthy  bool
		wantOut      string
		wantSleeps   []time.Duration
	}{
		{
			name:         "detects the first unhealthy answer",
			steps:        []step{ok, ok, down, ok},
			policy:       probe.Policy{Retries: 10, RetryDelay: time.Second, Rand: half},
			wantDetected: true,
			wantOut:      "healthy,healthy,unhealthy",
			wantSleeps:   secs(1, 1),
		},
		{
			name:         "wrong version is detection",
			steps:        []step{reply(200, `{"status":"healthy","version":"0.0.1-broken","revision":"api-00002-def"}`)},
			policy:       probe.Policy{Retries: 3},
			wantDetected: true,
			wantOut:      "wrong-version",
		},
		{
			name:         "a timeout is detection",
			steps:        []step{ok, hang},
			policy:       probe.Policy{Retries: 3, RetryDelay: time.Second, Rand: half},
			wantDetected: true,
			wantOut:      "healthy,error",
			wantSleeps:   secs(1),
		},
		{
			name:       "a timeout while connecting proves nothing",
			steps:      []step{connectTimeout},
			policy:     probe.Policy{Retries: 1, RetryDelay: time.Second, Rand: half},
			wantOut:    "error,error",
			wantSleeps: secs(1),
		},
		{
			name:       "refused connections prove nothing",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 3, RetryDelay: time.Second, Rand: half},
			wantOut:    "error,error,error,error",
			wantSleeps: secs(1, 2, 4),
		},
		{
			name:       "not converged proves nothing",
			steps:      []step{oldRev, oldRev, ok},
			policy:     probe.Policy{Retries: 2, RetryDelay: time.Second, Rand: half},
			wantOut:    "wrong-revision,wrong-revision,healthy",
			wantSleeps: secs(1, 2), wantHealthy: true,
		},
		{
			name:        "the broken thing answered healthy",
			steps:       []step{ok},
			policy:      probe.Policy{Retries: 2, RetryDelay: time.Second, Successes: 3, Rand: half},
			wantHealthy: true,
			wantOut:     "healthy,healthy,healthy",
			wantSleeps:  secs(1, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &probe.Checker{Transport: &script{steps: tt.steps}, Timeout: 100 * time.Millisecond}
				rec := &sleeps{}
				p := tt.policy
				p.Sleep = rec.Sleep
				v := c.WaitFailure(t.Context(), base, probe.Expect{Version: "1.1.0", Revisions: []string{"api-00002-def"}}, p)
				if v.Detected != tt.wantDetected || v.Healthy != tt.wantHealthy {
					t.Errorf("WaitFailure() detected, healthy = %v, %v, want %v, %v", v.Detected, v.Healthy, tt.wantDetected, tt.wantHealthy)
				}
				if got := outcomes(v); got != tt.wantOut {
					t.Errorf("WaitFailure() attempts = %s, want %s", got, tt.wantOut)
				}
				if fmt.Sprint(rec.ds) != fmt.Sprint(tt.wantSleeps) {
					t.Errorf("WaitFailure() slept %v, want %v", rec.ds, tt.wantSleeps)
				}
				if tt.wantDetected && !v.Last.ProvesFailure() {
					t.Errorf("WaitFailure() last = %+v, want one that proves failure", v.Last)
				}
			})
		})
	}
}

func TestWaitTimeoutUsesFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &probe.Checker{Transport: &script{steps: []step{hang}}}
		start := time.Now()
		v := c.WaitFailure(t.Context(), base, probe.Expect{}, probe.Policy{})
		if !v.Detected || !errors.Is(v.Last.Err, probe.ErrTimeout) {
			t.Fatalf("WaitFailure(hang) = %+v, want detection by timeout", v)
		}
		if got := time.Since(start); got != probe.DefaultTimeout {
			t.Errorf("WaitFailure(hang) took %v of fake time, want the default timeout %v", got, probe.DefaultTimeout)
		}
		if v.Elapsed != probe.DefaultTimeout || v.Last.Duration != probe.DefaultTimeout {
			t.Errorf("Elapsed, Duration = %v, %v, want %v", v.Elapsed, v.Last.Duration, probe.DefaultTimeout)
		}
	})
}

func TestWaitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &probe.Checker{Transport: &script{steps: []step{down}}}
		start := time.Now()
		p := probe.Policy{Retries: 100, RetryDelay: time.Second, MaxDelay: 4 * time.Second, Deadline: 10 * time.Second, Rand: func() float64 { return 0.5 }}
		v := c.WaitHealthy(t.Context(), base, probe.Expect{}, p)
		// Attempts at 0s, 1s, 3s, 7s; the next would be at 11s, past the deadline.
		if v.Healthy || v.Total != 4 || !errors.Is(v.Err, context.DeadlineExceeded) {
			t.Errorf("WaitHealthy() = healthy %v, %d attempts, err %v; want 4 attempts ending at the deadline", v.Healthy, v.Total, v.Err)
		}
		if got := time.Since(start); got != 7*time.Second || v.Elapsed != got {
			t.Errorf("WaitHealthy() took %v (Elapsed %v) of fake time, want 7s", got, v.Elapsed)
		}
	})
}

func TestWaitCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		cause := errors.New("interrupt")
		time.AfterFunc(2500*time.Millisecond, func() { cancel(cause) })
		c := &probe.Checker{Transport: &script{steps: []step{down}}}
		v := c.WaitHealthy(ctx, base, probe.Expect{}, probe.Policy{Retries: 100, RetryDelay: time.Second, Rand: func() float64 { return 0.5 }})
		// Attempts at 0s and 1s; the sleep until 3s is interrupted at 2.5s.
		if v.Total != 2 || !errors.Is(v.Err, cause) {
			t.Errorf("WaitHealthy() = %d attempts, err %v; want 2 attempts and the cancel cause", v.Total, v.Err)
		}
	})
}

func TestWaitStoresAttemptsUpToCap(t *testing.T) {
	c := &probe.Checker{Transport: &script{steps: []step{down, ok}}}
	n := probe.MaxStoredAttempts + 500
	v := c.WaitFailure(t.Context(), base, probe.Expect{}, probe.Policy{Retries: n - 1})
	if !v.Detected || v.Total != 1 {
		t.Fatalf("WaitFailure() = detected %v after %d attempts, want detection at once", v.Detected, v.Total)
	}
	v = c.WaitFailure(t.Context(), base, probe.Expect{}, probe.Policy{Retries: n - 1})
	if v.Total != n || len(v.Attempts) != probe.MaxStoredAttempts || v.Last.Outcome != probe.Healthy || !v.Healthy {
		t.Errorf("WaitFailure() total %d, stored %d, last %v; want %d, %d, healthy", v.Total, len(v.Attempts), v.Last.Outcome, n, probe.MaxStoredAttempts)
	}
}

func TestWaitHealthyImpossibleSuccesses(t *testing.T) {
	c := &probe.Checker{Transport: &script{steps: []step{ok}}}
	v := c.WaitHealthy(t.Context(), base, probe.Expect{}, probe.Policy{Retries: 1, Successes: 3})
	if v.Healthy || v.Total != 1 {
		t.Errorf("WaitHealthy() = healthy %v after %d attempts, want false after 1 (3 successes cannot fit in 2 attempts)", v.Healthy, v.Total)
	}
}

func TestWaitHealthyFailuresStopEarly(t *testing.T) {
	tests := []struct {
		name    string
		steps   []step
		want    string
		healthy bool
	}{
		{"three proven failures in a row stop the wait", []step{down}, "unhealthy,unhealthy,unhealthy", false},
		{"a good answer resets the count", []step{down, down, ok, down, down, down}, "unhealthy,unhealthy,healthy,unhealthy,unhealthy,unhealthy", false},
		{"answers that prove nothing never count", []step{refused, refused, refused, refused, ok, ok}, "error,error,error,error,healthy,healthy", true},
		{"wrong versions count", []step{oldRev}, "wrong-version,wrong-version,wrong-version", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &probe.Checker{Transport: &script{steps: tt.steps}}
			v := c.WaitHealthy(t.Context(), base, probe.Expect{Version: "1.1.0"},
				probe.Policy{Retries: 9, Successes: 2, Failures: 3, Sleep: (&sleeps{}).Sleep})
			if got := outcomes(v); got != tt.want || v.Healthy != tt.healthy {
				t.Errorf("WaitHealthy() = %s (healthy %v), want %s (healthy %v)", got, v.Healthy, tt.want, tt.healthy)
			}
		})
	}
}
