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

// The wait loops are tested in memory: a scripted RoundTripper answers each
// attempt by its number in starting order (attempts run in parallel, so the
// order they reach the transport in is not fixed), and synctest's fake clock
// runs the default sleeper and per-attempt timeouts, so nothing here sleeps
// or touches the network.

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

// script is a RoundTripper that answers attempt i (its number in starting
// order, from the request's context) with steps[i], repeating the last step.
// It records the most attempts it saw in flight at once.
type script struct {
	steps []step

	mu               sync.Mutex
	inFlight, maxFly int
	calls            int
}

type attemptKey struct{}

func (s *script) RoundTrip(r *http.Request) (*http.Response, error) {
	i, _ := r.Context().Value(attemptKey{}).(int)
	s.mu.Lock()
	s.calls++
	s.inFlight++
	s.maxFly = max(s.maxFly, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	return s.steps[min(i, len(s.steps)-1)](r)
}

// wait runs WaitHealthy (detect false) or WaitFailure (detect true) semantics
// on a Checker whose transport is s.
func (s *script) wait(ctx context.Context, c *probe.Checker, exp probe.Expect, p probe.Policy, detect bool) probe.Verdict {
	c.Transport = s
	return probe.WaitNumbered(ctx, p, detect, func(ctx context.Context, i int) probe.Attempt {
		return c.Check(context.WithValue(ctx, attemptKey{}, i), base, exp)
	})
}

// repeat is n copies of st.
func repeat(st step, n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = st
	}
	return out
}

func cat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
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

var (
	exp1   = probe.Expect{Version: "1.1.0", Revisions: []string{"api-00002-def"}}
	half   = func() float64 { return 0.5 } // no jitter
	n      = func(s string, k int) string { return strings.TrimSuffix(strings.Repeat(s+",", k), ",") }
	joined = func(parts ...string) string { return strings.Join(parts, ",") }
)

// TestWaitVerdicts runs whole waits over scripted answers.
func TestWaitVerdicts(t *testing.T) {
	tests := []struct {
		name         string
		steps        []step
		exp          *probe.Expect // default exp1
		policy       probe.Policy
		detect       bool
		want         probe.Decision
		wantOut      string
		wantSleeps   []time.Duration
		wantDetected bool
		wantHealthy  bool
	}{
		{
			name:        "ten healthy answers are healthy, with no pause between them",
			steps:       []step{ok},
			policy:      probe.Policy{Retries: 3, RetryDelay: time.Second},
			want:        probe.JudgedHealthy,
			wantOut:     n("healthy", 10),
			wantHealthy: true,
		},
		{
			name:    "two failing answers are broken, with no backoff",
			steps:   []step{down},
			policy:  probe.Policy{Retries: 3, RetryDelay: time.Second},
			want:    probe.JudgedBroken,
			wantOut: "unhealthy,unhealthy",
		},
		{
			name:        "one failure among eleven answers is still healthy",
			steps:       cat([]step{ok, down}, repeat(ok, 9)),
			want:        probe.JudgedHealthy,
			wantOut:     joined("healthy,unhealthy", n("healthy", 9)),
			wantHealthy: true,
		},
		{
			name:    "a half-failing target is broken on its second failure, not after a streak",
			steps:   []step{ok, down, ok, down, ok, ok, ok, ok, ok, ok, ok, ok},
			want:    probe.JudgedBroken,
			wantOut: "healthy,unhealthy,healthy,unhealthy",
		},
		{
			name:    "a wrong version proves failure",
			steps:   []step{reply(200, `{"status":"healthy","version":"0.0.1-broken","revision":"api-00002-def"}`)},
			want:    probe.JudgedBroken,
			wantOut: "wrong-version,wrong-version",
		},
		{
			name:        "answers from another revision prove nothing",
			steps:       cat([]step{oldRev, oldRev}, repeat(ok, 10)),
			policy:      probe.Policy{Retries: 5, RetryDelay: time.Second, Rand: half},
			want:        probe.JudgedHealthy,
			wantOut:     joined("wrong-revision,wrong-revision", n("healthy", 10)),
			wantHealthy: true,
		},
		{
			name:        "one at a time, after a pause, while answers prove nothing",
			steps:       cat(repeat(refused, 6), repeat(ok, 10)),
			policy:      probe.Policy{Retries: 5, RetryDelay: time.Second, Rand: half},
			want:        probe.JudgedHealthy,
			wantOut:     joined(n("error", 6), n("healthy", 10)),
			wantSleeps:  secs(1, 2, 4),
			wantHealthy: true,
		},
		{
			name:       "gives up after Retries retries that prove nothing; a round started together counts once",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 3, RetryDelay: time.Second, Rand: half},
			want:       probe.Undecided,
			wantOut:    n("error", 4+3),
			wantSleeps: secs(1, 2, 4),
		},
		{
			name:       "backoff doubles up to the cap",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 6, RetryDelay: time.Second, MaxDelay: 5 * time.Second, Rand: half},
			want:       probe.Undecided,
			wantOut:    n("error", 4+6),
			wantSleeps: secs(1, 2, 4, 5, 5, 5),
		},
		{
			name:       "default cap is ten times the delay",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 6, RetryDelay: time.Second, Rand: half},
			want:       probe.Undecided,
			wantOut:    n("error", 4+6),
			wantSleeps: secs(1, 2, 4, 8, 10, 10),
		},
		{
			name:       "jitter low end",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 4, RetryDelay: time.Second, MaxDelay: 5 * time.Second, Rand: func() float64 { return 0 }},
			want:       probe.Undecided,
			wantOut:    n("error", 4+4),
			wantSleeps: secs(0.8, 1.6, 3.2, 4),
		},
		{
			name:       "jitter high end never exceeds the cap",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 4, RetryDelay: time.Second, MaxDelay: 5 * time.Second, Rand: func() float64 { return 1 }},
			want:       probe.Undecided,
			wantOut:    n("error", 4+4),
			wantSleeps: secs(1.2, 2.4, 4.8, 5),
		},
		{
			name:        "the pause starts again after an answer that is evidence",
			steps:       cat([]step{refused, refused, refused, refused, refused, ok, refused}, repeat(ok, 10)),
			policy:      probe.Policy{Retries: 6, RetryDelay: time.Second, Parallel: 1, Rand: half},
			want:        probe.JudgedHealthy,
			wantOut:     joined(n("error", 5), "healthy,error", n("healthy", 9)),
			wantSleeps:  secs(1, 2, 4, 8, 10, 1),
			wantHealthy: true,
		},
		{
			name:    "successes 1 failures 1: the first answer decides",
			steps:   []step{down, ok},
			policy:  probe.Policy{Successes: 1, Failures: 1},
			want:    probe.JudgedBroken,
			wantOut: "unhealthy",
		},
		{
			name:    "failures 3: three failing answers in the window",
			steps:   []step{down, down, ok, down, ok},
			policy:  probe.Policy{Successes: 3, Failures: 3},
			want:    probe.JudgedBroken,
			wantOut: "unhealthy,unhealthy,healthy,unhealthy",
		},
		// WaitFailure.
		{
			name:         "WaitFailure: a failure after a healthy window is still met",
			steps:        cat(repeat(ok, 15), []step{down, down}),
			policy:       probe.Policy{Retries: 1},
			detect:       true,
			want:         probe.JudgedBroken,
			wantOut:      joined(n("healthy", 15), "unhealthy,unhealthy"),
			wantDetected: true,
		},
		{
			name:         "WaitFailure: a partial failure (one answer in four) is met within the budget",
			steps:        []step{ok, ok, ok, down, ok, ok, ok, down},
			detect:       true,
			want:         probe.JudgedBroken,
			wantOut:      "healthy,healthy,healthy,unhealthy,healthy,healthy,healthy,unhealthy",
			wantDetected: true,
		},
		{
			name:        "WaitFailure: the broken thing answered healthy for (Retries+1) windows",
			steps:       []step{ok},
			policy:      probe.Policy{Retries: 1},
			detect:      true,
			want:        probe.JudgedHealthy,
			wantOut:     n("healthy", 22),
			wantHealthy: true,
		},
		{
			name:       "WaitFailure: refused connections prove nothing",
			steps:      []step{refused},
			policy:     probe.Policy{Retries: 2, RetryDelay: time.Second, Rand: half},
			detect:     true,
			want:       probe.Undecided,
			wantOut:    n("error", 4+2),
			wantSleeps: secs(1, 2),
		},
		{
			name:       "WaitFailure: a timeout while connecting proves nothing",
			steps:      []step{connectTimeout},
			policy:     probe.Policy{Retries: 1, RetryDelay: time.Second, Rand: half},
			detect:     true,
			want:       probe.Undecided,
			wantOut:    n("error", 4+1),
			wantSleeps: secs(1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &probe.Checker{Timeout: 100 * time.Millisecond}
				rec := &sleeps{}
				p := tt.policy
				p.Sleep = rec.Sleep
				exp := exp1
				if tt.exp != nil {
					exp = *tt.exp
				}
				v := (&script{steps: tt.steps}).wait(t.Context(), c, exp, p, tt.detect)
				if v.Decision != tt.want || v.Detected != tt.wantDetected || v.Healthy != tt.wantHealthy {
					t.Errorf("decision %v, detected %v, healthy %v; want %v, %v, %v (%s)", v.Decision, v.Detected, v.Healthy, tt.want, tt.wantDetected, tt.wantHealthy, v.Summary(p.Rule()))
				}
				if got := outcomes(v); got != tt.wantOut {
					t.Errorf("attempts = %s\nwant       %s", got, tt.wantOut)
				}
				if fmt.Sprint(rec.ds) != fmt.Sprint(tt.wantSleeps) {
					t.Errorf("slept %v, want %v", rec.ds, tt.wantSleeps)
				}
				if v.Total != len(v.Attempts) || v.Last.Outcome != v.Attempts[len(v.Attempts)-1].Outcome {
					t.Errorf("total %d, last %v, inconsistent with %s", v.Total, v.Last.Outcome, outcomes(v))
				}
				if v.Decision == probe.JudgedBroken && !v.Last.ProvesFailure() {
					t.Errorf("last = %+v, want the answer that decided: one that proves failure", v.Last)
				}
				if v.Err != nil {
					t.Errorf("err = %v, want nil", v.Err)
				}
			})
		})
	}
}

// TestWaitHangCountsAtItsTimeout: attempts that hang are failures as soon as
// their own deadline passes: the verdict comes after one --timeout, not one
// per failure needed.
func TestWaitHangCountsAtItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &probe.Checker{Transport: &script{steps: []step{hang}}}
		start := time.Now()
		v := c.WaitHealthy(t.Context(), base, probe.Expect{}, probe.Policy{})
		if v.Decision != probe.JudgedBroken || !errors.Is(v.Last.Err, probe.ErrTimeout) {
			t.Fatalf("WaitHealthy(hang) = %s, last %+v; want broken by timeouts", v.Summary(probe.Rule{}), v.Last)
		}
		if got := time.Since(start); got != probe.DefaultTimeout || v.Elapsed != got {
			t.Errorf("WaitHealthy(hang) took %v (Elapsed %v) of fake time, want one timeout, %v", got, v.Elapsed, probe.DefaultTimeout)
		}
	})
}

// TestWaitQuickAnswersDoNotOvertakeAHang: answers are used in starting order,
// so a target that hangs on some requests is judged as if probed one at a
// time: good answers that come back first cannot make a verdict before the
// hang's timeout has counted.
func TestWaitQuickAnswersDoNotOvertakeAHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &probe.Checker{Timeout: time.Second}
		s := &script{steps: cat([]step{ok, hang, ok, hang}, repeat(ok, 20))}
		start := time.Now()
		v := s.wait(t.Context(), c, exp1, probe.Policy{}, false)
		if got, want := outcomes(v), "healthy,error,healthy,error"; got != want {
			t.Errorf("attempts = %s, want %s", got, want)
		}
		if v.Decision != probe.JudgedBroken {
			t.Errorf("decision %v, want broken", v.Decision)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("took %v of fake time, want 1s (the two hangs were in flight together)", got)
		}
	})
}

func TestWaitParallelBound(t *testing.T) {
	for _, par := range []int{0, 1, 3} {
		synctest.Test(t, func(t *testing.T) {
			s := &script{steps: []step{func(r *http.Request) (*http.Response, error) {
				time.Sleep(10 * time.Millisecond) // every answer takes a while
				return ok(r)
			}}}
			v := s.wait(t.Context(), &probe.Checker{}, exp1, probe.Policy{Parallel: par}, false)
			want := par
			if par == 0 {
				want = probe.DefaultParallel
			}
			if !v.Healthy || s.maxFly != want {
				t.Errorf("Parallel %d: healthy %v, at most %d in flight; want healthy, %d", par, v.Healthy, s.maxFly, want)
			}
			// Ten answers, want at a time, 10ms each.
			if got, wantT := v.Elapsed, time.Duration((10+want-1)/want)*10*time.Millisecond; got != wantT {
				t.Errorf("Parallel %d: Elapsed %v, want %v", par, got, wantT)
			}
		})
	}
}

// TestWaitCancelsWhatIsInFlight: at the verdict, attempts still running are
// cancelled and finished before the wait returns (synctest fails a test that
// leaves goroutines behind), and are not counted.
func TestWaitCancelsWhatIsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{ok, hang}}
		start := time.Now()
		v := s.wait(t.Context(), &probe.Checker{}, exp1, probe.Policy{Successes: 1}, false)
		if !v.Healthy || v.Total != 1 || time.Since(start) != 0 {
			t.Errorf("healthy %v after %d attempts and %v; want healthy after 1 at once", v.Healthy, v.Total, time.Since(start))
		}
		if s.calls != 2 {
			t.Errorf("%d requests sent, want 2 (Successes 1 + Failures 2 - 1 may still matter)", s.calls)
		}
	})
}

func TestWaitCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		warn := reply(200, `{"status":"warn","revision":"api-00002-def"}`)
		s := &script{steps: cat([]step{refused, down, oldRev, warn}, repeat(ok, 20))}
		v := s.wait(t.Context(), &probe.Checker{}, exp1, probe.Policy{Retries: 9, Sleep: (&sleeps{}).Sleep}, false)
		// The warn answer has no version, so it is WrongVersion, not Warn:
		// the two failing answers make it broken.
		if got, want := outcomes(v), "error,unhealthy,wrong-revision,wrong-version"; got != want {
			t.Fatalf("attempts = %s, want %s", got, want)
		}
		if v.Healthy || v.Errors != 1 || v.Unhealthy != 2 || v.NotConverged != 1 || v.Total != 4 || v.Good != 0 || v.Bad != 2 {
			t.Errorf("verdict = %+v, want broken with 1 error, 2 unhealthy, 1 not converged, 4 in all", v)
		}
	})
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
		c := &probe.Checker{Transport: &script{steps: []step{refused}}}
		start := time.Now()
		p := probe.Policy{Retries: 100, RetryDelay: time.Second, MaxDelay: 4 * time.Second, Deadline: 10 * time.Second, Rand: half}
		v := c.WaitHealthy(t.Context(), base, probe.Expect{}, p)
		// A round at 0s, then attempts at 1s, 3s, 7s; the next would be at
		// 11s, past the deadline.
		if v.Healthy || v.Total != 4+3 || !errors.Is(v.Err, context.DeadlineExceeded) {
			t.Errorf("WaitHealthy() = healthy %v, %d attempts, err %v; want 7 attempts ending at the deadline", v.Healthy, v.Total, v.Err)
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
		c := &probe.Checker{Transport: &script{steps: []step{refused}}}
		v := c.WaitHealthy(ctx, base, probe.Expect{}, probe.Policy{Retries: 100, RetryDelay: time.Second, Rand: half})
		// A round at 0s and an attempt at 1s; the sleep until 3s is
		// interrupted at 2.5s.
		if v.Total != 4+1 || !errors.Is(v.Err, cause) {
			t.Errorf("WaitHealthy() = %d attempts, err %v; want 5 attempts and the cancel cause", v.Total, v.Err)
		}
	})
}

func TestWaitStoresAttemptsUpToCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &probe.Checker{Transport: &script{steps: []step{ok}}}
		retries := probe.MaxStoredAttempts / 10 // (Retries+1) windows of 11
		v := c.WaitFailure(t.Context(), base, probe.Expect{}, probe.Policy{Retries: retries})
		want := (retries + 1) * (probe.Rule{}).Window()
		if v.Total != want || len(v.Attempts) != probe.MaxStoredAttempts || v.Last.Outcome != probe.Healthy || !v.Healthy {
			t.Errorf("WaitFailure() total %d, stored %d, last %v; want %d, %d, healthy", v.Total, len(v.Attempts), v.Last.Outcome, want, probe.MaxStoredAttempts)
		}
	})
}

func TestVerdictSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &probe.Checker{Transport: &script{steps: []step{down}}}
		v := c.WaitHealthy(t.Context(), base, probe.Expect{}, probe.Policy{})
		if got, want := v.Summary(probe.Rule{}), "broken: 2 of the last 2 answers failed (rule: 2 failing or 10 good of the last 11)"; got != want {
			t.Errorf("Summary() = %q, want %q", got, want)
		}
	})
}
