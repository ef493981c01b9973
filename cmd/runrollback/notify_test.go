package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

// The secret parts of the webhook URLs the tests hand out: no output may show them.
const (
	hookPathSecret  = "HOOKSECRET-91ab"
	hookQuerySecret = "QUERYSECRET-44cd"
	hookSecretPath  = "/services/T0001/B0002/" + hookPathSecret
)

func init() {
	scriptCmds["hook"] = scriptHook
	scriptCmds["drilledonce"] = scriptDrilledOnce
}

// webhook is a receiver of notifications: it keeps each request's path and
// body, and answers with status.
type webhook struct {
	srv    *httptest.Server
	status int

	mu    sync.Mutex
	paths []string
	posts []string
}

func newWebhook(status int) *webhook {
	h := &webhook{status: status}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.paths = append(h.paths, r.URL.RequestURI())
		h.posts = append(h.posts, string(b))
		h.mu.Unlock()
		w.WriteHeader(h.status)
	}))
	return h
}

// url is the hook's URL with a secret path and query, as a chat webhook's.
func (h *webhook) url() string {
	return h.srv.URL + hookSecretPath + "?token=" + hookQuerySecret
}

func (h *webhook) got() (paths, posts []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...), append([]string(nil), h.posts...)
}

// hook VAR STATUS: start a webhook answering STATUS, set VAR to its URL
// (with a secret path and query); each post it gets is written to
// hook/N.json (N from 1), and its request URI to hook/N.uri.
func scriptHook(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: hook VAR STATUS")
	}
	status, err := strconv.Atoi(args[1])
	ts.Check(err)
	dir := ts.MkAbs("hook")
	ts.Check(os.MkdirAll(dir, 0o755))
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n++
		base := filepath.Join(dir, strconv.Itoa(n))
		mu.Unlock()
		_ = os.WriteFile(base+".uri", []byte(r.URL.RequestURI()+"\n"), 0o644)
		_ = os.WriteFile(base+".json", b, 0o644)
		w.WriteHeader(status)
	}))
	ts.Defer(srv.Close)
	ts.Setenv(args[0], srv.URL+hookSecretPath+"?token="+hookQuerySecret)
}

// drilledonce REPORT...: every service of the fake was drilled by exactly one
// of the reports (single reports or fleet reports), passed there, and has
// nothing of the drill's left on it.
func scriptDrilledOnce(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 || neg {
		ts.Fatalf("usage: drilledonce REPORT...")
	}
	type rep struct {
		Result  string `json:"result"`
		Service struct{ Project, Region, Name string }
		Reports []struct {
			Result  string `json:"result"`
			Service struct{ Project, Region, Name string }
		} `json:"reports"`
	}
	count := map[string]int{}
	for _, path := range args {
		b, err := os.ReadFile(ts.MkAbs(path))
		ts.Check(err)
		var r rep
		ts.Check(json.Unmarshal(b, &r))
		if r.Reports == nil {
			r.Reports = append(r.Reports, struct {
				Result  string `json:"result"`
				Service struct{ Project, Region, Name string }
			}{r.Result, r.Service})
		}
		for _, s := range r.Reports {
			name := fmt.Sprintf("projects/%s/locations/%s/services/%s", s.Service.Project, s.Service.Region, s.Service.Name)
			if s.Result != "pass" {
				ts.Fatalf("%s: %s %s", path, name, s.Result)
			}
			count[name]++
		}
	}
	f := fakeOf(ts)
	for _, svc := range f.srv.Services() {
		if c := count[svc.GetName()]; c != 1 {
			ts.Fatalf("%s drilled %d times, want once", svc.GetName(), c)
		}
		if l := leftovers(f, svc.GetName()); len(l) > 0 {
			ts.Fatalf("left on %s: %s", svc.GetName(), strings.Join(l, "; "))
		}
	}
	if len(count) != len(f.srv.Services()) {
		ts.Fatalf("the reports drilled %d services, the fake has %d", len(count), len(f.srv.Services()))
	}
}

// TestNotifyCanary runs a failing drill of a service whose probes need an ID
// token, with the webhook URL in the environment: the hook gets one summary
// at its secret URL, and neither the token nor the URL's secret path or
// query is in the summary, stdout, stderr, the report or the JUnit file.
// A hook that refuses (HTTP 500, retried once) makes a warning, and the exit
// code stays the drill's.
func TestNotifyCanary(t *testing.T) {
	f, dir, tokenFile := startTokenFake(t)
	junit := filepath.Join(dir, "junit.xml")
	hook := newWebhook(http.StatusOK)
	t.Cleanup(hook.srv.Close)

	r := runCLI(t.Context(), t, f, dir, map[string]string{"RUNROLLBACK_NOTIFY_URL": hook.url()},
		drill, "--service", "api", "--break-env", "SOMETHING_ELSE=1", "--verbose", "--id-token-file", tokenFile, "--junit", junit)
	wantExit(t, r, exitFail)
	nothingLost(t, f, "api", apiTraffic, apiTraffic)
	paths, posts := hook.got()
	if len(posts) != 1 {
		t.Fatalf("the hook got %d posts, want 1", len(posts))
	}
	if want := hookSecretPath + "?token=" + hookQuerySecret; paths[0] != want {
		t.Errorf("the hook was called at %q, want %q", paths[0], want)
	}
	var body struct {
		Text     string `json:"text"`
		Result   string `json:"result"`
		ExitCode int    `json:"exit_code"`
		Command  string `json:"command"`
		Service  struct{ Name string }
		Hint     string           `json:"hint"`
		Timings  map[string]int64 `json:"timings_ms"`
		Exposure map[string]int64 `json:"exposure"`
	}
	if err := json.Unmarshal([]byte(posts[0]), &body); err != nil {
		t.Fatalf("posted %q: %v", posts[0], err)
	}
	if body.Result != "fail" || body.ExitCode != exitFail || body.Command != "test" || body.Service.Name != "api" ||
		!strings.Contains(body.Hint, "RUNROLLBACK_BREAK") || body.Timings["total"] == 0 || body.Exposure == nil ||
		!strings.Contains(body.Text, "runrollback test FAIL: local-project/us-central1/api") {
		t.Errorf("posted summary = %s, want the failed drill of api with its hint and timings", posts[0])
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{"posted summary": posts[0], "stdout": r.stdout, "stderr": r.stderr, "report": r.raw, "junit": string(b)}
	if r.raw == "" || !strings.Contains(string(b), "<testcase") {
		t.Fatalf("no report or JUnit file: the checks below would prove nothing")
	}
	for name, text := range texts {
		for _, secret := range []string{"CANARY-7f3a9c", hookPathSecret, hookQuerySecret} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %s", name, secret)
			}
		}
	}

	// A hook that refuses: a warning, retried once, the exit code unchanged,
	// and still no secret in what is printed.
	refusing := newWebhook(http.StatusInternalServerError)
	t.Cleanup(refusing.srv.Close)
	r = runCLI(t.Context(), t, f, dir, nil, drill, "--service", "api", "--break-env", "SOMETHING_ELSE=1",
		"--id-token-file", tokenFile, "--notify-url", refusing.url())
	wantExit(t, r, exitFail)
	if _, posts := refusing.got(); len(posts) != 2 {
		t.Errorf("the refusing hook got %d posts, want 2 (one retry)", len(posts))
	}
	if !strings.Contains(r.stderr, "[WARN] notify: POST http://127.0.0.1:") || !strings.Contains(r.stderr, "HTTP 500") || !strings.Contains(r.stderr, "the exit code is the run's") {
		t.Errorf("stderr = %q, want a warning that the post failed", r.stderr)
	}
	for _, secret := range []string{"CANARY-7f3a9c", hookPathSecret, hookQuerySecret} {
		if strings.Contains(r.stdout+r.stderr+r.raw, secret) {
			t.Errorf("output shows %s:\n%s\n%s", secret, r.stdout, r.stderr)
		}
	}
}

// TestNotifyUnreachableKeepsExitCode: a passing drill told to notify always,
// with a hook that is gone, still exits 0, with a warning.
func TestNotifyUnreachableKeepsExitCode(t *testing.T) {
	f, err := startFake(fakerun.DefaultWorld())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	gone := newWebhook(http.StatusOK)
	url := gone.url()
	gone.srv.Close()
	r := runCLI(t.Context(), t, f, t.TempDir(), nil, drill, "--service", "api", "--break", "simulate", "--notify-url", url, "--notify-on", "always")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stderr, "[WARN] notify:") || !strings.Contains(r.stderr, "(2 attempts)") {
		t.Errorf("stderr = %q, want a warning after 2 attempts", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, hookPathSecret) || strings.Contains(r.stdout+r.stderr, hookQuerySecret) {
		t.Errorf("output shows the hook's secret:\n%s\n%s", r.stdout, r.stderr)
	}
	nothingLost(t, f, "api", apiTraffic, apiTraffic)

	// With structured logs the warning is a WARNING log line.
	r = runCLI(t.Context(), t, f, t.TempDir(), nil, drill, "--service", "api", "--break", "simulate", "--notify-url", url, "--notify-on", "always", "--log-format", "json")
	wantExit(t, r, exitOK)
	var warned bool
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var ev struct{ Severity, Step, Message string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v", line, err)
		}
		if ev.Step == "notify" && ev.Severity == "WARNING" && strings.Contains(ev.Message, "(2 attempts)") {
			warned = true
		}
		if strings.Contains(line, hookPathSecret) || strings.Contains(line, hookQuerySecret) {
			t.Errorf("log line shows the hook's secret: %s", line)
		}
	}
	if !warned {
		t.Errorf("no WARNING log for the failed post:\n%s", r.stderr)
	}
}
