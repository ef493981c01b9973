package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runrollback/runrollback/internal/probe"
)

// runProbe runs `runrollback probe` in-process.
func runProbe(t *testing.T, args ...string) cliRun {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append([]string{"runrollback", "probe", "--retry-delay", "10ms", "--successes", "1"}, args...)
	code := run(t.Context(), argv, &out, &errb, func(string) string { return "" })
	return cliRun{code: code, stdout: out.String(), stderr: errb.String()}
}

func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func probeCases() []faultCase {
	return []faultCase{
		{"Probe", "a server that hangs", "each attempt ends at --timeout; unhealthy (exit 1)",
			func(t *testing.T, _ *scriptFake, _ string) {
				s := server(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
				r := runProbe(t, "--url", s.URL, "--timeout", "200ms", "--retries", "1")
				wantExit(t, r, exitFail)
				if !strings.Contains(r.stdout, "error") {
					t.Errorf("stdout = %q, want the attempts reported as errors", r.stdout)
				}
			}},
		{"Probe", "5xx answers", "unhealthy (exit 1)",
			func(t *testing.T, _ *scriptFake, _ string) {
				s := server(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
				r := runProbe(t, "--url", s.URL, "--retries", "2")
				wantExit(t, r, exitFail)
				if !strings.Contains(r.stdout, "HTTP 500") {
					t.Errorf("stdout = %q, want HTTP 500", r.stdout)
				}
			}},
		{"Probe", "200 from the wrong revision", "not converged, never healthy",
			func(t *testing.T, _ *scriptFake, _ string) {
				s := server(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Served-By", "api-drill-x")
					fmt.Fprint(w, `{"status":"healthy","version":"1.1.0"}`)
				})
				c := &probe.Checker{Timeout: 200e6}
				v := c.WaitHealthy(t.Context(), s.URL, probe.Expect{Revisions: []string{"api-00002-def"}}, probe.Policy{Retries: 2, Parallel: 1})
				if v.Healthy || v.NotConverged != 3 {
					t.Errorf("WaitHealthy = healthy %v, not converged %d; want false, 3", v.Healthy, v.NotConverged)
				}
			}},
		{"Probe", "a flapping service", "every other answer fails: 2 failing among the last 11 answers make it unhealthy (exit 1)",
			func(t *testing.T, _ *scriptFake, _ string) {
				var n atomic.Int64
				s := server(t, func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1)%2 == 0 {
						http.Error(w, `{"status":"unhealthy"}`, http.StatusServiceUnavailable)
						return
					}
					fmt.Fprint(w, `{"status":"healthy"}`)
				})
				wantExit(t, runProbe(t, "--url", s.URL, "--retries", "5", "--successes", "10"), exitFail)
			}},
		{"Probe", "a 1 GiB body", "read capped at 1 MiB, the answer unhealthy, the connection dropped",
			func(t *testing.T, _ *scriptFake, _ string) {
				var sent atomic.Int64
				s := server(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					chunk := bytes.Repeat([]byte(" "), 64<<10)
					for range (1 << 30) / len(chunk) {
						if _, err := w.Write(chunk); err != nil {
							return
						}
						sent.Add(int64(len(chunk)))
					}
				})
				r := runProbe(t, "--url", s.URL, "--retries", "0")
				wantExit(t, r, exitFail)
				if got := sent.Load(); got > 64<<20 {
					t.Errorf("the server sent %d bytes before the probe hung up; want it cut off near 1 MiB", got)
				}
			}},
		{"Probe", "a redirect to another host, or to a link-local address", "never followed (no request reaches the target), unhealthy",
			func(t *testing.T, _ *scriptFake, _ string) {
				var hits atomic.Int64
				other := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
				for _, to := range []string{other.URL + "/api/v1/health/", "http://169.254.169.254/computeMetadata/v1/"} {
					s := server(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) })
					r := runProbe(t, "--url", s.URL, "--retries", "0")
					wantExit(t, r, exitFail)
					if !strings.Contains(r.stdout, "redirect") {
						t.Errorf("stdout = %q, want the redirect reported", r.stdout)
					}
				}
				if hits.Load() != 0 {
					t.Errorf("the redirect target got %d requests, want 0", hits.Load())
				}
			}},
		{"Probe", "a body with `::` workflow commands and ANSI escapes", "shown escaped: no output line starts with `::`, no raw escape byte",
			func(t *testing.T, _ *scriptFake, _ string) {
				s := server(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Served-By", "::set-output name=x::y")
					w.WriteHeader(http.StatusServiceUnavailable)
					io.WriteString(w, "{\"status\":\"::error::pwned\\u001b[31m\\nnext\",\"version\":\"::warning::v\"}")
				})
				for _, output := range []string{"text", "json"} {
					r := runProbe(t, "--url", s.URL, "--retries", "0", "--output", output)
					wantExit(t, r, exitFail)
					for _, line := range strings.Split(r.stdout+r.stderr, "\n") {
						if strings.HasPrefix(strings.TrimSpace(line), "::") || strings.ContainsRune(line, 0x1b) {
							t.Errorf("--output %s: unsafe line %q", output, line)
						}
					}
				}
			}},
	}
}
