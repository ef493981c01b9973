package fakeapp

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

// DefaultSlowDelay is how long a RUNROLLBACK_BREAK=slow revision waits before
// answering when the mode names no duration and no [WithSlowDelay] is given.
const DefaultSlowDelay = 30 * time.Second

// defaultSeed seeds the routing source when no [WithSeed] is given.
const defaultSeed = 1

// router is what the plane needs from the fake Admin API.
type router interface {
	Routes(serviceFullName, tag string) ([]fakerun.Route, bool)
}

// Plane is the fake serving plane. Create it with [New] or [NewTestPlane].
type Plane struct {
	router    router
	seed      uint64
	slowDelay time.Duration
	coldStart time.Duration     // first answer of a revision waits this long
	tokens    map[string]string // service full name → required bearer token
	slowHook  func()            // tests: called when a slow answer starts waiting

	baseCtx context.Context // canceled by Close; parent of every request context
	cancel  context.CancelFunc

	mu        sync.Mutex
	closed    bool
	endpoints map[endpointKey]*endpoint
	services  map[string]*serviceState
	wg        sync.WaitGroup // one per Serve goroutine
}

type endpointKey struct{ service, tag string }

type endpoint struct {
	url string
	ln  net.Listener
	srv *http.Server
}

// serviceState is the per-service routing source and counters.
type serviceState struct {
	mu     sync.Mutex
	route  *rand.Rand // picks a revision from the split
	flaky  *rand.Rand // decides flaky failures
	counts Counts
	upAt   map[string]time.Time // revision short name → when its first instance is up (WithColdStart)
}

// Counts is what users of one service saw.
type Counts struct {
	// ByRevision counts answers per revision short name (only answers a
	// revision gave; front-end 401/404/503 have no revision).
	ByRevision map[string]int
	// ByStatus counts requests per HTTP status; 0 means the request ended
	// before the revision answered (e.g. a client gave up on a slow answer).
	ByStatus map[int]int
	// Total is the number of requests counted.
	Total int
}

func newCounts() Counts {
	return Counts{ByRevision: map[string]int{}, ByStatus: map[int]int{}}
}

func (c Counts) clone() Counts {
	out := Counts{ByRevision: make(map[string]int, len(c.ByRevision)), ByStatus: make(map[int]int, len(c.ByStatus)), Total: c.Total}
	for k, v := range c.ByRevision {
		out.ByRevision[k] = v
	}
	for k, v := range c.ByStatus {
		out.ByStatus[k] = v
	}
	return out
}

// Option configures a [Plane].
type Option func(*Plane)

// WithSeed seeds the weighted router and the flaky decisions (math/rand/v2
// PCG), making them deterministic for sequential requests.
func WithSeed(seed uint64) Option { return func(p *Plane) { p.seed = seed } }

// WithSlowDelay sets the delay of RUNROLLBACK_BREAK=slow when the mode names
// no duration (default [DefaultSlowDelay]).
func WithSlowDelay(d time.Duration) Option { return func(p *Plane) { p.slowDelay = d } }

// WithColdStart makes every revision start cold: the first request that
// reaches a revision (through the service URL or a tag URL) starts its first
// instance, which is up d later; that request, and every other request routed
// to the revision before then, waits until that moment before the revision
// answers. Once up, a revision stays warm for the life of the Plane (no scale
// to zero). A request whose client gives up, or that the Plane's Close ends,
// while it waits is counted under status 0 and gets no answer. Front-end
// answers (401, 404, 503 without a revision) and revisions that are not Ready
// never wait. d <= 0, the default, means no cold starts.
func WithColdStart(d time.Duration) Option { return func(p *Plane) { p.coldStart = d } }

// WithRequireToken makes the service's URL and its tag URLs answer 401 unless
// the request carries "Authorization: Bearer <token>".
func WithRequireToken(serviceFullName, token string) Option {
	return func(p *Plane) { p.tokens[serviceFullName] = token }
}

// New creates a serving plane for s and installs its URL function with
// s.SetURLFunc, so call it before seeding s.
func New(s *fakerun.Server, opts ...Option) *Plane {
	p := newPlane(s, opts...)
	s.SetURLFunc(p.urlFor)
	return p
}

func newPlane(r router, opts ...Option) *Plane {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{
		router:    r,
		seed:      defaultSeed,
		slowDelay: DefaultSlowDelay,
		tokens:    map[string]string{},
		baseCtx:   ctx,
		cancel:    cancel,
		endpoints: map[endpointKey]*endpoint{},
		services:  map[string]*serviceState{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// TB is the part of testing.TB that NewTestPlane uses. (The package does not
// import testing, so that binaries that embed the fake do not link it.)
type TB interface {
	Helper()
	Cleanup(func())
}

// NewTestPlane is [New] with Close registered as tb's cleanup. Pass a
// *testing.T, B or F.
func NewTestPlane(tb TB, s *fakerun.Server, opts ...Option) *Plane {
	tb.Helper()
	p := New(s, opts...)
	tb.Cleanup(p.Close)
	return p
}

// URL returns the URL already assigned to (serviceFullName, tag), if any.
func (p *Plane) URL(serviceFullName, tag string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ep, ok := p.endpoints[endpointKey{serviceFullName, tag}]
	if !ok {
		return "", false
	}
	return ep.url, true
}

// urlFor is the fakerun.URLFunc. It runs under the fake's lock, so it never
// calls back into the server; it only opens a listener the first time a
// (service, tag) pair is seen. It returns "" when no listener can be opened
// (or the plane is closed and the pair is new).
func (p *Plane) urlFor(serviceFullName, tag string) string {
	key := endpointKey{serviceFullName, tag}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ep, ok := p.endpoints[key]; ok {
		return ep.url
	}
	if p.closed {
		return ""
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	srv := &http.Server{
		Handler:           p.handler(serviceFullName, tag),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return p.baseCtx },
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ep := &endpoint{url: "http://" + ln.Addr().String(), ln: ln, srv: srv}
	p.endpoints[key] = ep
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	return ep.url
}

// Close stops every listener, ends slow answers in flight, and waits for
// in-flight requests to finish. It is safe to call more than once.
func (p *Plane) Close() {
	p.mu.Lock()
	p.closed = true
	eps := make([]*endpoint, 0, len(p.endpoints))
	for _, ep := range p.endpoints {
		eps = append(eps, ep)
	}
	p.mu.Unlock()

	p.cancel() // request contexts derive from baseCtx: slow handlers return now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ep.srv.Shutdown(ctx); err != nil {
				_ = ep.srv.Close()
			}
		}()
	}
	wg.Wait()
	p.wg.Wait()
}

// Counts returns a copy of what users of the service saw since the plane
// started or the last ResetCounts. Tag URLs count toward their service.
func (p *Plane) Counts(serviceFullName string) Counts {
	p.mu.Lock()
	st, ok := p.services[serviceFullName]
	p.mu.Unlock()
	if !ok {
		return newCounts()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.counts.clone()
}

// ResetCounts clears the counts of every service. The routing sources keep
// their position.
func (p *Plane) ResetCounts() {
	p.mu.Lock()
	states := make([]*serviceState, 0, len(p.services))
	for _, st := range p.services {
		states = append(states, st)
	}
	p.mu.Unlock()
	for _, st := range states {
		st.mu.Lock()
		st.counts = newCounts()
		st.mu.Unlock()
	}
}

// service returns the state of a service, creating it on first use with
// streams derived from the seed and the service name.
func (p *Plane) service(name string) *serviceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.services[name]; ok {
		return st
	}
	h := fnv.New64a()
	_, _ = io.WriteString(h, name)
	stream := h.Sum64()
	st := &serviceState{
		route:  rand.New(rand.NewPCG(p.seed, stream)),
		flaky:  rand.New(rand.NewPCG(p.seed^0x9e3779b97f4a7c15, stream)),
		counts: newCounts(),
		upAt:   map[string]time.Time{},
	}
	p.services[name] = st
	return st
}

// pick chooses a route weighted by percent. With one route carrying traffic
// it takes no randomness. It returns false when no route carries traffic.
func (st *serviceState) pick(routes []fakerun.Route) (fakerun.Route, bool) {
	total := 0
	last := -1
	n := 0
	for i, r := range routes {
		if r.Percent > 0 {
			total += int(r.Percent)
			last = i
			n++
		}
	}
	switch n {
	case 0:
		return fakerun.Route{}, false
	case 1:
		return routes[last], true
	}
	st.mu.Lock()
	x := st.route.IntN(total)
	st.mu.Unlock()
	for _, r := range routes {
		if r.Percent <= 0 {
			continue
		}
		if x < int(r.Percent) {
			return r, true
		}
		x -= int(r.Percent)
	}
	return routes[last], true // unreachable
}

// failFlaky reports whether this answer of a flaky revision fails.
func (st *serviceState) failFlaky(percent int) bool {
	if percent <= 0 {
		return false
	}
	if percent >= 100 {
		return true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.flaky.IntN(100) < percent
}

// coldStartWait returns how long a request reaching revision at now waits for
// the revision's first instance: the first request starts it, d before it is up.
func (st *serviceState) coldStartWait(revision string, d time.Duration, now time.Time) time.Duration {
	if d <= 0 {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	up, ok := st.upAt[revision]
	if !ok {
		up = now.Add(d)
		st.upAt[revision] = up
	}
	return max(up.Sub(now), 0)
}

func (st *serviceState) count(revision string, status int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.counts.Total++
	st.counts.ByStatus[status]++
	if revision != "" {
		st.counts.ByRevision[revision]++
	}
}
