package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
)

// The canary is an ID token no output may ever show.
const canary = "eyJhbGciOiJSUzI1NiJ9.CANARY-7f3a9c.sig"

// startTokenFake starts the default world with api's serving plane asking
// for the canary as its bearer token, and writes the token to a file in a
// fresh directory.
func startTokenFake(t *testing.T) (f *scriptFake, dir, tokenFile string) {
	t.Helper()
	f, err := startFake(fakerun.DefaultWorld(), fakeapp.WithRequireToken(fullName("api"), canary))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	dir = t.TempDir()
	tokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, dir, tokenFile
}

// TestAuthenticatedProbes runs a drill against a service whose serving plane
// requires a bearer token: with --id-token-file the probes carry it and the
// drill passes; without it the drill refuses at preflight. Nothing the run
// prints or writes (text, verbose, JSON report, JUnit, step summary) contains
// the token.
func TestAuthenticatedProbes(t *testing.T) {
	f, dir, tokenFile := startTokenFake(t)
	summary := filepath.Join(dir, "summary.md")
	junit := filepath.Join(dir, "junit.xml")
	env := map[string]string{"GITHUB_STEP_SUMMARY": summary}

	r := runCLI(t.Context(), t, f, dir, env, drill, "--service", "api", "--verbose", "--id-token-file", tokenFile, "--junit", junit)
	wantExit(t, r, 0)
	nothingLost(t, f, "api", apiTraffic, apiTraffic)
	if counts := f.plane.Counts(fullName("api")); counts.ByStatus[http.StatusUnauthorized] != 0 {
		t.Errorf("the plane answered 401 %d times, want never", counts.ByStatus[http.StatusUnauthorized])
	}
	for _, out := range []string{"--output json"} {
		jr := runCLI(t.Context(), t, f, dir, env, drill, "--service", "api", "--verbose", "--id-token-file", tokenFile, "--output", "json")
		wantExit(t, jr, 0)
		r.stdout += "\n" + out + "\n" + jr.stdout + jr.stderr
	}
	texts := map[string]string{"stdout": r.stdout, "stderr": r.stderr}
	for _, p := range []string{summary, junit} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		texts[filepath.Base(p)] = string(b)
	}
	if r.rep == nil {
		t.Fatal("no report written")
	}
	texts["report"] = r.raw
	if !strings.Contains(r.raw, "runrollback.report/v1") || !strings.Contains(texts["junit.xml"], "<testcase") || !strings.Contains(texts["summary.md"], "preflight") {
		t.Fatalf("the report, JUnit or summary is missing: the grep below would prove nothing")
	}
	for name, text := range texts {
		if strings.Contains(text, "CANARY-7f3a9c") {
			t.Errorf("%s shows the token", name)
		}
	}

	// Without the token the service answers 401: the drill refuses, changing nothing.
	nr := runCLI(t.Context(), t, f, dir, nil, drill, "--service", "api", "--retries", "2")
	wantExit(t, nr, exitAborted)
	if !strings.Contains(nr.rep.Error, "not healthy") || !strings.Contains(nr.rep.Error, "401") {
		t.Errorf("error = %q, want unhealthy with HTTP 401", nr.rep.Error)
	}
}

// TestTokenNeverFollowsARedirect probes a URL that redirects to another host:
// the other host gets no request, so no token.
func TestTokenNeverFollowsARedirect(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	other := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
	})
	var sent string
	first := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock() // the probe may send attempts in parallel
		sent = r.Header.Get("Authorization")
		mu.Unlock()
		http.Redirect(w, r, other.URL+"/api/v1/health/", http.StatusTemporaryRedirect)
	})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(canary), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runProbe(t, "--url", first.URL, "--id-token-file", tokenFile, "--retries", "1", "--verbose")
	wantExit(t, r, exitFail)
	if sent != "Bearer "+canary {
		t.Errorf("the probed host got Authorization %q, want the token", sent)
	}
	if len(seen) != 0 {
		t.Errorf("the redirect target got %d requests (Authorization %q), want none", len(seen), seen)
	}
	if strings.Contains(r.stdout+r.stderr, "CANARY-7f3a9c") {
		t.Errorf("output shows the token:\n%s%s", r.stdout, r.stderr)
	}
}
