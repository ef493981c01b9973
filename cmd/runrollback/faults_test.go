package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

var updateReliability = flag.Bool("update-reliability", false, "rewrite RELIABILITY.md from the fault matrix results")

// cliRun is one in-process run of the command against a fake.
type cliRun struct {
	code   int
	rep    *rollback.Report
	raw    string // the JSON report as written
	stdout string
	stderr string
}

// runCLI runs the real command line in-process against f. Flags that urfave/cli
// reads from the process environment are passed explicitly.
func runCLI(ctx context.Context, t *testing.T, f *scriptFake, stateDir string, env map[string]string, args ...string) cliRun {
	t.Helper()
	vars := f.env(stateDir)
	for k, v := range env {
		vars[k] = v
	}
	reportPath := filepath.Join(t.TempDir(), "report.json")
	argv := append([]string{"runrollback"}, args...)
	argv = append(argv, "--emulator-host", f.srv.Addr, "--project", "local-project", "--region", "us-central1", "--report", reportPath)
	if args[0] != "snapshot" {
		argv = append(argv, "--retry-delay", "20ms")
	}
	var out, errb bytes.Buffer
	r := cliRun{code: run(ctx, argv, &out, &errb, func(k string) string { return vars[k] })}
	r.stdout, r.stderr = out.String(), errb.String()
	if b, err := os.ReadFile(reportPath); err == nil {
		r.raw = string(b)
		r.rep = new(rollback.Report)
		if err := json.Unmarshal(b, r.rep); err != nil {
			t.Fatalf("report: %v", err)
		}
	}
	return r
}

func trafficOf(f *scriptFake, name string) string {
	return renderTargets(f.srv.Service(fullName(name)).GetTraffic())
}

func actualOf(f *scriptFake, name string) string {
	return renderTargets(f.srv.Service(fullName(name)).GetTrafficStatuses())
}

// faultCase is one row of the fault matrix (RELIABILITY.md).
type faultCase struct {
	group, name string
	// asserts says, for RELIABILITY.md, what the case checks beyond "nothing lost".
	asserts string
	run     func(t *testing.T, f *scriptFake, state string)
}

// nothingLost checks the safety rule: the traffic list and the actual split are
// as before, and no tag, annotation, revision or template change of ours is left.
func nothingLost(t *testing.T, f *scriptFake, name, traffic, actual string) {
	t.Helper()
	if got := trafficOf(f, name); !matches(traffic, got) {
		t.Errorf("traffic of %s = %q, want %q", name, got, traffic)
	}
	if got := actualOf(f, name); !matches(actual, got) {
		t.Errorf("actual split of %s = %q, want %q", name, got, actual)
	}
	if l := leftovers(f, name); len(l) > 0 {
		t.Errorf("left on %s: %s", name, strings.Join(l, "; "))
	}
}

func wantExit(t *testing.T, r cliRun, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

const (
	apiTraffic = "api-00002-def=100"
	drill      = "test"
)

// cleanDrillWrites is what a clean default drill of api writes to the service:
// deploy (with the lease), template back, shift, restore (with the release).
const cleanDrillWrites = 4

func faultCases() []faultCase {
	return []faultCase{
		{"API", "UNAVAILABLE twice, then OK", "the writes are retried and the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailAfter("UpdateService", 1, 2, codes.Unavailable, "try again")
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), 0)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "UNAVAILABLE for longer than the call deadline", "the drill stops before any write (exit 3)",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailNext("GetService", 1000, codes.Unavailable, "down")
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, exitAborted)
				if w := f.srv.Writes() - f.writes0; w != 0 {
					t.Errorf("writes = %d, want 0", w)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "the update applies but its reply is lost (DEADLINE_EXCEEDED)", "settled by reading the generation: no second write",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.LoseReply("UpdateService", 2, codes.DeadlineExceeded) // the deploy (with the lease) and the template
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), 0)
				if got := f.srv.Calls()["UpdateService"]; got != cleanDrillWrites {
					t.Errorf("UpdateService calls = %d, want %d (no duplicate write)", got, cleanDrillWrites)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "the operation ends in error", "the drill stops (exit 3); nothing was applied",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailOperations(1, codes.Internal, "rollout failed")
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), exitAborted)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "an operation poll fails", "the operation is polled again, not lost; the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.HoldOperations(true)
				f.srv.FailNext("WaitOperation", 2, codes.Unavailable, "poll failed")
				stop := releaseLoop(f)
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				stop()
				wantExit(t, r, 0)
				if got := f.srv.Calls()["WaitOperation"]; got < 3 {
					t.Errorf("WaitOperation calls = %d, want the 2 failed waits and more", got)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "an operation never finishes", "the restore waits for it for --restore-timeout, then exit 4 naming the operation; `recover` completes it",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.HoldOperationsAfter(3) // deploy (with the lease), template, shift finish; the restore hangs
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api", "--operation-timeout", "300ms", "--restore-timeout", "2s")
				wantExit(t, r, exitNotRestored)
				if !strings.Contains(r.rep.Hint, "runrollback recover") || !strings.Contains(r.rep.Hint, "/operations/") {
					t.Errorf("hint = %q, want the recover command and the operation name", r.rep.Hint)
				}
				f.srv.HoldOperations(false)
				f.srv.ReleaseOperations()
				wantExit(t, runCLI(t.Context(), t, f, state, nil, "recover", "--service", "api", "--operation-timeout", "5s"), 0)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "RESOURCE_EXHAUSTED with retry info", "retried after the delay the server asks for; the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				st, _ := status.New(codes.ResourceExhausted, "write quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(50 * time.Millisecond)})
				f.srv.FailNextWithDetails("UpdateService", 1, st)
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), 0)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "RESOURCE_EXHAUSTED on the restore, longer than the usual retries", "the restore waits for the quota instead of giving up with users on the broken revision; the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailAfter("UpdateService", 3, 8, codes.ResourceExhausted, "write quota exceeded") // deploy, template, shift go; the restore is refused 8 times
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, 0)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "the shift refused (PERMISSION_DENIED)", "exit 3; not mistaken for another writer's change; no exposure reported",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailAfter("UpdateService", 2, 1, codes.PermissionDenied, "denied") // deploy, template go
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, exitAborted)
				if strings.Contains(r.rep.Error, "someone else") || r.rep.Exposure.MS != 0 {
					t.Errorf("error %q, exposure %+v; want the refusal, and no exposure", r.rep.Error, r.rep.Exposure)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "PERMISSION_DENIED on the first write", "exit 3, no write applied, nothing half-done",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailNext("UpdateService", 1, codes.PermissionDenied, "run.services.update denied")
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, exitAborted)
				if w := f.srv.Writes() - f.writes0; w != 0 {
					t.Errorf("writes = %d, want 0", w)
				}
				if !strings.Contains(r.rep.Error, "run.services.update denied") {
					t.Errorf("error = %q, want the API's message", r.rep.Error)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"API", "UNAUTHENTICATED mid-run (on the shift)", "the drill stops and restores (exit 3)",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailAfter("UpdateService", 2, 1, codes.Unauthenticated, "token expired") // deploy, template go
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), exitAborted)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Conflicts", "a concurrent deploy between our read and our first write", "exit 3; their deploy stands; nothing of ours is left",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.BeforeWrite(func(s *runpb.Service) {
					s.Template.Containers[0].Image = "app:someone-elses"
				})
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), exitAborted)
				svc := f.srv.Service(fullName("api"))
				if svc.GetTemplate().GetContainers()[0].GetImage() != "app:someone-elses" {
					t.Errorf("their deploy was undone: image %s", svc.GetTemplate().GetContainers()[0].GetImage())
				}
				if rollback.HasRunAnnotations(svc.GetAnnotations()) {
					t.Errorf("annotations left: %v", svc.GetAnnotations())
				}
			}},
		{"Conflicts", "someone else moves traffic off the broken revision after our shift", "their split stands; exit 3 with the diff; our revision, tag, template and lease are gone",
			func(t *testing.T, f *scriptFake, state string) {
				r := pausedThen(t, f, state, rollback.StepDetect, func() {
					f.srv.BeforeWrite(func(s *runpb.Service) {
						s.Traffic = []*runpb.TrafficTarget{pinTarget("api-00001-abc", 100)}
					})
				})
				wantExit(t, r, exitAborted)
				if !strings.Contains(r.rep.Error, "someone else changed the traffic") {
					t.Errorf("error = %q, want the diff", r.rep.Error)
				}
				nothingLost(t, f, "api", "api-00001-abc=100", "api-00001-abc=100")
			}},
		{"Conflicts", "someone else changes the split but leaves the broken revision in it", "only the drill's share moves back to the last good revision; exit 3",
			func(t *testing.T, f *scriptFake, state string) {
				var broken string
				r := pausedThen(t, f, state, rollback.StepDetect, func() {
					for _, tt := range f.srv.Service(fullName("api")).GetTraffic() {
						if strings.Contains(tt.GetRevision(), "-drill-") {
							broken = tt.GetRevision()
						}
					}
					f.srv.BeforeWrite(func(s *runpb.Service) {
						s.Traffic = []*runpb.TrafficTarget{pinTarget("api-00001-abc", 50), pinTarget(broken, 50)}
					})
				})
				wantExit(t, r, exitAborted)
				nothingLost(t, f, "api", "api-00001-abc=50, api-00002-def=50", "api-00001-abc=50, api-00002-def=50")
			}},
		{"Conflicts", "two drills at once", "the second exits 3 before writing anything; the first (then interrupted) restores",
			func(t *testing.T, f *scriptFake, state string) {
				var second cliRun
				var writes int
				r := pausedThen(t, f, state, rollback.StepDetect, func() {
					before := f.srv.Writes()
					second = runCLI(t.Context(), t, f, t.TempDir(), nil, drill, "--service", "api")
					writes = f.srv.Writes() - before
				})
				wantExit(t, second, exitAborted)
				if writes != 0 || !strings.Contains(second.rep.Error, "lease is held") {
					t.Errorf("second drill: %d writes, error %q; want none and a held lease", writes, second.rep.Error)
				}
				wantExit(t, r, exitAborted) // the first was interrupted at detect
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Conflicts", "an expired lease", "taken over with a warning; the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				c := adapterFor(t, f)
				svc, err := c.GetService(t.Context(), scriptRef("api"))
				if err != nil {
					t.Fatal(err)
				}
				old := rollback.Lease{ID: "old", Owner: "gone@runner", Command: "test", Started: time.Now().Add(-time.Hour), Expires: time.Now().Add(-time.Minute)}
				ann, _ := rollback.WithRunAnnotations(svc.Annotations, old, rollback.Journal{Schema: rollback.JournalSchema, ID: "old", Snapshot: rollback.TakeSnapshot(svc, time.Now())})
				if _, err := c.SetAnnotations(t.Context(), scriptRef("api"), svc.Etag, ann); err != nil {
					t.Fatal(err)
				}
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, 0)
				if !strings.Contains(strings.Join(r.rep.Warnings, "\n"), "taking over an expired lease of gone@runner") {
					t.Errorf("warnings = %v, want the takeover", r.rep.Warnings)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Conflicts", "the rollback target revision deleted before the guard", "guard exits 1 saying the target is gone; nothing changed",
			func(t *testing.T, f *scriptFake, state string) {
				snap := filepath.Join(t.TempDir(), "snap.json")
				wantExit(t, runCLI(t.Context(), t, f, state, nil, "snapshot", "--service", "checkout", "--out", snap), 0)
				c := adapterFor(t, f)
				ref := scriptRef("checkout")
				svc, _ := c.GetService(t.Context(), ref)
				if _, err := c.DeployRevision(t.Context(), ref, svc.Etag, rollback.Deploy{Revision: "checkout-00009-bad",
					Env: map[string]string{"RUNROLLBACK_BREAK": "health"}, Traffic: rollback.Split{{Revision: "checkout-00009-bad", Percent: 100}}}); err != nil {
					t.Fatal(err)
				}
				if err := c.DeleteRevision(t.Context(), ref, "checkout-00002-bbb"); err != nil {
					t.Fatal(err)
				}
				r := runCLI(t.Context(), t, f, state, nil, "guard", "--service", "checkout", "--restore-from", snap, "--retries", "1")
				wantExit(t, r, exitFail)
				if !strings.Contains(r.rep.Error, "checkout-00002-bbb") {
					t.Errorf("error = %q, want it to name the missing revision", r.rep.Error)
				}
				if got := trafficOf(f, "checkout"); got != "checkout-00009-bad=100" {
					t.Errorf("traffic = %s, want it unchanged", got)
				}
				if l := leftovers(f, "checkout"); slices.ContainsFunc(l, func(s string) bool { return strings.HasPrefix(s, "annotation") }) {
					t.Errorf("left: %v", l)
				}
			}},
		{"Conflicts", "a LATEST-tracking service", "LATEST is pinned before the broken revision exists; the list comes back verbatim",
			func(t *testing.T, f *scriptFake, state string) {
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "web"), 0)
				nothingLost(t, f, "web", "LATEST=100", "web-000[0-9]+-[a-z0-9]+=100")
			}},
		{"Conflicts", "a drill revision that never becomes Ready", "the split never moves; the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api", "--break", "startup"), 0)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Process", "SIGINT at every step (the real binary, paused there)", "exit 3 before restore; restore, verify and cleanup are not abandoned (exit 0)",
			func(t *testing.T, _ *scriptFake, _ string) { runScripts(t, interruptScripts(t, "INT")) }},
		{"Process", "SIGTERM at every step", "as SIGINT",
			func(t *testing.T, _ *scriptFake, _ string) { runScripts(t, interruptScripts(t, "TERM")) }},
		{"Process", "SIGKILL at every step, then `runrollback recover` (api; web and checkout at detect and cleanup)", "recover finishes the job from the journal, and a second recover finds nothing in flight",
			func(t *testing.T, _ *scriptFake, _ string) { runScripts(t, interruptScripts(t, "KILL")) }},
	}
}

// safetyCases are the classes of "never worse" faults: each is a way a run
// could leave a service worse, judged by reading the service through the
// fake's inspection API before and after.
func safetyCases() []faultCase {
	return []faultCase{
		{"Outcomes", "rollback: the write applies, its reply is lost (INTERNAL)", "a read settles it: traffic moved and verified, exit 0, never \"nothing was changed\"",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.LoseReply("UpdateService", 1, codes.Internal)
				r := runCLI(t.Context(), t, f, state, nil, "rollback", "--service", "api", "--to", "api-00001-abc")
				wantExit(t, r, exitOK)
				if strings.Contains(r.rep.Hint+r.stdout, "nothing was changed") {
					t.Errorf("claims nothing changed: %s", r.stdout)
				}
				if got := trafficOf(f, "api"); got != "api-00001-abc=100" {
					t.Errorf("traffic = %s, want api-00001-abc=100", got)
				}
			}},
		{"Outcomes", "rollback refused (PERMISSION_DENIED)", "exit 3 and \"nothing was changed\", proven by a read",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailNext("UpdateService", 1, codes.PermissionDenied, "denied")
				r := runCLI(t.Context(), t, f, state, nil, "rollback", "--service", "api", "--to", "api-00001-abc")
				wantExit(t, r, exitAborted)
				if !strings.Contains(r.rep.Hint, "nothing was changed") {
					t.Errorf("hint = %q", r.rep.Hint)
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Outcomes", "the write that takes the lease (the deploy) applies, its reply is lost (INTERNAL)", "a read settles it: the drill goes on (the service shows the lease) and passes; the next drill is not blocked",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.LoseReply("UpdateService", 1, codes.Internal)
				wantExit(t, runCLI(t.Context(), t, f, state, nil, drill, "--service", "api"), exitOK)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
				wantExit(t, runCLI(t.Context(), t, f, t.TempDir(), nil, drill, "--service", "api"), exitOK)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Outcomes", "guard --candidate: the promotion's operation poll fails (NOT_FOUND, then UNAUTHENTICATED)", "the promotion applied: it is waited for and verified (exit 0), never \"aborted, nothing changed\"",
			func(t *testing.T, f *scriptFake, state string) {
				stageCandidate(t, f, "api", "api-00003-new", "candidate", map[string]string{"APP_VERSION": "1.2.0"})
				f.srv.HoldOperations(true)
				f.srv.FailNext("WaitOperation", 1, codes.NotFound, "operation not found")
				f.srv.FailNext("GetOperation", 1, codes.NotFound, "operation not found")
				f.srv.FailAfter("WaitOperation", 0, 1, codes.Unauthenticated, "token expired")
				stop := releaseLoop(f)
				r := runCLI(t.Context(), t, f, state, nil, "guard", "--service", "api", "--candidate", "candidate", "--expect-version", "1.2.0")
				stop()
				wantExit(t, r, exitOK)
				if got := trafficOf(f, "api"); got != "api-00003-new=100@candidate, api-00003-new=0@last-good" {
					t.Errorf("traffic = %s", got)
				}
				if l := leftovers(f, "api"); slices.ContainsFunc(l, func(s string) bool { return strings.HasPrefix(s, "annotation") }) {
					t.Errorf("left: %v", l)
				}
			}},
		{"Restore budget", "UNAVAILABLE for about a second on the restore write", "the restore retries with backoff for its budget: users are back, the drill passes",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailAfter("UpdateService", 3, 15, codes.Unavailable, "try again") // deploy, template, shift go; 15 refusals
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, exitOK)
				if f.srv.Calls()["UpdateService"] < 2+15+1 {
					t.Errorf("UpdateService calls = %d, want the 15 refusals and more", f.srv.Calls()["UpdateService"])
				}
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Restore budget", "UNAVAILABLE on the restore for longer than --restore-timeout", "exit 4, the recover command in the hint; `recover` then finishes",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailAfter("UpdateService", 3, 100000, codes.Unavailable, "down") // from the restore on
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api", "--restore-timeout", "1s")
				wantExit(t, r, exitNotRestored)
				if !strings.Contains(r.rep.Hint, "runrollback recover") {
					t.Errorf("hint = %q", r.rep.Hint)
				}
				f.srv.ResetFaults()
				wantExit(t, runCLI(t.Context(), t, f, state, nil, "recover", "--service", "api"), exitOK)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Restore budget", "guard: UNAVAILABLE for about a second on the rollback write", "retried for its budget: rolled back, exit 1 (the deploy was bad), lease gone",
			func(t *testing.T, f *scriptFake, state string) {
				snap := filepath.Join(t.TempDir(), "snap.json")
				wantExit(t, runCLI(t.Context(), t, f, state, nil, "snapshot", "--service", "api", "--out", snap), exitOK)
				deployOther(t, f, "api", "api-00003-bad", map[string]string{"RUNROLLBACK_BREAK": "health"})
				f.srv.FailNext("UpdateService", 15, codes.Unavailable, "try again")
				r := runCLI(t.Context(), t, f, state, nil, "guard", "--service", "api", "--restore-from", snap, "--retries", "1")
				wantExit(t, r, exitFail)
				if got, act := trafficOf(f, "api"), actualOf(f, "api"); got != apiTraffic || act != apiTraffic {
					t.Errorf("traffic %s, actual %s; want %s", got, act, apiTraffic)
				}
				if rollback.HasRunAnnotations(f.srv.Service(fullName("api")).GetAnnotations()) {
					t.Errorf("lease left")
				}
			}},
		{"Left behind", "Cloud Run refuses to delete the broken revision", "not a PASS: exit 5, left_behind names the revision, the hint the command that deletes it; traffic, template and lease are back",
			func(t *testing.T, f *scriptFake, state string) {
				f.srv.FailNext("DeleteRevision", 1000, codes.FailedPrecondition, "Revision is still in use")
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, exitLeftBehind)
				if len(r.rep.LeftBehind) != 1 || !strings.Contains(r.rep.LeftBehind[0], "api-drill-") || r.rep.Result == "pass" {
					t.Errorf("result %s, left_behind %v", r.rep.Result, r.rep.LeftBehind)
				}
				if !strings.Contains(r.rep.Hint, "gcloud run revisions delete api-drill-") || !strings.Contains(r.stdout, "left behind on the service") {
					t.Errorf("hint %q; stdout:\n%s", r.rep.Hint, r.stdout)
				}
				if l := leftovers(f, "api"); len(l) != 1 || !strings.HasPrefix(l[0], "revision api-drill-") {
					t.Errorf("left on api: %v, want the revision only", l)
				}
				if got, act := trafficOf(f, "api"), actualOf(f, "api"); got != apiTraffic || act != apiTraffic {
					t.Errorf("traffic %s, actual %s", got, act)
				}
			}},
		{"Left behind", "the lease cannot be released (PERMISSION_DENIED)", "not a PASS: exit 5, left_behind names the lease, the hint `runrollback recover`, which then removes it",
			func(t *testing.T, f *scriptFake, state string) {
				// deploy, template, shift go; the restore with the release is
				// refused, the restore alone goes, the release is refused.
				f.srv.FailAfter("UpdateService", 3, 1, codes.PermissionDenied, "denied")
				f.srv.FailAfter("UpdateService", 1, 1000, codes.PermissionDenied, "denied")
				r := runCLI(t.Context(), t, f, state, nil, drill, "--service", "api")
				wantExit(t, r, exitLeftBehind)
				if len(r.rep.LeftBehind) != 1 || !strings.Contains(r.rep.LeftBehind[0], "lease") || !strings.Contains(r.rep.Hint, "runrollback recover") {
					t.Errorf("left_behind %v, hint %q", r.rep.LeftBehind, r.rep.Hint)
				}
				if got := trafficOf(f, "api"); got != apiTraffic {
					t.Errorf("traffic %s", got)
				}
				f.srv.ResetFaults()
				wantExit(t, runCLI(t.Context(), t, f, state, nil, "recover", "--service", "api"), exitOK)
				nothingLost(t, f, "api", apiTraffic, apiTraffic)
			}},
		{"Break window", "a deploy by someone else while the template carries the break (web, LATEST), and one after it is back (checkout)", "the template carries the break for one write; a revision that copied it is named with its env, the break taken out of the template (their change kept), exit 5 with the fix; a later deploy inherits nothing (exit 3, nothing left)",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "drill_concurrent_deploy.txtar") }},
		{"Late conflicts", "someone moves traffic after the restore, during verify or cleanup", "their split stands; exit 3 with the difference (was 1 in verify, 0 in cleanup)",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "drill_conflict_late.txtar") }},
		{"Ownership", "drill A stalls past its lease while its revision is up; a second drill; recover beside the live drill", "the second drill does not take A over (exit 3, nothing written); recover on A's machine while A runs asks for --force, its lease expired or not; A, woken, puts everything back; killed, recover finishes it (a run removes only its own lease: unit-tested)",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "recover_ownership.txtar") }},
		{"Recover decisions", "a person's 50/50 after a killed drill; a guard killed mid-rollback after a LATEST=100 deploy", "recover from another machine keeps the person's split (exit 3); the guard's rollback ends on the snapshot's pinned split, not LATEST=100",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "recover_decisions.txtar") }},
		{"Corrupted journals", "the local journal truncated, the service's journal or lease annotation garbled, or both journals", "the other copy is used, then the service's own state; where the split before the drill cannot be known, exit 4 with the commands that finish the job, never \"nothing was changed\"",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "recover_corrupt.txtar") }},
		{"Limits", "service names of 34, 35, 37, 38, 44, 46 and 49 characters (tag + name at most 46)", "the drill's tag is drill-<id>, else d<id> shortened to the room; the guard's last-good, else good, else lg; where no tag fits, exit 2 up front saying what still works (guard --restore-from passes untagged)",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "tag_limits.txtar") }},
		{"Limits", "annotations that leave no room for the journal (256 KiB in all)", "the guard's rollback is written without its journal and users are restored (exit 1, the deploy was bad); a drill stops before changing anything (exit 3); the journal on the service is compact (a 64 MB template adds nothing to it; measured in internal/rollback)",
			func(t *testing.T, _ *scriptFake, _ string) { runScript(t, "journal_no_room.txtar") }},
	}
}

// runScript runs one script of testdata/script against its own fake.
func runScript(t *testing.T, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "script", name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	runScripts(t, dir)
}

// stageCandidate deploys a revision with no traffic and a tag, as
// 'gcloud run deploy --no-traffic --tag TAG' does.
func stageCandidate(t *testing.T, f *scriptFake, service, rev, tag string, env map[string]string) {
	t.Helper()
	c := adapterFor(t, f)
	ref := scriptRef(service)
	svc, err := c.GetService(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	traffic := append(rollback.Resolve(svc.Traffic, svc.LatestReadyRevision), rollback.Target{Revision: rev, Tag: tag})
	if _, err := c.DeployRevision(t.Context(), ref, svc.Etag, rollback.Deploy{Revision: rev, Env: env, Traffic: traffic}); err != nil {
		t.Fatal(err)
	}
}

// deployOther plays a deploy workflow: a revision from the current template
// with env changes, sent 100% of traffic (tags stay where they were).
func deployOther(t *testing.T, f *scriptFake, service, rev string, env map[string]string) {
	t.Helper()
	c := adapterFor(t, f)
	ref := scriptRef(service)
	svc, err := c.GetService(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	traffic := rollback.Split{{Revision: rev, Percent: 100}}
	for _, x := range rollback.Resolve(svc.Traffic, svc.LatestReadyRevision) {
		if x.Tag != "" {
			traffic = append(traffic, rollback.Target{Revision: x.Revision, Tag: x.Tag})
		}
	}
	if _, err := c.DeployRevision(t.Context(), ref, svc.Etag, rollback.Deploy{Revision: rev, Env: env, Traffic: traffic}); err != nil {
		t.Fatal(err)
	}
}

func pinTarget(rev string, pct int32) *runpb.TrafficTarget {
	return &runpb.TrafficTarget{Type: runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION, Revision: rev, Percent: pct}
}

// releaseLoop completes held operations as they come, until stopped.
func releaseLoop(f *scriptFake) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f.srv.ReleaseOperations()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// pausedThen runs a drill of api that pauses before step, runs between while it
// is paused, then interrupts it (as SIGINT would) and returns its result.
func pausedThen(t *testing.T, f *scriptFake, state, step string, between func()) cliRun {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "paused")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res := make(chan cliRun, 1)
	go func() {
		res <- runCLI(ctx, t, f, state, map[string]string{"RUNROLLBACK_PAUSE_AT": step, "RUNROLLBACK_PAUSE_FILE": marker}, drill, "--service", "api")
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !fileExists(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("the drill did not pause before %s", step)
		}
		time.Sleep(2 * time.Millisecond)
	}
	between()
	cancel()
	return <-res
}

func adapterFor(t *testing.T, f *scriptFake) *cloudrun.Client {
	t.Helper()
	c, err := dialFake(f.srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestFaultMatrix runs every case of the fault matrix against its own fake.
// With -update-reliability it writes RELIABILITY.md from the results.
func TestFaultMatrix(t *testing.T) {
	cases := append(append(faultCases(), safetyCases()...), probeCases()...)
	results := make([]bool, len(cases))
	t.Run("cases", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				f, err := startFake(fakerun.DefaultWorld())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(f.close)
				tc.run(t, f, t.TempDir())
				results[i] = !t.Failed()
			})
		}
	})
	if *updateReliability {
		if err := writeReliability("../../RELIABILITY.md", cases, results); err != nil {
			t.Fatal(err)
		}
	}
}

func writeReliability(path string, cases []faultCase, results []bool) error {
	var b strings.Builder
	b.WriteString(reliabilityHead)
	fmt.Fprintf(&b, "\nLast run: %s, %s %s/%s, %d CPUs.\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	group := ""
	for i, c := range cases {
		if c.group != group {
			group = c.group
			fmt.Fprintf(&b, "\n### %s\n\n| case | asserts (besides nothing lost) | last run |\n|---|---|---|\n", group)
		}
		res := "pass"
		if !results[i] {
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.name, c.asserts, res)
	}
	b.WriteString(reliabilityTail)
	// The out-of-process battery (battery/) writes its own section at the
	// end of the file, after its marker: keep it.
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), "<!-- out-of-process battery:"); i >= 0 {
			b.WriteString("\n" + string(old[i:]))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const reliabilityHead = `# Reliability

runrollback's first law: never leave a service worse than it found it. Every row below is an
automated test of the real command against the fake Cloud Run (` + "`fakes/`" + `), with faults injected
deterministically. Unless a row says otherwise, each asserts that **nothing is lost**: the traffic
list after equals the list before, entry for entry; the actual split equals it; and no drill tag,
runrollback annotation, drill revision or template change is left on the service.

This file is written by the test itself, from the results of the run:

    go test ./cmd/runrollback -run TestFaultMatrix -update-reliability

(CI runs the same cases with -race on every push, without rewriting this file.)
`

const reliabilityTail = `
The safety core's decisions (the outcome of a write, restore and cleanup decisions,
ours against theirs, retries within the restore budget, guard, rollback, promote and
recover outcomes, journals worked out from the service's state, tag lengths, the
journal's size against the largest template) are also unit-tested in
` + "`internal/rollback`" + ` against an in-memory Cloud Run.
Probe classification, hardening and parsing are also covered by the unit tests of
` + "`internal/probe`" + ` (each outcome, the three health formats, tokens only to allowed hosts); the
adapter's retry, lost-reply and operation-polling logic by ` + "`internal/cloudrun`" + `'s tests.
`

// Script commands of the safety battery, beside the shared ones.
func init() {
	// template SERVICE KEY[=VALUE]: the service's template sets env KEY (to VALUE).
	scriptCmds["template"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: template SERVICE KEY[=VALUE]")
		}
		svc := fakeOf(ts).srv.Service(fullName(args[0]))
		k, v, hasValue := strings.Cut(args[1], "=")
		found := false
		for _, e := range svc.GetTemplate().GetContainers()[0].GetEnv() {
			if e.GetName() == k && (!hasValue || e.GetValue() == v) {
				found = true
			}
		}
		if found == neg {
			ts.Fatalf("template of %s: env %s set = %v, want %v (env %v)", args[0], args[1], found, !neg, svc.GetTemplate().GetContainers()[0].GetEnv())
		}
	}
	// deploylatest SERVICE REVISION [KEY=VALUE...]: another writer deploys a
	// revision from the current template with env changes and sends users to
	// LATEST (what 'gcloud run deploy' writes), tags staying where they were.
	scriptCmds["deploylatest"] = func(ts *testscript.TestScript, neg bool, args []string) {
		c := adapter(ts)
		ref := scriptRef(args[0])
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		env := map[string]string{}
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		traffic := rollback.Split{{Latest: true, Percent: 100}}
		for _, t := range rollback.Resolve(svc.Traffic, svc.LatestReadyRevision) {
			if t.Tag != "" {
				traffic = append(traffic, rollback.Target{Revision: t.Revision, Tag: t.Tag})
			}
		}
		_, err = c.DeployRevision(context.Background(), ref, svc.Etag, rollback.Deploy{Revision: args[1], Env: env, Traffic: traffic})
		ts.Check(err)
	}
	// settraffic SERVICE SPLIT: another writer (a person) sets the traffic,
	// as "rev=pct@tag,...".
	scriptCmds["settraffic"] = func(ts *testscript.TestScript, neg bool, args []string) {
		c := adapter(ts)
		ref := scriptRef(args[0])
		split, err := rollback.ParseSplit(args[1])
		ts.Check(err)
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		_, err = c.UpdateTraffic(context.Background(), ref, svc.Etag, split)
		ts.Check(err)
	}
	// annotate SERVICE KEY BYTES: another writer puts an annotation of BYTES
	// bytes on the service.
	scriptCmds["annotate"] = func(ts *testscript.TestScript, neg bool, args []string) {
		c := adapter(ts)
		ref := scriptRef(args[0])
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		ann := maps.Clone(svc.Annotations)
		if ann == nil {
			ann = map[string]string{}
		}
		ann[args[1]] = strings.Repeat("x", n)
		_, err = c.SetAnnotations(context.Background(), ref, svc.Etag, ann)
		ts.Check(err)
	}
	// expire SERVICE: the lease on the service expires now (its run stalled
	// past its TTL), everything else about it unchanged.
	scriptCmds["expire"] = func(ts *testscript.TestScript, neg bool, args []string) {
		c := adapter(ts)
		ref := scriptRef(args[0])
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		var l rollback.Lease
		ts.Check(json.Unmarshal([]byte(svc.Annotations[rollback.AnnotationLease]), &l))
		l.Expires = time.Now().Add(-time.Second).UTC()
		b, err := json.Marshal(l)
		ts.Check(err)
		ann := maps.Clone(svc.Annotations)
		ann[rollback.AnnotationLease] = string(b)
		_, err = c.SetAnnotations(context.Background(), ref, svc.Etag, ann)
		ts.Check(err)
	}
	// corrupt SERVICE local|journal|lease|both: garble a copy of the journal:
	// the local file (truncated), the service's journal or lease annotation,
	// or the local file and the journal annotation.
	scriptCmds["corrupt"] = func(ts *testscript.TestScript, neg bool, args []string) {
		ref := scriptRef(args[0])
		local := func() {
			p := rollback.FileJournal{Dir: ts.Getenv("RUNROLLBACK_STATE_DIR")}.Path(ref)
			b, err := os.ReadFile(p)
			ts.Check(err)
			ts.Check(os.WriteFile(p, b[:len(b)/2], 0o600))
		}
		annotation := func(key string) {
			c := adapter(ts)
			svc, err := c.GetService(context.Background(), ref)
			ts.Check(err)
			ann := maps.Clone(svc.Annotations)
			ann[key] = ann[key][:len(ann[key])/2] + "\x00garbled"
			_, err = c.SetAnnotations(context.Background(), ref, svc.Etag, ann)
			ts.Check(err)
		}
		switch args[1] {
		case "local":
			local()
		case "journal":
			annotation(rollback.AnnotationJournal)
		case "lease":
			annotation(rollback.AnnotationLease)
		case "both":
			local()
			annotation(rollback.AnnotationJournal)
		default:
			ts.Fatalf("usage: corrupt SERVICE local|journal|lease|both")
		}
	}
	// revision SERVICE PATTERN: a revision of the service has a name that
	// matches PATTERN (a regular expression).
	scriptCmds["revision"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: revision SERVICE PATTERN")
		}
		var names []string
		found := false
		for _, r := range fakeOf(ts).srv.Revisions(fullName(args[0])) {
			name := shortResource(r.GetName())
			names = append(names, name)
			if ok, _ := regexp.MatchString(args[1], name); ok {
				found = true
			}
		}
		if found == neg {
			ts.Fatalf("revisions of %s: %v; want one matching %q: %v", args[0], names, args[1], !neg)
		}
	}
}
