package fakeapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
)

// stubRouter is a Router whose routes tests set directly.
type stubRouter struct {
	mu     sync.Mutex
	routes map[[2]string][]fakerun.Route
}

func newStub() *stubRouter { return &stubRouter{routes: map[[2]string][]fakerun.Route{}} }

func (s *stubRouter) set(service, tag string, routes ...fakerun.Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[[2]string{service, tag}] = routes
}

func (s *stubRouter) remove(service, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.routes, [2]string{service, tag})
}

func (s *stubRouter) Routes(service, tag string) ([]fakerun.Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.routes[[2]string{service, tag}]
	return append([]fakerun.Route(nil), r...), ok
}

const stubSvc = "projects/p/locations/r/services/svc"

func stubPlane(t *testing.T, r *stubRouter, opts ...fakeapp.Option) *fakeapp.Plane {
	t.Helper()
	p := fakeapp.NewWithRouter(r, opts...)
	t.Cleanup(p.Close)
	return p
}

func rev(name, version string, percent int32, brk string) fakerun.Route {
	env := map[string]string{"APP_VERSION": version}
	if brk != "" {
		env["RUNROLLBACK_BREAK"] = brk
	}
	return fakerun.Route{Revision: name, Percent: percent, Env: env, Ready: true}
}

type answer struct {
	status   int
	servedBy string
	ctype    string
	body     string
	health   struct{ Status, Version, Revision string }
}

func get(t *testing.T, url string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, servedBy: resp.Header.Get("X-Served-By"), ctype: resp.Header.Get("Content-Type"), body: string(b)}
	if strings.HasPrefix(a.ctype, "application/json") {
		if err := json.Unmarshal(b, &a.health); err != nil {
			t.Fatalf("GET %s: bad JSON %q: %v", url, b, err)
		}
	}
	return a
}

func TestBreakModes(t *testing.T) {
	type want struct {
		healthStatus  int
		healthState   string
		healthVersion string
		rootStatus    int
	}
	cases := []struct {
		brk   string
		ready bool
		want  want
	}{
		{"", true, want{200, "healthy", "1.0.0", 200}},
		{"health", true, want{503, "unhealthy", "1.0.0", 503}},
		{"version", true, want{200, "healthy", "1.0.0-broken", 200}},
		{"flaky:100", true, want{500, "unhealthy", "1.0.0", 500}},
		{"flaky:0", true, want{200, "healthy", "1.0.0", 200}},
		{"slow:1ms", true, want{200, "healthy", "1.0.0", 200}},
		{"bogus-mode", true, want{200, "healthy", "1.0.0", 200}},
		{"startup", true, want{503, "", "", 503}},
		{"", false, want{503, "", "", 503}},
	}
	for _, tc := range cases {
		t.Run(tc.brk+map[bool]string{true: "", false: "/not-ready"}[tc.ready], func(t *testing.T) {
			r := newStub()
			rt := rev("svc-00001-abc", "1.0.0", 100, tc.brk)
			rt.Ready = tc.ready
			r.set(stubSvc, "", rt)
			p := stubPlane(t, r)
			u := p.URLFor(stubSvc, "")

			h := get(t, u+"/api/v1/health/")
			if h.status != tc.want.healthStatus || h.servedBy != "svc-00001-abc" {
				t.Fatalf("health: status %d served-by %q, want %d svc-00001-abc (body %q)", h.status, h.servedBy, tc.want.healthStatus, h.body)
			}
			if tc.want.healthState != "" {
				if h.ctype != "application/json" {
					t.Fatalf("health content type %q", h.ctype)
				}
				if h.health.Status != tc.want.healthState || h.health.Version != tc.want.healthVersion || h.health.Revision != "svc-00001-abc" {
					t.Fatalf("health body %q", h.body)
				}
			}
			root := get(t, u+"/")
			if root.status != tc.want.rootStatus || root.servedBy != "svc-00001-abc" {
				t.Fatalf("root: status %d served-by %q, want %d", root.status, root.servedBy, tc.want.rootStatus)
			}
			if root.status == 200 && root.body != "hello from svc-00001-abc\n" {
				t.Fatalf("root body %q", root.body)
			}
		})
	}
}

func TestHealthBodyExact(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", fakerun.Route{Revision: "projects/p/locations/r/services/svc/revisions/svc-00002-def", Percent: 100, Env: map[string]string{"APP_VERSION": "1.1.0"}, Ready: true})
	p := stubPlane(t, r)
	u := p.URLFor(stubSvc, "")
	for _, path := range []string{"/api/v1/health/", "/prefix/api/v1/health/", "/api/v1/health"} {
		a := get(t, u+path)
		if a.status != 200 || a.body != `{"status":"healthy","version":"1.1.0","revision":"svc-00002-def"}` || a.servedBy != "svc-00002-def" {
			t.Fatalf("%s: %d %q served-by %q", path, a.status, a.body, a.servedBy)
		}
	}
	if a := get(t, u+"/api/v1/healthz"); a.ctype == "application/json" || a.body != "hello from svc-00002-def\n" {
		t.Fatalf("non-health path answered %q %q", a.ctype, a.body)
	}
}

func TestDefaultVersion(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", fakerun.Route{Revision: "svc-00001-abc", Percent: 100, Ready: true})
	p := stubPlane(t, r)
	if a := get(t, p.URLFor(stubSvc, "")+"/api/v1/health/"); a.health.Version != "0.0.0" {
		t.Fatalf("version %q, want 0.0.0", a.health.Version)
	}
}

func TestSlowWaits(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, "slow:50ms"))
	r.set(stubSvc, "plain", rev("svc-00002-def", "1.0.0", 100, "slow"))
	p := stubPlane(t, r, fakeapp.WithSlowDelay(20*time.Millisecond))
	start := time.Now()
	if a := get(t, p.URLFor(stubSvc, "")+"/api/v1/health/"); a.status != 200 || a.health.Status != "healthy" {
		t.Fatalf("slow answered %d %q", a.status, a.body)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("slow:50ms answered after %v", d)
	}
	start = time.Now()
	if a := get(t, p.URLFor(stubSvc, "plain")+"/"); a.status != 200 {
		t.Fatalf("slow answered %d", a.status)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("slow (WithSlowDelay 20ms) answered after %v", d)
	}
}

// startSlow sends a request to a slow URL and returns once the request is on
// the wire; the returned channel yields the client's result.
func startSlow(t *testing.T, ctx context.Context, url string) <-chan error {
	t.Helper()
	wrote := make(chan struct{})
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = errors.New("slow request answered: " + resp.Status)
			}
		}
		done <- err
	}()
	select {
	case <-wrote:
	case err := <-done:
		t.Fatalf("request ended before it was sent: %v", err)
	}
	return done
}

func awaitSlow(t *testing.T, waiting <-chan struct{}) {
	t.Helper()
	select {
	case <-waiting: // the handler is in its slow wait
	case <-time.After(5 * time.Second):
		t.Fatal("slow handler never started")
	}
}

func TestSlowEndsWhenClientCancels(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, "slow:1h"))
	waiting := make(chan struct{}, 1)
	p := fakeapp.NewWithRouter(r, fakeapp.WithSlowHook(func() { waiting <- struct{}{} }))
	ctx, cancel := context.WithCancel(context.Background())
	done := startSlow(t, ctx, p.URLFor(stubSvc, "")+"/api/v1/health/")
	awaitSlow(t, waiting)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("client error %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("canceled slow request did not end")
	}
	// Close waits for the handler, so its count is visible afterwards.
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: slow handler still running")
	}
	c := p.Counts(stubSvc)
	if c.Total != 1 || c.ByStatus[0] != 1 || c.ByRevision["svc-00001-abc"] != 1 {
		t.Fatalf("counts %+v, want one unanswered request", c)
	}
}

func TestCloseEndsSlowRequests(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, "slow:1h"))
	waiting := make(chan struct{}, 1)
	p := fakeapp.NewWithRouter(r, fakeapp.WithSlowHook(func() { waiting <- struct{}{} }))
	done := startSlow(t, context.Background(), p.URLFor(stubSvc, "")+"/")
	awaitSlow(t, waiting)
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a slow request in flight")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("slow request got an answer after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow request still running after Close")
	}
	p.Close() // idempotent
	if u := p.URLFor(stubSvc, "new-tag"); u != "" {
		t.Fatalf("URL for a new pair after Close: %q", u)
	}
}

func TestFrontEndAnswers(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", fakerun.Route{Revision: "svc-00001-abc", Percent: 0, Ready: true})
	p := stubPlane(t, r)
	u := p.URLFor(stubSvc, "")
	if a := get(t, u+"/"); a.status != 503 || a.servedBy != "" {
		t.Fatalf("no traffic: %d served-by %q", a.status, a.servedBy)
	}
	r.remove(stubSvc, "")
	if a := get(t, u+"/"); a.status != 404 || a.servedBy != "" {
		t.Fatalf("service gone: %d served-by %q", a.status, a.servedBy)
	}
	c := p.Counts(stubSvc)
	if c.Total != 2 || c.ByStatus[503] != 1 || c.ByStatus[404] != 1 || len(c.ByRevision) != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func TestRequireToken(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, ""))
	r.set(stubSvc, "t", rev("svc-00001-abc", "1.0.0", 0, ""))
	r.set("other", "", rev("other-00001-abc", "1.0.0", 100, ""))
	p := stubPlane(t, r, fakeapp.WithRequireToken(stubSvc, "s3cret"))
	for _, u := range []string{p.URLFor(stubSvc, ""), p.URLFor(stubSvc, "t")} {
		if a := get(t, u+"/"); a.status != 401 || a.servedBy != "" {
			t.Fatalf("no token: %d", a.status)
		}
		if a := get(t, u+"/", "Authorization", "Bearer wrong"); a.status != 401 {
			t.Fatalf("wrong token: %d", a.status)
		}
		if a := get(t, u+"/", "Authorization", "Bearer s3cret"); a.status != 200 {
			t.Fatalf("good token: %d", a.status)
		}
	}
	if a := get(t, p.URLFor("other", "")+"/"); a.status != 200 {
		t.Fatalf("other service without token: %d", a.status)
	}
	c := p.Counts(stubSvc)
	if c.Total != 6 || c.ByStatus[401] != 4 || c.ByStatus[200] != 2 || c.ByRevision["svc-00001-abc"] != 2 {
		t.Fatalf("counts %+v", c)
	}
}

func TestURLsStable(t *testing.T) {
	r := newStub()
	p := stubPlane(t, r)
	a, b, c := p.URLFor(stubSvc, ""), p.URLFor(stubSvc, "canary"), p.URLFor("other", "")
	if !strings.HasPrefix(a, "http://127.0.0.1:") || a == b || a == c || b == c {
		t.Fatalf("urls %q %q %q", a, b, c)
	}
	if again := p.URLFor(stubSvc, ""); again != a {
		t.Fatalf("same pair, new URL: %q then %q", a, again)
	}
	if got, ok := p.URL(stubSvc, "canary"); !ok || got != b {
		t.Fatalf("URL() = %q, %v", got, ok)
	}
	if _, ok := p.URL(stubSvc, "nope"); ok {
		t.Fatal("URL() for an unknown pair")
	}
}

// split sends n sequential requests and returns the revisions that answered.
func split(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		a := get(t, url+"/")
		got[a.servedBy]++
	}
	return got
}

func TestWeightedSplitDeterministic(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00002-bbb", "2.0.0", 90, ""), rev("svc-00003-ccc", "2.1.0", 10, ""), rev("svc-00001-aaa", "1.0.0", 0, ""))
	const n = 500
	p1 := stubPlane(t, r, fakeapp.WithSeed(7))
	p2 := stubPlane(t, r, fakeapp.WithSeed(7))
	s1 := split(t, p1.URLFor(stubSvc, ""), n)
	s2 := split(t, p2.URLFor(stubSvc, ""), n)
	if len(s1) != 2 || s1["svc-00002-bbb"]+s1["svc-00003-ccc"] != n {
		t.Fatalf("split %v", s1)
	}
	if s1["svc-00003-ccc"] < n*5/100 || s1["svc-00003-ccc"] > n*15/100 {
		t.Fatalf("split %v, want about 90/10", s1)
	}
	if s1["svc-00002-bbb"] != s2["svc-00002-bbb"] {
		t.Fatalf("same seed, different splits: %v vs %v", s1, s2)
	}
	if c := p1.Counts(stubSvc); c.Total != n || c.ByRevision["svc-00003-ccc"] != s1["svc-00003-ccc"] || c.ByStatus[200] != n {
		t.Fatalf("counts %+v vs split %v", c, s1)
	}
}

func TestFlakyDeterministic(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, "flaky:30"))
	const n = 300
	run := func() []int {
		p := stubPlane(t, r, fakeapp.WithSeed(99))
		u := p.URLFor(stubSvc, "")
		var seq []int
		for range n {
			seq = append(seq, get(t, u+"/").status)
		}
		return seq
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d: %d vs %d with the same seed", i, a[i], b[i])
		}
		if a[i] == 500 {
			fails++
		} else if a[i] != 200 {
			t.Fatalf("flaky answered %d", a[i])
		}
	}
	if fails < n*20/100 || fails > n*40/100 {
		t.Fatalf("%d/%d failures, want about 30%%", fails, n)
	}
}

func TestCountsConcurrent(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00002-bbb", "2.0.0", 50, ""), rev("svc-00003-ccc", "2.1.0", 50, "health"))
	r.set(stubSvc, "canary", rev("svc-00003-ccc", "2.1.0", 100, "health"))
	p := stubPlane(t, r)
	urls := []string{p.URLFor(stubSvc, ""), p.URLFor(stubSvc, "canary")}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				resp, err := http.Get(urls[w%2] + "/")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	c := p.Counts(stubSvc)
	if c.Total != workers*each || c.ByStatus[200]+c.ByStatus[503] != c.Total ||
		c.ByRevision["svc-00002-bbb"] != c.ByStatus[200] || c.ByRevision["svc-00003-ccc"] != c.ByStatus[503] ||
		c.ByRevision["svc-00003-ccc"] < workers/2*each {
		t.Fatalf("counts %+v", c)
	}
	c.ByStatus[200] = -1 // a copy: must not affect the plane
	if p.Counts(stubSvc).ByStatus[200] == -1 {
		t.Fatal("Counts returned the plane's own map")
	}
	p.ResetCounts()
	if c := p.Counts(stubSvc); c.Total != 0 || len(c.ByStatus) != 0 || len(c.ByRevision) != 0 {
		t.Fatalf("after reset %+v", c)
	}
	if c := p.Counts("unknown"); c.ByStatus == nil || c.ByRevision == nil || c.Total != 0 {
		t.Fatalf("unknown service counts %+v", c)
	}
}
