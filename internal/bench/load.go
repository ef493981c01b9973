package bench

import (
	"net/http"
	"sync"
	"time"
)

// Load is open-loop, fixed-rate user load: request i is sent at start +
// i/rate, on its own schedule, whether or not earlier requests have been
// answered. (A closed loop of users each waiting for an answer sends fewer
// requests exactly when answers are slow, as during a cold start, and so
// under-counts what users see.)
type Load struct {
	url, good string
	interval  time.Duration
	client    *http.Client
	stop      chan struct{}
	sched     sync.WaitGroup
	inflight  sync.WaitGroup
	start     time.Time

	mu                      sync.Mutex
	sent, failed, broken    int
	maxLag                  time.Duration // most a request was sent after its time
	firstBroken, lastBroken time.Time
}

// UsersSaw is what users saw during one procedure.
type UsersSaw struct {
	Sent, Failed, Broken int
	// Window is from the first to the last answer from a revision other
	// than the good one.
	Window  time.Duration
	Elapsed time.Duration
	// MaxLag is the most any request left after its scheduled time (a loaded
	// machine shows here).
	MaxLag time.Duration
}

// StartLoad sends GET url/ at rate requests a second until Finish. An answer
// is failed unless 2xx, and broken when a revision other than good served it
// (X-Served-By).
func StartLoad(url, good string, rate float64) *Load {
	ld := &Load{
		url: url + "/", good: good, interval: time.Duration(float64(time.Second) / rate),
		client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true},
		},
		stop: make(chan struct{}), start: time.Now(),
	}
	ld.sched.Add(1)
	go ld.schedule()
	return ld
}

func (ld *Load) schedule() {
	defer ld.sched.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		at := ld.start.Add(time.Duration(i) * ld.interval)
		t.Reset(time.Until(at))
		select {
		case <-ld.stop:
			return
		case <-t.C:
		}
		lag := time.Since(at)
		ld.inflight.Add(1)
		go ld.request(lag)
	}
}

func (ld *Load) request(lag time.Duration) {
	defer ld.inflight.Done()
	resp, err := ld.client.Get(ld.url)
	servedBy, failed := "", true
	if err == nil {
		servedBy = resp.Header.Get("X-Served-By")
		failed = resp.StatusCode < 200 || resp.StatusCode > 299
		resp.Body.Close()
	}
	now := time.Now()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	ld.sent++
	ld.maxLag = max(ld.maxLag, lag)
	if failed {
		ld.failed++
	}
	if servedBy != "" && servedBy != ld.good {
		ld.broken++
		if ld.firstBroken.IsZero() {
			ld.firstBroken = now
		}
		ld.lastBroken = now
	}
}

// Finish stops sending, waits for the answers in flight, and sums up.
func (ld *Load) Finish() UsersSaw {
	close(ld.stop)
	ld.sched.Wait()
	ld.inflight.Wait()
	ld.client.CloseIdleConnections()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	saw := UsersSaw{Sent: ld.sent, Failed: ld.failed, Broken: ld.broken, Elapsed: time.Since(ld.start), MaxLag: ld.maxLag}
	if !ld.firstBroken.IsZero() {
		saw.Window = ld.lastBroken.Sub(ld.firstBroken)
	}
	return saw
}
