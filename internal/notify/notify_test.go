package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runrollback/runrollback/internal/rollback"
)

// hook is a webhook receiver: it records every request's body and headers,
// and answers with the next of its statuses (then 200).
type hook struct {
	srv *httptest.Server

	mu       sync.Mutex
	bodies   []string
	headers  []http.Header
	statuses []int
}

func newHook(t *testing.T, statuses ...int) *hook {
	t.Helper()
	h := &hook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.headers = append(h.headers, r.Header.Clone())
		code := http.StatusOK
		if len(h.statuses) > 0 {
			code, h.statuses = h.statuses[0], h.statuses[1:]
		}
		h.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

func mustTarget(t *testing.T, raw string) *Target {
	t.Helper()
	tg, err := ParseTarget(raw)
	if err != nil {
		t.Fatalf("ParseTarget(%q) = %v", raw, err)
	}
	return tg
}

// fast is a Poster whose retry does not wait long.
func fast() *Poster { return &Poster{RetryDelay: time.Millisecond} }

func failedDrill() *rollback.Report {
	r := &rollback.Report{
		Schema: rollback.ReportSchema, Command: "test", Result: rollback.ResultFail, ExitCode: 1,
		Service:  rollback.ReportService{Project: "p", Region: "us-central1", Name: "api", URI: "https://api-xyz.a.run.app"},
		Before:   &rollback.ReportState{Revision: "api-00002-def"},
		Timings:  rollback.Timings{DetectTag: 1200, Detect: 800, Restore: 150, Verify: 900, Total: 5000},
		Exposure: rollback.Exposure{Percent: 100, MS: 950},
		Steps: []rollback.StepReport{{Name: rollback.StepRestore, Status: rollback.StepPass},
			{Name: rollback.StepVerify, Status: rollback.StepFail}},
		TrafficRestored: true,
		Error:           "verify: the service answered 503 <b>& down</b>",
		Hint:            "look at the app's logs",
	}
	r.CI = &rollback.CIRun{Provider: "github-actions", RunURL: "https://github.com/o/r/actions/runs/1"}
	return r
}

func TestParseTarget(t *testing.T) {
	for _, ok := range []string{"https://hooks.example.com/services/T1/B2/KEY3", "http://127.0.0.1:8080/hook", "http://[::1]:1/x", "http://localhost/x", "https://h.example/x?token=abc"} {
		if _, err := ParseTarget(ok); err != nil {
			t.Errorf("ParseTarget(%q) = %v, want it accepted", ok, err)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"http://hooks.example.com/SECRETPATH", "must be https"},
		{"ftp://hooks.example.com/SECRETPATH", `scheme "ftp"`},
		{"hooks.example.com/SECRETPATH", "not an absolute URL"},
		{"https:///SECRETPATH", "not an absolute URL"},
		{"https://hooks.example.com/SECRETPATH\x7f", "not an absolute URL"},
		{"mailto:SECRETPATH@example.com", "not an absolute URL"},
	} {
		_, err := ParseTarget(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTarget(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "SECRETPATH") {
			t.Errorf("ParseTarget(%q) = %q, which repeats the URL", tt.in, err)
		}
	}
}

func TestTargetStringAndRedact(t *testing.T) {
	tg := mustTarget(t, "https://user:PASSWORD9@hooks.example.com/services/T0001/B0002/SECRETKEY42?token=QUERYTOKEN7&v=1")
	if got, want := tg.String(), "https://hooks.example.com/…"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	in := "Post https://user:PASSWORD9@hooks.example.com/services/T0001/B0002/SECRETKEY42?token=QUERYTOKEN7&v=1: refused; key SECRETKEY42, token QUERYTOKEN7, v1 stays"
	got := tg.Redact(in)
	for _, secret := range []string{"PASSWORD9", "SECRETKEY42", "QUERYTOKEN7"} {
		if strings.Contains(got, secret) {
			t.Errorf("Redact(%q) = %q, which still holds %s", in, got, secret)
		}
	}
	if !strings.Contains(got, "v1 stays") {
		t.Errorf("Redact(%q) = %q: short words must stay", in, got)
	}
	if in := "3 services failed"; tg.Redact(in) != in {
		t.Errorf("Redact(%q) = %q: words of the URL's path that are no key must stay", in, tg.Redact(in))
	}
}

func TestWhen(t *testing.T) {
	for _, tt := range []struct {
		when When
		code int
		want bool
	}{
		{OnFailure, 0, false}, {OnFailure, 1, true}, {OnFailure, 3, true}, {OnFailure, 4, true}, {OnFailure, 5, true}, {OnFailure, 6, true},
		{OnAlways, 0, true}, {OnAlways, 4, true},
		{OnNever, 0, false}, {OnNever, 4, false},
	} {
		if got := tt.when.Wants(tt.code); got != tt.want {
			t.Errorf("%s.Wants(%d) = %v, want %v", tt.when, tt.code, got, tt.want)
		}
	}
	if _, err := ParseWhen("sometimes"); err == nil || !strings.Contains(err.Error(), "use failure, always or never") {
		t.Errorf(`ParseWhen("sometimes") = %v, want a usage error`, err)
	}
	for _, s := range []string{"failure", "always", "never"} {
		if w, err := ParseWhen(s); err != nil || string(w) != s {
			t.Errorf("ParseWhen(%q) = %q, %v", s, w, err)
		}
	}
}

func TestPostSingle(t *testing.T) {
	h := newHook(t)
	r := failedDrill()
	err := fast().Post(t.Context(), mustTarget(t, h.srv.URL+"/hook"), Summarize("test", []*rollback.Report{r}, r.Result, r.ExitCode, nil))
	if err != nil {
		t.Fatalf("Post() = %v", err)
	}
	bodies := h.got()
	if len(bodies) != 1 {
		t.Fatalf("hook got %d posts, want 1", len(bodies))
	}
	if ct := h.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &got); err != nil {
		t.Fatalf("body %q: %v", bodies[0], err)
	}
	want := map[string]any{
		"schema": Schema, "command": "test", "result": "fail", "exit_code": 1.0,
		"service":          map[string]any{"project": "p", "region": "us-central1", "name": "api", "uri": "https://api-xyz.a.run.app"},
		"rolled_back":      true,
		"traffic_restored": true,
		"exposure":         map[string]any{"percent": 100.0, "ms": 950.0},
		"timings_ms":       map[string]any{"detect_tag": 1200.0, "detect": 800.0, "restore": 150.0, "verify": 900.0, "total": 5000.0},
		"error":            r.Error,
		"hint":             r.Hint,
		"run_url":          "https://github.com/o/r/actions/runs/1",
	}
	text, _ := got["text"].(string)
	delete(got, "text")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("posted summary mismatch (-want +got):\n%s", diff)
	}
	for _, part := range []string{"runrollback test FAIL: p/us-central1/api: verify: the service answered 503 &lt;b&gt;&amp; down&lt;/b&gt;.",
		"Exposure 100% for 950ms", "restored in 150ms", "Hint: look at the app's logs", "<https://github.com/o/r/actions/runs/1|CI run>"} {
		if !strings.Contains(text, part) {
			t.Errorf("text = %q, want it to contain %q", text, part)
		}
	}
}

func TestSummarizeFleetAndEmptyShard(t *testing.T) {
	pass := &rollback.Report{Result: rollback.ResultPass, Service: rollback.ReportService{Project: "p", Region: "r", Name: "web"}}
	fail := failedDrill()
	sec := &rollback.ShardSection{Index: 1, Count: 2, Services: 2, SelectedServices: 4, SelectedGroups: 2}
	s := Summarize("test", []*rollback.Report{pass, fail}, rollback.ResultFail, 1, sec)
	if s.Service != nil || len(s.Services) != 2 || s.Services[0].Service.Name != "api" || s.Services[1].Service.Name != "web" {
		t.Errorf("fleet summary services = %+v, want api (not passing) first, then web, and no top-level service", s.Services)
	}
	if diff := cmp.Diff(map[string]int{"pass": 1, "fail": 1}, s.Counts); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&ShardRef{Index: 1, Count: 2, Services: 2}, s.Shard); diff != "" {
		t.Errorf("shard mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(s.Text, "runrollback test FAIL (shard 1/2): 2 services: 1 pass, 1 fail\n• p/us-central1/api FAIL: verify") {
		t.Errorf("fleet text = %q", s.Text)
	}

	empty := &rollback.ShardSection{Index: 2, Count: 3, Groups: []rollback.ShardGroup{}, SelectedServices: 2, SelectedGroups: 1}
	s = Summarize("test", nil, rollback.ResultPass, 0, empty)
	if !strings.Contains(s.Text, "nothing to do") || len(s.Services) != 0 || s.Shard == nil || s.Shard.Services != 0 {
		t.Errorf("empty shard summary = %+v, want it to say there was nothing to do", s)
	}
}

func TestSummarizeCapsServices(t *testing.T) {
	var reports []*rollback.Report
	for range maxServices + 5 {
		r := failedDrill()
		r.Error = strings.Repeat("x", 2*maxField)
		reports = append(reports, r)
	}
	s := Summarize("test", reports, rollback.ResultFail, 1, nil)
	if len(s.Services) != maxServices || s.ServicesOmitted != 5 {
		t.Errorf("services %d, omitted %d; want %d and 5", len(s.Services), s.ServicesOmitted, maxServices)
	}
	if n := len([]rune(s.Text)); n > maxText {
		t.Errorf("text is %d runes, want at most %d", n, maxText)
	}
	if n := len([]rune(s.Services[0].Error)); n > maxField {
		t.Errorf("an error of %d runes, want at most %d", n, maxField)
	}
	if !strings.Contains(s.Text, "… and 195 more") {
		t.Errorf("text does not say how many more failed: %q", s.Text[len(s.Text)-80:])
	}
}

// TestPostCanary puts secrets where a careless summary would pick them up —
// the webhook's own path, query and password, echoed in the report's error,
// hint and service URI — and checks none reaches the posted body or the
// error of a failed post.
func TestPostCanary(t *testing.T) {
	const path, query, pass = "CANARYPATH8f3a91", "CANARYQUERY77d2", "CANARYPASS5c1e"
	h := newHook(t, http.StatusInternalServerError, http.StatusInternalServerError)
	raw := strings.Replace(h.srv.URL, "http://", "http://u:"+pass+"@", 1) + "/services/" + path + "?token=" + query
	tg := mustTarget(t, raw)
	r := failedDrill()
	r.Error = "probe " + raw + " failed"
	r.Hint = "token " + query + " path /services/" + path
	r.Service.URI = raw
	err := fast().Post(t.Context(), tg, Summarize("guard", []*rollback.Report{r}, r.Result, r.ExitCode, nil))
	if err == nil {
		t.Fatalf("Post() to a hook answering 500 twice = nil, want an error")
	}
	bodies := h.got()
	if len(bodies) != 2 {
		t.Fatalf("hook got %d posts, want 2 (one retry after a 500)", len(bodies))
	}
	for _, secret := range []string{path, query, pass} {
		for _, b := range bodies {
			if strings.Contains(b, secret) {
				t.Errorf("posted body holds %s: %s", secret, b)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Post() = %q, which holds %s", err, secret)
		}
	}
	if !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "2 attempts") {
		t.Errorf("Post() = %q, want it to say HTTP 500 after 2 attempts", err)
	}
}

func TestPostRetries(t *testing.T) {
	t.Run("5xx then ok", func(t *testing.T) {
		h := newHook(t, http.StatusBadGateway)
		if err := fast().Post(t.Context(), mustTarget(t, h.srv.URL), Summary{Text: "x"}); err != nil {
			t.Errorf("Post() = %v, want success on the retry", err)
		}
		if n := len(h.got()); n != 2 {
			t.Errorf("hook got %d posts, want 2", n)
		}
	})
	t.Run("4xx is not retried", func(t *testing.T) {
		h := newHook(t, http.StatusNotFound)
		err := fast().Post(t.Context(), mustTarget(t, h.srv.URL+"/gone"), Summary{Text: "x"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("Post() = %v, want HTTP 404", err)
		}
		if n := len(h.got()); n != 1 {
			t.Errorf("hook got %d posts, want 1", n)
		}
	})
	t.Run("connection refused, retried once", func(t *testing.T) {
		h := newHook(t)
		url := h.srv.URL + "/services/CANARYGONE123"
		h.srv.Close()
		err := fast().Post(t.Context(), mustTarget(t, url), Summary{Text: "x"})
		if err == nil || !strings.Contains(err.Error(), "2 attempts") || strings.Contains(err.Error(), "CANARYGONE123") {
			t.Errorf("Post() to a closed server = %v, want a redacted error after 2 attempts", err)
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		elsewhere := newHook(t)
		srv := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL, http.StatusTemporaryRedirect))
		defer srv.Close()
		err := fast().Post(t.Context(), mustTarget(t, srv.URL), Summary{Text: "x"})
		if err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("Post() = %v, want a refusal to follow the redirect", err)
		}
		if n := len(elsewhere.got()); n != 0 {
			t.Errorf("the redirect's target got %d posts, want 0", n)
		}
	})
}

// TestPostTimeout posts to a hook that never answers: Post gives up within
// its Timeout, and says so.
func TestPostTimeout(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := &Poster{Timeout: 100 * time.Millisecond, RetryDelay: time.Millisecond}
	start := time.Now()
	err := p.Post(context.Background(), mustTarget(t, srv.URL), Summary{Text: "x"})
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("Post() to a hook that hangs = %v, want no answer within 100ms", err)
	}
	select {
	case <-arrived:
	default:
		t.Errorf("the request never reached the hook")
	}
	if elapsed > 5*time.Second {
		t.Errorf("Post() took %s with a Timeout of 100ms", elapsed)
	}
}
