package battery

import (
	"encoding/json"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	runapi "google.golang.org/api/run/v2"
)

// stallDeadline is the --deadline of a drill that the battery stalls: the
// stall outlasts it.
const stallDeadline = 3 * time.Second

// expireLease plays the lease's time running out while its run is stalled:
// the lease annotation's expiry is moved into the past (its other fields
// kept), as 15 minutes of wall clock would.
func (f *fake) expireLease(svc string) {
	f.t.Helper()
	f.patch(svc, func(s *runapi.GoogleCloudRunV2Service) {
		var l map[string]any
		if err := json.Unmarshal([]byte(s.Annotations["runrollback.dev/lease"]), &l); err != nil {
			f.t.Fatalf("the lease on %s is unreadable: %v", svc, err)
		}
		l["expires"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
		b, _ := json.Marshal(l)
		s.Annotations["runrollback.dev/lease"] = string(b)
	})
}

// stall starts a drill on machine a with a short --deadline, and stops it
// (SIGSTOP) once its deploy has landed and the template write is in flight;
// that write then finishes while the run is stopped. It returns the run and
// when it started.
func (f *fake) stall(svc string) (*proc, time.Time) {
	f.t.Helper()
	pending := f.holdAt(1)
	start := time.Now()
	p := f.start(f.machine("a"), nil, drillArgs(svc, "--deadline", stallDeadline.String())...)
	pending(svc)
	p.signal(syscall.SIGSTOP)
	f.release()
	return p, start
}

// outlast waits until the stalled run's deadline has passed.
func outlast(t *testing.T, start time.Time) {
	t.Helper()
	waitFor(t, "the stalled run's --deadline to pass", func() bool { return time.Since(start) > stallDeadline+500*time.Millisecond })
}

func stalled() family {
	fam := family{section: "Stalls", id: "sigstop", name: "SIGSTOP past the drill's --deadline and lease, then SIGCONT",
		over:    "api, web × nothing in between; a second drill; recover --force from another machine; that recover and a new drill paused mid-way",
		asserts: "the woken run restores and exits 3; a second drill meanwhile exits 3 writing nothing; after a recover the woken run changes nothing; a new drill's lease, journal, revision and tag are untouched by the woken run, and that drill then restores; the service as it was"}
	for _, svc := range []string{"api", "web"} {
		fam.variants = append(fam.variants,
			variant{svc + "/alone", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				a, start := f.stall(svc)
				outlast(t, start)
				a.signal(syscall.SIGCONT)
				a.wait()
				a.expectCode(3)
				f.same(before, "after the woken drill")
			}},
			variant{svc + "/second-drill", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				a, start := f.stall(svc)
				outlast(t, start)
				f.expireLease(svc)
				held := f.read(svc)
				w0 := f.writes()
				b := f.run(f.machine("b"), nil, drillArgs(svc)...)
				b.expectCode(3)
				if w := f.writes() - w0; w != 0 {
					t.Errorf("the second drill made %d writes while the stalled one's revision is up", w)
				}
				if d := diff(held, f.read(svc)); len(d) > 0 {
					t.Errorf("the second drill changed the service:\n  %s", strings.Join(d, "\n  "))
				}
				a.signal(syscall.SIGCONT)
				a.wait()
				a.expectCode(3)
				f.same(before, "after the woken drill")
			}},
			variant{svc + "/recovered", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				a, start := f.stall(svc)
				outlast(t, start)
				r := f.run(f.machine("b"), nil, recoverArgs(svc, "--force")...)
				r.expectCode(0)
				recovered := f.same(before, "after recover --force")
				a.signal(syscall.SIGCONT)
				a.wait()
				a.expectCode(0, 3)
				if d := diff(recovered, f.read(svc)); len(d) > 0 {
					t.Errorf("the woken drill changed the recovered service:\n  %s\n%s", strings.Join(d, "\n  "), a.output())
				}
				again := f.run(f.machine("a"), nil, recoverArgs(svc)...)
				again.expectCode(0)
				f.same(before, "at the end")
			}},
			variant{svc + "/recovered-new-drill", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				a, start := f.stall(svc)
				outlast(t, start)
				f.run(f.machine("b"), nil, recoverArgs(svc, "--force")...).expectCode(0)
				c := f.start(f.machine("c"), []string{"RUNROLLBACK_PAUSE_AT=detect-tag"}, drillArgs(svc)...)
				c.waitPaused("detect-tag")
				held := f.read(svc)
				a.signal(syscall.SIGCONT)
				a.wait()
				a.expectCode(0, 3)
				if d := diff(held, f.read(svc)); len(d) > 0 {
					t.Errorf("the woken drill changed the new drill's service:\n  %s\n%s", strings.Join(d, "\n  "), a.output())
				}
				c.signal(syscall.SIGINT)
				c.wait()
				c.expectCode(3)
				f.same(before, "after the new drill")
			}},
		)
	}
	return fam
}

// twoAtOnce: two drills of one service started together, from two machines;
// with GetService slowed, both read the service before either writes.
func twoAtOnce() family {
	fam := family{section: "Stalls", id: "two-at-once", name: "two drills of one service started at once, from two machines",
		over:    "api, web, checkout × as they come; both reading before either writes (GetService slowed)",
		asserts: "each exits 0 or 3, at most one of them changes the service at a time; the service as it was"}
	for _, svc := range services {
		for _, how := range []string{"plain", "same-read"} {
			fam.variants = append(fam.variants, variant{svc + "/" + how, func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				if how == "same-read" {
					f.post("/latency", map[string]any{"method": "GetService", "ms": 300})
				}
				a := f.start(f.machine("a"), nil, drillArgs(svc)...)
				b := f.start(f.machine("b"), nil, drillArgs(svc)...)
				a.wait()
				b.wait()
				f.post("/latency", map[string]any{"method": "GetService", "ms": 0})
				a.expectCode(0, 3)
				b.expectCode(0, 3)
				f.same(before, "after both drills")
			}})
		}
	}
	return fam
}

// storms: UNAVAILABLE and RESOURCE_EXHAUSTED on the restore.
func storms() family {
	fam := family{section: "Storms", id: "storm", name: "UNAVAILABLE and RESOURCE_EXHAUSTED storms on the restore",
		over:    "api, web × 8 UNAVAILABLE; 5 RESOURCE_EXHAUSTED with retry info; reads and writes both failing; endless (past --restore-timeout); endless on the deletion",
		asserts: "ridden out: exit 0 and the service as it was; endless: exit 4 (5 for the deletion) naming what is left and the command that finishes it, which then does"}
	for _, svc := range []string{"api", "web"} {
		fam.variants = append(fam.variants,
			variant{svc + "/unavailable", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				f.post("/fail", map[string]any{"method": "UpdateService", "skip": 3, "n": 8, "code": "UNAVAILABLE"})
				f.run(f.machine("a"), nil, drillArgs(svc)...).expectCode(0)
				f.same(before, "after the storm")
			}},
			variant{svc + "/exhausted", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				f.post("/fail", map[string]any{"method": "UpdateService", "skip": 3, "n": 5, "code": "RESOURCE_EXHAUSTED", "retry_delay_ms": 300})
				f.run(f.machine("a"), nil, drillArgs(svc)...).expectCode(0)
				f.same(before, "after the storm")
			}},
			variant{svc + "/reads-and-writes", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				p := f.atWrite(4, svc, func() *proc { return f.start(f.machine("a"), nil, drillArgs(svc)...) }, func() {
					f.post("/fail", map[string]any{"method": "GetService", "n": 4, "code": "UNAVAILABLE"})
					f.post("/fail", map[string]any{"method": "UpdateService", "n": 4, "code": "UNAVAILABLE"})
				})
				p.wait()
				p.expectCode(0)
				f.same(before, "after the storm")
			}},
			variant{svc + "/endless", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				f.post("/fail", map[string]any{"method": "UpdateService", "skip": 3, "n": 100000, "code": "UNAVAILABLE"})
				a := f.machine("a")
				p := f.run(a, nil, drillArgs(svc, "--restore-timeout", "2s")...)
				p.expectCode(4)
				if !strings.Contains(p.output(), "runrollback recover") {
					t.Errorf("exit 4 without the recover command:\n%s", p.output())
				}
				f.post("/reset-faults", struct{}{})
				f.finishRecover(t, a, svc)
				f.same(before, "after recover")
			}},
			variant{svc + "/endless-delete", func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				f.post("/fail", map[string]any{"method": "DeleteRevision", "n": 100000, "code": "UNAVAILABLE"})
				a := f.machine("a")
				p := f.run(a, nil, drillArgs(svc, "--restore-timeout", "2s")...)
				p.expectCode(5)
				after := f.read(svc)
				var drill []string
				for name := range after.revisions {
					if strings.Contains(name, "-drill-") {
						drill = append(drill, name)
					}
				}
				for _, name := range drill {
					if !strings.Contains(p.output(), "gcloud run revisions delete "+name) {
						t.Errorf("exit 5 does not say how to delete %s:\n%s", name, p.output())
					}
				}
				if len(drill) != 1 {
					t.Errorf("drill revisions left: %v, want the one Cloud Run would not delete", drill)
				}
				// Users are back; only the revision stays.
				if !maps.Equal(after.annotations, before.annotations) || after.template != before.template || strings.Join(after.traffic, ",") != strings.Join(before.traffic, ",") {
					t.Errorf("exit 5, yet more than the revision is left: %v", diff(before, after))
				}
				f.checkServing(after)
				f.post("/reset-faults", struct{}{})
				f.finishRecover(t, a, svc)
				f.same(before, "after recover")
			}},
		)
	}
	return fam
}
