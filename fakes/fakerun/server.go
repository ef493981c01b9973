package fakerun

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Server is a fake Cloud Run Admin API v2 listening on a loopback address,
// over gRPC and over HTTP/JSON (REST) on the same port. Its methods are safe
// for concurrent use.
type Server struct {
	// Addr is the host:port of the listener, such as "127.0.0.1:40123". gRPC
	// clients dial it in plaintext; REST clients use http://Addr.
	Addr string
	// GRPC is the server the Services, Revisions and Operations servers are
	// registered on. Register more services on it between NewUnstartedServer
	// and Start: grpc.Server refuses registrations once it serves. Services
	// registered here are served over gRPC only.
	GRPC *grpc.Server

	f         *fake
	split     *splitListener
	http      *http.Server
	startOnce sync.Once
	closeOnce sync.Once
}

// URLFunc gives the URL of a service (tag == "") or of one of its tags. It is
// called with the service's full resource name while the Server holds its lock,
// so it must not call back into the Server.
type URLFunc func(serviceFullName, tag string) string

type config struct {
	addr    string
	urlFunc URLFunc
	now     func() time.Time
	rollout *Rollout
}

// Option configures NewServer.
type Option func(*config)

// WithAddr sets the listen address; the default is "127.0.0.1:0".
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithURLFunc sets how service and tag URLs are made; the default is DefaultURL.
func WithURLFunc(f URLFunc) Option { return func(c *config) { c.urlFunc = f } }

// WithClock sets the clock used for timestamps; the default is time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// NewServer starts a fake on a new listener, with no services (see Seed): it
// is NewUnstartedServer followed by Start, so it is serving when NewServer
// returns.
func NewServer(opts ...Option) (*Server, error) {
	s, err := NewUnstartedServer(opts...)
	if err != nil {
		return nil, err
	}
	s.Start()
	return s, nil
}

// NewUnstartedServer listens (so Addr is known) and registers the Services,
// Revisions and Operations servers on one grpc.Server, but serves nothing
// until Start: register more gRPC services on GRPC in between. Calls made
// before Start wait in the listener's backlog. Close it even if it was never
// started.
func NewUnstartedServer(opts ...Option) (*Server, error) {
	c := config{addr: "127.0.0.1:0", urlFunc: DefaultURL, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.urlFunc == nil {
		c.urlFunc = DefaultURL
	}
	if c.now == nil {
		c.now = time.Now
	}
	lis, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("fakerun: listen on %s: %w", c.addr, err)
	}
	f := newFake(c)
	g := grpc.NewServer(grpc.UnaryInterceptor(f.intercept))
	descs := []*grpc.ServiceDesc{&runpb.Services_ServiceDesc, &runpb.Revisions_ServiceDesc, &longrunningpb.Operations_ServiceDesc}
	impls := []any{&servicesServer{f: f}, &revisionsServer{f: f}, &operationsServer{f: f}}
	for i, d := range descs {
		g.RegisterService(d, impls[i])
	}
	return &Server{
		Addr:  lis.Addr().String(),
		GRPC:  g,
		f:     f,
		split: newSplitListener(lis),
		http:  &http.Server{Handler: newRESTHandler(f, descs, impls), ReadHeaderTimeout: sniffTimeout},
	}, nil
}

// Start serves gRPC and REST on Addr. Calling it again, or after Close, does
// nothing.
func (s *Server) Start() {
	s.startOnce.Do(func() {
		go s.split.serve()
		go func() { _ = s.GRPC.Serve(s.split.grpc) }()
		go func() { _ = s.http.Serve(s.split.http) }()
	})
}

// TB is the part of testing.TB that NewTestServer uses. (The package does not
// import testing, so that binaries that embed the fake do not link it.)
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// NewTestServer is NewServer for tests: it fails tb on error and closes the
// server when the test ends. Pass a *testing.T, B or F.
func NewTestServer(tb TB, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		tb.Fatalf("fakerun.NewServer() = %v", err)
	}
	tb.Logf("fakerun: Cloud Run Admin API v2 fake listening on %s (gRPC, and REST at http://%s)", s.Addr, s.Addr)
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, ending calls in flight (including injected latency
// and WaitOperation), on both protocols. It is safe to call more than once,
// and on a server never started.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.startOnce.Do(func() {}) // a later Start does nothing
		close(s.f.done)
		s.split.close()
		s.GRPC.Stop()
		_ = s.http.Close()
	})
}

// SetURLFunc replaces the URLFunc. Call it before Seed: existing services keep
// their URI, services created later and tag URLs computed later use f.
func (s *Server) SetURLFunc(f URLFunc) {
	if f == nil {
		f = DefaultURL
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.urlFunc = f
}

// Service returns a copy of the stored service, or nil if there is none.
func (s *Server) Service(fullName string) *runpb.Service {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	st := s.f.services[fullName]
	if st == nil {
		return nil
	}
	return cloneService(st.svc)
}

// Services returns copies of all services, newest first.
func (s *Server) Services() []*runpb.Service {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	var out []*runpb.Service
	for _, st := range s.f.sortedServices() {
		out = append(out, cloneService(st.svc))
	}
	return out
}

// Revision returns a copy of a revision, by full resource name, or nil.
func (s *Server) Revision(fullName string) *runpb.Revision {
	ref, rev, ok := parseRevision(fullName)
	if !ok {
		return nil
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	st := s.f.services[ref.fullName()]
	if st == nil || st.revs[rev] == nil {
		return nil
	}
	return proto.Clone(st.revs[rev].rev).(*runpb.Revision)
}

// Revisions returns copies of the revisions of a service, newest first; nil if
// the service does not exist.
func (s *Server) Revisions(serviceFullName string) []*runpb.Revision {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	st := s.f.services[serviceFullName]
	if st == nil {
		return nil
	}
	var out []*runpb.Revision
	for _, r := range st.sortedRevisions() {
		out = append(out, proto.Clone(r.rev).(*runpb.Revision))
	}
	return out
}

// Calls returns how many times each RPC was called, by short method name
// ("UpdateService", "GetOperation", ...), including calls that failed.
func (s *Server) Calls() map[string]int {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	out := make(map[string]int, len(s.f.calls))
	for k, v := range s.f.calls {
		out[k] = v
	}
	return out
}

// Writes returns how many mutating calls (Create/Update/DeleteService,
// DeleteRevision) were accepted: those that returned an operation, or would
// have but for LoseReply. validate_only calls and rejected calls do not count;
// calls whose operation was made to fail by FailOperations do.
func (s *Server) Writes() int {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.writes
}

// FailNext makes the next n calls of method (a short RPC name such as
// "UpdateService") fail with code and msg before doing anything. Faults queue
// up: a second FailNext adds to the first.
func (s *Server) FailNext(method string, n int, code codes.Code, msg string) {
	s.FailNextWithDetails(method, n, status.New(code, msg))
}

// FailNextWithDetails is FailNext with a status of your own, for example
// RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail.
func (s *Server) FailNextWithDetails(method string, n int, st *status.Status) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for range n {
		s.f.failNext[method] = append(s.f.failNext[method], st)
	}
}

// FailAfter lets the next skip calls of method through, then fails n calls
// with code and msg: "the third UpdateService of this run fails". It queues
// behind faults already injected for method.
func (s *Server) FailAfter(method string, skip, n int, code codes.Code, msg string) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for range skip {
		s.f.failNext[method] = append(s.f.failNext[method], nil)
	}
	for range n {
		s.f.failNext[method] = append(s.f.failNext[method], status.New(code, msg))
	}
}

// LoseReply makes the next n successful calls of method apply their change
// and then return code instead of their reply, as when a reply is lost on the
// way back.
func (s *Server) LoseReply(method string, n int, code codes.Code) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for range n {
		s.f.loseReply[method] = append(s.f.loseReply[method], code)
	}
}

// SetLatency makes every call of method wait d before it is handled. The wait
// ends early, with the context's error, when the caller gives up. d <= 0
// removes the latency.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if d <= 0 {
		delete(s.f.latency, method)
		return
	}
	s.f.latency[method] = d
}

// HoldOperations decides whether new operations complete at once (the
// default) or stay pending until ReleaseOperations. While an operation of a
// service is pending, the service shows reconciling=true and its
// observed_generation, traffic_statuses and latest_ready_revision stay behind.
// HoldOperations(false) does not complete operations already pending; they
// complete on ReleaseOperations, or, for one service, just before a later
// unheld operation of that service (operations of a service complete in
// order).
func (s *Server) HoldOperations(hold bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.hold = hold
}

// HoldOperationsAfter lets the operations of the next n accepted writes
// complete as usual, then holds every later one as HoldOperations(true) does:
// "the fourth write of this run never finishes".
func (s *Server) HoldOperationsAfter(n int) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.holdAfter = n
	s.f.hold = n == 0
}

// ReleaseOperations completes every pending operation, oldest first.
func (s *Server) ReleaseOperations() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.completeAll()
}

// FailOperations makes the next n accepted mutating calls return an
// operation that ends with code and msg. Their change is not applied.
func (s *Server) FailOperations(n int, code codes.Code, msg string) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for range n {
		s.f.failOps = append(s.f.failOps, status.New(code, msg))
	}
}

// BeforeWrite plays a concurrent writer. fn is called once, at the next
// UpdateService of an existing service (after injected faults, before the
// request's etag is checked), with a mutable copy of the stored service. If fn
// changes the copy, the change is stored as another writer's: generation+1, a
// new etag, and a new revision if the template changed. A request carrying the
// etag it read earlier then fails with ABORTED. fn runs under the Server's
// lock and must not call back into the Server.
func (s *Server) BeforeWrite(fn func(svc *runpb.Service)) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.beforeWrite = &beforeWrite{fn: fn}
}

// ResetFaults removes every injected fault: FailNext, LoseReply, latency,
// FailOperations, BeforeWrite and HoldOperations (pending operations stay
// pending until ReleaseOperations).
func (s *Server) ResetFaults() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.resetFaults()
}

// beforeWrite is a pending concurrent write. service, when set, limits it to
// one service (full name).
type beforeWrite struct {
	service string
	fn      func(*runpb.Service)
}

// fake is the state behind the Server, guarded by mu.
type fake struct {
	mu      sync.Mutex
	now     func() time.Time
	urlFunc URLFunc
	done    chan struct{} // closed by Close

	rollout  Rollout
	registry *registry
	seq      int64 // orders everything created; also feeds ids and etags
	services map[string]*service
	ops      map[string]*operation
	pending  []*operation // in the order they were accepted
	// opChanged is closed (and replaced) whenever an operation completes.
	opChanged chan struct{}

	calls  map[string]int
	writes int

	failNext    map[string][]*status.Status
	loseReply   map[string][]codes.Code
	latency     map[string]time.Duration
	hold        bool
	holdAfter   int
	failOps     []*status.Status
	beforeWrite *beforeWrite
}

func newFake(c config) *fake {
	f := &fake{
		now:       c.now,
		urlFunc:   c.urlFunc,
		done:      make(chan struct{}),
		services:  map[string]*service{},
		ops:       map[string]*operation{},
		opChanged: make(chan struct{}),
		calls:     map[string]int{},
		rollout:   DefaultRollout(),
		registry:  newRegistry(),
	}
	if c.rollout != nil {
		f.rollout = *c.rollout
	}
	f.resetFaults()
	return f
}

func (f *fake) resetFaults() {
	f.failNext = map[string][]*status.Status{}
	f.loseReply = map[string][]codes.Code{}
	f.latency = map[string]time.Duration{}
	f.hold = false
	f.holdAfter = 0
	f.failOps = nil
	f.beforeWrite = nil
}

func (f *fake) nextSeq() int64 {
	f.seq++
	return f.seq
}

// intercept counts calls and applies latency, FailNext and LoseReply.
func (f *fake) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	f.mu.Lock()
	f.calls[method]++
	delay := f.latency[method]
	f.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-f.done:
			t.Stop()
			return nil, status.Error(codes.Unavailable, "fakerun: the server is shutting down")
		case <-t.C:
		}
	}

	if msg, ok := unimplemented[method]; ok {
		return nil, status.Error(codes.Unimplemented, msg)
	}
	f.mu.Lock()
	if q := f.failNext[method]; len(q) > 0 {
		st := q[0]
		f.failNext[method] = q[1:]
		if st != nil { // nil: a call FailAfter lets through
			f.mu.Unlock()
			return nil, st.Err()
		}
	}
	f.mu.Unlock()

	resp, err := handler(ctx, req)
	if err != nil {
		return resp, err
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.loseReply[method]; len(q) > 0 {
		code := q[0]
		f.loseReply[method] = q[1:]
		return nil, status.Errorf(code, "fakerun: the reply to %s was lost (the call was applied)", method)
	}
	return resp, nil
}

// unimplemented explains the RPCs the fake does not model. (They are
// answered here so that the package needs no IAM types.)
var unimplemented = map[string]string{
	"GetIamPolicy":       "fakerun does not model IAM: GetIamPolicy is not implemented.",
	"SetIamPolicy":       "fakerun does not model IAM: SetIamPolicy is not implemented.",
	"TestIamPermissions": "fakerun does not model IAM: TestIamPermissions is not implemented.",
}

func (f *fake) sortedServices() []*service {
	out := make([]*service, 0, len(f.services))
	for _, st := range f.services {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *service) int { return compareSeqDesc(a.seq, b.seq) })
	return out
}

func compareSeqDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func cloneService(s *runpb.Service) *runpb.Service { return proto.Clone(s).(*runpb.Service) }
