package probe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runrollback/runrollback/internal/probe"
)

// newServer starts an httptest server on 127.0.0.1 that is closed when the
// test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// answer is a canned HTTP answer.
type answer struct {
	code    int
	ctype   string
	body    string
	headers map[string]string
}

func (a answer) handler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range a.headers {
			w.Header().Set(k, v)
		}
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.code)
		io.WriteString(w, a.body)
	}
}

const (
	ctJSON   = "application/json"
	ctHealth = "application/health+json"
	ctSpring = "application/vnd.spring-boot.actuator.v3+json"
)

func TestCheckClassifies(t *testing.T) {
	tests := []struct {
		name         string
		answer       answer
		versionField string
		exp          probe.Expect
		want         probe.Outcome
		wantStatus   string
		wantVersion  string
		wantRevision string
		wantDetail   string // substring
	}{
		{
			name:         "project format healthy",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"status":"healthy","version":"1.1.0","revision":"api-00002-def"}`},
			exp:          probe.Expect{Version: "1.1.0", Revisions: []string{"api-00002-def"}},
			want:         probe.Healthy,
			wantStatus:   "healthy",
			wantVersion:  "1.1.0",
			wantRevision: "api-00002-def",
			wantDetail:   `HTTP 200 OK, status "healthy", version "1.1.0", revision "api-00002-def"`,
		},
		{
			name:         "X-Served-By wins over JSON revision",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"status":"healthy","revision":"api-00001-abc"}`, headers: map[string]string{"X-Served-By": "api-00002-def"}},
			want:         probe.Healthy,
			wantStatus:   "healthy",
			wantRevision: "api-00002-def",
		},
		{
			name:       "503",
			answer:     answer{code: 503, ctype: "text/plain", body: "upstream down\n"},
			want:       probe.Unhealthy,
			wantDetail: "HTTP 503 Service Unavailable: upstream down",
		},
		{
			name:       "500 with a healthy JSON status is still unhealthy",
			answer:     answer{code: 500, ctype: ctJSON, body: `{"status":"healthy","version":"1.1.0"}`},
			want:       probe.Unhealthy,
			wantStatus: "healthy", wantVersion: "1.1.0",
			wantDetail: `HTTP 500 Internal Server Error: status "healthy"`,
		},
		{
			name:   "404",
			answer: answer{code: 404},
			want:   probe.Unhealthy, wantDetail: "HTTP 404 Not Found",
		},
		{
			name:       "JSON status unhealthy",
			answer:     answer{code: 200, ctype: ctJSON, body: `{"status":"unhealthy","error":"db down"}`},
			want:       probe.Unhealthy,
			wantStatus: "unhealthy",
			wantDetail: `status "unhealthy": db down`,
		},
		{
			name:        "IETF pass prefers releaseId",
			answer:      answer{code: 200, ctype: ctHealth, body: `{"status":"pass","version":"1","releaseId":"1.2.3"}`},
			exp:         probe.Expect{Version: "1.2.3"},
			want:        probe.Healthy,
			wantStatus:  "pass",
			wantVersion: "1.2.3",
		},
		{
			name:        "IETF without releaseId uses version",
			answer:      answer{code: 200, ctype: ctHealth + "; charset=utf-8", body: `{"status":"pass","version":"2"}`},
			want:        probe.Healthy,
			wantStatus:  "pass",
			wantVersion: "2",
		},
		{
			name:        "plain JSON ignores releaseId",
			answer:      answer{code: 200, ctype: ctJSON, body: `{"status":"ok","version":"1.0.0","releaseId":"9.9.9"}`},
			want:        probe.Healthy,
			wantStatus:  "ok",
			wantVersion: "1.0.0",
		},
		{
			name:       "IETF warn counts as healthy with a warning",
			answer:     answer{code: 200, ctype: ctHealth, body: `{"status":"warn","output":"disk 91% full"}`},
			want:       probe.Warn,
			wantStatus: "warn",
			wantDetail: "disk 91% full",
		},
		{
			name:       "IETF fail",
			answer:     answer{code: 200, ctype: ctHealth, body: `{"status":"fail","output":"no db"}`},
			want:       probe.Unhealthy,
			wantStatus: "fail",
			wantDetail: `status "fail": no db`,
		},
		{
			name:       "Spring Boot UP",
			answer:     answer{code: 200, ctype: ctSpring, body: `{"status":"UP","components":{"db":{"status":"UP"}}}`},
			want:       probe.Healthy,
			wantStatus: "UP",
		},
		{
			name:       "Spring Boot DOWN",
			answer:     answer{code: 200, ctype: ctSpring, body: `{"status":"DOWN"}`},
			want:       probe.Unhealthy,
			wantStatus: "DOWN",
		},
		{
			name:       "status any case with spaces",
			answer:     answer{code: 200, ctype: ctJSON, body: `{"status":" Ok "}`},
			want:       probe.Healthy,
			wantStatus: " Ok ",
		},
		{
			name:   "non-JSON 2xx body",
			answer: answer{code: 200, ctype: "text/plain", body: "OK"},
			want:   probe.Healthy,
		},
		{
			name:   "204 without body",
			answer: answer{code: 204},
			want:   probe.Healthy,
		},
		{
			name:        "JSON without status",
			answer:      answer{code: 200, ctype: ctJSON, body: `{"version":"1.1.0"}`},
			want:        probe.Healthy,
			wantVersion: "1.1.0",
		},
		{
			name:       "body starting with a brace is JSON whatever its type",
			answer:     answer{code: 200, ctype: "text/plain", body: ` {"status":"fail"}`},
			want:       probe.Unhealthy,
			wantStatus: "fail",
		},
		{
			name:       "malformed JSON",
			answer:     answer{code: 200, ctype: ctJSON, body: `{"status":"healthy"`},
			want:       probe.Unhealthy,
			wantDetail: "not valid JSON",
		},
		{
			name:       "data after JSON",
			answer:     answer{code: 200, ctype: ctJSON, body: `{"status":"healthy"} {"status":"fail"}`},
			want:       probe.Unhealthy,
			wantDetail: "not valid JSON",
		},
		{
			name:       "status that is not a string",
			answer:     answer{code: 200, ctype: ctJSON, body: `{"status":true}`},
			want:       probe.Unhealthy,
			wantStatus: "true",
			wantDetail: "not a string",
		},
		{
			name:        "wrong version",
			answer:      answer{code: 200, ctype: ctJSON, body: `{"status":"healthy","version":"1.0.0"}`},
			exp:         probe.Expect{Version: "1.1.0"},
			want:        probe.WrongVersion,
			wantStatus:  "healthy",
			wantVersion: "1.0.0",
			wantDetail:  `version "1.0.0", want "1.1.0"`,
		},
		{
			name:       "missing version",
			answer:     answer{code: 200, ctype: "text/plain", body: "OK"},
			exp:        probe.Expect{Version: "1.1.0"},
			want:       probe.WrongVersion,
			wantDetail: `no version in the answer, want "1.1.0"`,
		},
		{
			name:        "warn with wrong version",
			answer:      answer{code: 200, ctype: ctHealth, body: `{"status":"warn","releaseId":"0.9"}`},
			exp:         probe.Expect{Version: "1.0"},
			want:        probe.WrongVersion,
			wantStatus:  "warn",
			wantVersion: "0.9",
		},
		{
			name:         "wrong revision",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"status":"healthy","version":"1.0.0"}`, headers: map[string]string{"X-Served-By": "api-00001-abc"}},
			exp:          probe.Expect{Version: "1.1.0", Revisions: []string{"api-00002-def"}},
			want:         probe.WrongRevision, // precedence over the version
			wantStatus:   "healthy",
			wantVersion:  "1.0.0",
			wantRevision: "api-00001-abc",
			wantDetail:   `served by "api-00001-abc", want one of [api-00002-def]: not converged`,
		},
		{
			// Real Cloud Run adds no header: an app that does not report its
			// revision is judged by health and version alone.
			name:       "no revision named",
			answer:     answer{code: 200, ctype: ctJSON, body: `{"status":"healthy"}`},
			exp:        probe.Expect{Revisions: []string{"api-00002-def"}},
			want:       probe.Healthy,
			wantStatus: "healthy",
		},
		{
			name:         "unhealthy from the wrong revision is unhealthy",
			answer:       answer{code: 503, headers: map[string]string{"X-Served-By": "api-00003-xyz"}},
			exp:          probe.Expect{Revisions: []string{"api-00002-def"}},
			want:         probe.Unhealthy,
			wantRevision: "api-00003-xyz",
		},
		{
			name:         "version field pointer",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"status":"UP","build":{"version":"3.4.5"},"version":"wrong"}`},
			versionField: "/build/version",
			exp:          probe.Expect{Version: "3.4.5"},
			want:         probe.Healthy,
			wantStatus:   "UP",
			wantVersion:  "3.4.5",
		},
		{
			name:         "version field pointer with escapes and an index",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"a/b":{"c~d":[{"v":"x"},{"v":7}]}}`},
			versionField: "/a~1b/c~0d/1/v",
			exp:          probe.Expect{Version: "7"},
			want:         probe.Healthy,
			wantVersion:  "7",
		},
		{
			name:         "version field pointer that does not resolve",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"status":"UP","version":"1"}`},
			versionField: "/build/version",
			exp:          probe.Expect{Version: "1"},
			want:         probe.WrongVersion,
			wantStatus:   "UP",
		},
		{
			name:         "version field pointer that is malformed",
			answer:       answer{code: 200, ctype: ctJSON, body: `{"status":"UP"}`},
			versionField: "build.version",
			want:         probe.ProbeError,
			wantDetail:   "not a JSON pointer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.answer.handler())
			c := &probe.Checker{VersionField: tt.versionField}
			got := c.Check(t.Context(), srv.URL, tt.exp)
			if got.Outcome != tt.want {
				t.Errorf("Check() outcome = %v (%s), want %v", got.Outcome, got.Detail, tt.want)
			}
			if got.Status != tt.wantStatus || got.Version != tt.wantVersion || got.Revision != tt.wantRevision {
				t.Errorf("Check() status, version, revision = %q, %q, %q, want %q, %q, %q",
					got.Status, got.Version, got.Revision, tt.wantStatus, tt.wantVersion, tt.wantRevision)
			}
			if !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("Check() detail = %q, want it to contain %q", got.Detail, tt.wantDetail)
			}
			if tt.want != probe.ProbeError && got.StatusCode != tt.answer.code {
				t.Errorf("Check() status code = %d, want %d", got.StatusCode, tt.answer.code)
			}
			if (got.Err != nil) != (tt.want == probe.ProbeError) {
				t.Errorf("Check() err = %v, want an error only for ProbeError", got.Err)
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	var (
		mu    sync.Mutex
		reqs  []*http.Request
		conns atomic.Int32
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r.Clone(context.Background()))
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1"})
		io.WriteString(w, `{"status":"healthy"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := &probe.Checker{HealthPath: "/healthz?full=1"}
	base := srv.URL + "/app/?region=eu#frag"
	var urls []string
	for range 2 {
		a := c.Check(t.Context(), base, probe.Expect{})
		if a.Outcome != probe.Healthy {
			t.Fatalf("Check(%s) = %v (%s), want healthy", base, a.Outcome, a.Detail)
		}
		urls = append(urls, a.URL)
	}
	wantURL := srv.URL + "/app/healthz?region=eu&full=1"
	for _, u := range urls {
		if u != wantURL {
			t.Errorf("Attempt.URL = %q, want %q (no cache buster, no fragment)", u, wantURL)
		}
	}
	if len(reqs) != 2 {
		t.Fatalf("server got %d requests, want 2", len(reqs))
	}
	busters := map[string]bool{}
	for i, r := range reqs {
		if r.URL.Path != "/app/healthz" {
			t.Errorf("request %d path = %q, want /app/healthz", i, r.URL.Path)
		}
		q := r.URL.Query()
		if q.Get("region") != "eu" || q.Get("full") != "1" || q.Get("_rr") == "" {
			t.Errorf("request %d query = %q, want region, full and _rr", i, r.URL.RawQuery)
		}
		busters[q.Get("_rr")] = true
		for k, want := range map[string]string{
			"User-Agent":      "runrollback-probe",
			"Cache-Control":   "no-cache",
			"Cookie":          "",
			"Authorization":   "",
			"Accept-Encoding": "",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("request %d header %s = %q, want %q", i, k, got, want)
			}
		}
	}
	if len(busters) != 2 {
		t.Errorf("cache busters = %v, want two different values", busters)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("server saw %d connections for 2 attempts, want a fresh one per attempt", n)
	}
}

func TestCheckHealthPathJoin(t *testing.T) {
	var path atomic.Value
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { path.Store(r.URL.Path) })
	tests := []struct {
		base, healthPath, want string
	}{
		{srv.URL, "", "/api/v1/health/"},
		{srv.URL + "/", "", "/api/v1/health/"},
		{srv.URL + "/app", "", "/app/api/v1/health/"},
		{srv.URL + "/app/", "", "/app/api/v1/health/"},
		{srv.URL + "/app", "healthz", "/app/healthz"},
		{srv.URL + "/app", "/", "/app/"},
	}
	for _, tt := range tests {
		c := &probe.Checker{HealthPath: tt.healthPath}
		if a := c.Check(t.Context(), tt.base, probe.Expect{}); a.Outcome != probe.Healthy {
			t.Fatalf("Check(%q) = %v (%s)", tt.base, a.Outcome, a.Detail)
		}
		if got := path.Load(); got != tt.want {
			t.Errorf("Check(%q) with HealthPath %q requested %q, want %q", tt.base, tt.healthPath, got, tt.want)
		}
	}
}

// fakeTokens is a TokenSource that records the audiences it was asked for.
type fakeTokens struct {
	mu        sync.Mutex
	audiences []string
	err       error
}

func (f *fakeTokens) Token(_ context.Context, audience string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audiences = append(f.audiences, audience)
	if f.err != nil {
		return "", f.err
	}
	return "tok-" + audience, nil
}

func (f *fakeTokens) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.audiences...)
}

// recorder is a handler that records requests' Authorization headers.
type recorder struct {
	mu    sync.Mutex
	auths []string
	then  http.HandlerFunc
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.auths = append(rec.auths, r.Header.Get("Authorization"))
	rec.mu.Unlock()
	if rec.then != nil {
		rec.then(w, r)
		return
	}
	io.WriteString(w, `{"status":"healthy"}`)
}

func (rec *recorder) got() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.auths...)
}

func TestRedirectNotFollowed(t *testing.T) {
	target := &recorder{}
	targetSrv := newServer(t, target.ServeHTTP)
	origin := &recorder{then: func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, targetSrv.URL+"/api/v1/health/", http.StatusFound)
	}}
	originSrv := newServer(t, origin.ServeHTTP)

	toks := &fakeTokens{}
	c := &probe.Checker{TokenSource: toks}
	a := c.Check(t.Context(), originSrv.URL, probe.Expect{})

	if a.Outcome != probe.Unhealthy || a.StatusCode != http.StatusFound {
		t.Errorf("Check() = %v, HTTP %d, want unhealthy, HTTP 302", a.Outcome, a.StatusCode)
	}
	targetHost := strings.TrimPrefix(targetSrv.URL, "http://")
	if want := "redirect to " + targetHost + " not followed"; !strings.Contains(a.Detail, want) {
		t.Errorf("Check() detail = %q, want it to contain %q", a.Detail, want)
	}
	if got := target.got(); len(got) != 0 {
		t.Errorf("redirect target got %d requests (auth %q), want none", len(got), got)
	}
	if got, want := origin.got(), []string{"Bearer tok-" + originSrv.URL}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("origin got Authorization %q, want %q", got, want)
	}
	if strings.Contains(a.Detail, "tok-") || strings.Contains(fmt.Sprint(a), "tok-") {
		t.Errorf("attempt %+v mentions the token", a)
	}
}

func TestTokenOnlyToAllowedHosts(t *testing.T) {
	rec := &recorder{}
	srv := newServer(t, rec.ServeHTTP)
	u, _ := url.Parse(srv.URL)
	tests := []struct {
		name       string
		c          probe.Checker
		want       probe.Outcome
		wantAuth   []string // per request; nil = no request
		wantTokens []string // audiences asked for
	}{
		{
			name:       "default: the base URL's own host",
			c:          probe.Checker{},
			want:       probe.Healthy,
			wantAuth:   []string{"Bearer tok-" + srv.URL},
			wantTokens: []string{srv.URL},
		},
		{
			name:       "allowed with port",
			c:          probe.Checker{AllowedHosts: []string{"other.example", u.Host}},
			want:       probe.Healthy,
			wantAuth:   []string{"Bearer tok-" + srv.URL},
			wantTokens: []string{srv.URL},
		},
		{
			name:       "allowed without port, custom audience",
			c:          probe.Checker{AllowedHosts: []string{"127.0.0.1"}, Audience: "https://api.example"},
			want:       probe.Healthy,
			wantAuth:   []string{"Bearer tok-https://api.example"},
			wantTokens: []string{"https://api.example"},
		},
		{
			name: "other host: no request, no token",
			c:    probe.Checker{AllowedHosts: []string{"api-abc.a.run.app", "127.0.0.1:1"}},
			want: probe.ProbeError,
		},
		{
			name:     "no token source: no Authorization",
			c:        probe.Checker{AllowedHosts: []string{u.Host}},
			want:     probe.Healthy,
			wantAuth: []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.mu.Lock()
			rec.auths = nil
			rec.mu.Unlock()
			toks := &fakeTokens{}
			c := tt.c
			if tt.wantAuth == nil || tt.wantAuth[0] != "" {
				c.TokenSource = toks
			}
			a := c.Check(t.Context(), srv.URL, probe.Expect{})
			if a.Outcome != tt.want {
				t.Fatalf("Check() = %v (%s), want %v", a.Outcome, a.Detail, tt.want)
			}
			if got := rec.got(); fmt.Sprint(got) != fmt.Sprint(tt.wantAuth) || len(got) != len(tt.wantAuth) {
				t.Errorf("server got Authorization %q, want %q", got, tt.wantAuth)
			}
			if got := toks.calls(); fmt.Sprint(got) != fmt.Sprint(tt.wantTokens) || len(got) != len(tt.wantTokens) {
				t.Errorf("tokens asked for %q, want %q", got, tt.wantTokens)
			}
		})
	}
}

func TestTokenError(t *testing.T) {
	rec := &recorder{}
	srv := newServer(t, rec.ServeHTTP)
	c := &probe.Checker{TokenSource: &fakeTokens{err: errors.New("no credentials")}}
	a := c.Check(t.Context(), srv.URL, probe.Expect{})
	if a.Outcome != probe.ProbeError || a.ProvesFailure() {
		t.Errorf("Check() = %v, ProvesFailure %v, want error that proves nothing", a.Outcome, a.ProvesFailure())
	}
	if !strings.Contains(a.Detail, "no credentials") {
		t.Errorf("Check() detail = %q, want the token error", a.Detail)
	}
	if n := len(rec.got()); n != 0 {
		t.Errorf("server got %d requests, want none without a token", n)
	}
}

func TestHugeBody(t *testing.T) {
	const size = 1 << 30
	var written atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctJSON)
		chunk := []byte(`{"status":"healthy","pad":"` + strings.Repeat("x", 32<<10))
		for written.Load() < size {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
			chunk = chunk[len(chunk)-32<<10:] // after the first chunk, only padding
		}
	})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	a := (&probe.Checker{Timeout: 30 * time.Second}).Check(t.Context(), srv.URL, probe.Expect{})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)

	if a.Outcome != probe.Unhealthy || !strings.Contains(a.Detail, "over 1048576 bytes") {
		t.Errorf("Check() = %v (%s), want unhealthy over MaxBody", a.Outcome, a.Detail)
	}
	if elapsed > 20*time.Second {
		t.Errorf("Check() took %v for a 1 GiB body, want it to stop at the cap", elapsed)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("Check() allocated %d MiB for a 1 GiB body, want about MaxBody", alloc>>20)
	}
	srv.Close() // waits for the handler, which stops when the client hangs up
	t.Logf("1 GiB body: %v, %d KiB allocated, server wrote %d KiB", elapsed, (after.TotalAlloc-before.TotalAlloc)>>10, written.Load()>>10)
	if n := written.Load(); n >= size/4 {
		t.Errorf("server wrote %d MiB before the client hung up, want far less than 1 GiB", n>>20)
	}
}

func TestMaxBody(t *testing.T) {
	body := `{"status":"healthy","version":"1.1.0"}`
	srv := newServer(t, answer{code: 200, ctype: ctJSON, body: body}.handler())
	for _, tt := range []struct {
		max  int64
		want probe.Outcome
	}{
		{int64(len(body)), probe.Healthy},
		{int64(len(body)) - 1, probe.Unhealthy},
	} {
		a := (&probe.Checker{MaxBody: tt.max}).Check(t.Context(), srv.URL, probe.Expect{})
		if a.Outcome != tt.want {
			t.Errorf("Check() with MaxBody %d = %v (%s), want %v", tt.max, a.Outcome, a.Detail, tt.want)
		}
	}
}

func TestHangingServerTimesOut(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantDetail string
	}{
		{"no headers", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, "no answer within the attempt timeout (100ms)"},
		{"headers then a stalled body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctJSON)
			io.WriteString(w, `{"status":`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "read body: no answer within the attempt timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			c := &probe.Checker{Timeout: 100 * time.Millisecond}
			start := time.Now()
			a := c.Check(t.Context(), srv.URL, probe.Expect{})
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Check() took %v with a 100ms timeout", elapsed)
			}
			if a.Outcome != probe.ProbeError || !errors.Is(a.Err, probe.ErrTimeout) || !a.ProvesFailure() {
				t.Errorf("Check() = %v, err %v, want a ProbeError wrapping ErrTimeout", a.Outcome, a.Err)
			}
			if !strings.Contains(a.Detail, tt.wantDetail) {
				t.Errorf("Check() detail = %q, want it to contain %q", a.Detail, tt.wantDetail)
			}
		})
	}
}

func TestClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen() = %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()

	a := (&probe.Checker{}).Check(t.Context(), "http://"+addr, probe.Expect{})
	if a.Outcome != probe.ProbeError || a.Err == nil {
		t.Fatalf("Check(closed port) = %v, err %v, want ProbeError", a.Outcome, a.Err)
	}
	if errors.Is(a.Err, probe.ErrTimeout) || a.ProvesFailure() {
		t.Errorf("Check(closed port) err = %v proves failure, want it not to", a.Err)
	}
	if strings.Contains(a.Detail, "_rr=") {
		t.Errorf("Check(closed port) detail = %q, want no cache buster", a.Detail)
	}
}

func TestCheckCancelled(t *testing.T) {
	srv := newServer(t, answer{code: 200}.handler())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a := (&probe.Checker{}).Check(ctx, srv.URL, probe.Expect{})
	if a.Outcome != probe.ProbeError || !errors.Is(a.Err, context.Canceled) || a.ProvesFailure() {
		t.Errorf("Check(cancelled) = %v, err %v, want ProbeError wrapping context.Canceled", a.Outcome, a.Err)
	}
}

func TestCheckBadURL(t *testing.T) {
	for _, raw := range []string{"", "ftp://x", "http://example.com", "http://localhost:99999", "https://user:s3cret@example.com"} {
		a := (&probe.Checker{}).Check(t.Context(), raw, probe.Expect{})
		if a.Outcome != probe.ProbeError || a.Err == nil {
			t.Errorf("Check(%q) = %v, want ProbeError", raw, a.Outcome)
		}
		if strings.Contains(a.URL+a.Detail+a.Err.Error(), "s3cret") {
			t.Errorf("Check(%q) = %+v, repeats the password", raw, a)
		}
	}
}

func TestDetailEscaped(t *testing.T) {
	srv := newServer(t, answer{
		code:    503,
		body:    "\x1b[31mboom\x1b[0m\n::error::pwned\r\n" + strings.Repeat("y", 500),
		headers: map[string]string{"X-Served-By": "::warning::rev"},
	}.handler())
	a := (&probe.Checker{}).Check(t.Context(), srv.URL, probe.Expect{})
	want := `HTTP 503 Service Unavailable: \x1b[31mboom\x1b[0m\n::error::pwned\r\nyyy`
	if !strings.HasPrefix(a.Detail, want) {
		t.Errorf("Check() detail = %q, want it to start with %q", a.Detail, want)
	}
	if n := len([]rune(a.Detail)); n != 200 || !strings.HasSuffix(a.Detail, "…") {
		t.Errorf("Check() detail has %d runes, ends %q; want 200 ending in …", n, a.Detail[len(a.Detail)-5:])
	}
	if a.Revision != `\::warning::rev` {
		t.Errorf("Check() revision = %q, want %q", a.Revision, `\::warning::rev`)
	}
}

func TestCloudRunAudience(t *testing.T) {
	for in, want := range map[string]string{
		"https://canary---api-abc123-uc.a.run.app/x": "https://api-abc123-uc.a.run.app",
		"https://api-abc123-uc.a.run.app/":           "https://api-abc123-uc.a.run.app",
		"https://api.example.com/app":                "https://api.example.com",
		"http://127.0.0.1:8080":                      "http://127.0.0.1:8080",
		"https://a---b.example.com":                  "https://a---b.example.com",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := probe.CloudRunAudience(u); got != want {
			t.Errorf("CloudRunAudience(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestNoTokenSendsNoHeader(t *testing.T) {
	var auth []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	c := &probe.Checker{TokenSource: noToken{}}
	if a := c.Check(t.Context(), srv.URL, probe.Expect{}); !a.OK() {
		t.Fatalf("Check() = %+v, want healthy", a)
	}
	c.TokenSource = probe.StaticToken("tok-1")
	c.Check(t.Context(), srv.URL, probe.Expect{})
	if len(auth) != 2 || auth[0] != "" || auth[1] != "Bearer tok-1" {
		t.Errorf("Authorization headers = %q, want none, then the static token", auth)
	}
}

type noToken struct{}

func (noToken) Token(context.Context, string) (string, error) { return "", probe.ErrNoToken }
