package battery

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// restTransport runs the command over REST (--transport rest, by its
// variable).
var restTransport = []string{"RUNROLLBACK_TRANSPORT=rest"}

// lostReplyREST: lost replies again, over the REST transport.
func lostReplyREST() family {
	fam := family{section: "Lost replies", id: "lost-reply-rest", name: "a reply lost after the write applied, at each write, over --transport rest",
		over: "api, web, checkout × writes 1–6 × UNAVAILABLE, INTERNAL", na: "the drill makes fewer writes",
		asserts: "settled by a read: exit 0, the service as it was"}
	lostReplyVariants(&fam, restTransport, "UNAVAILABLE", "INTERNAL")
	return fam
}

// failedOperation: the operation of each write ends in an error, nothing of
// it applied.
func failedOperation() family {
	fam := family{section: "Storms", id: "failed-op", name: "the operation of each write ends in error (nothing applied)",
		over: "api, web, checkout × writes 1–6 × INTERNAL, UNAVAILABLE", na: "the drill makes fewer writes",
		asserts: "a failed deploy is exit 3 with nothing changed; a failed later write is retried or restored around: exit 0 or 3; the service as it was"}
	for _, svc := range services {
		for j := 1; j <= maxWrites; j++ {
			for _, code := range []string{"INTERNAL", "UNAVAILABLE"} {
				fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/write%d/%s", svc, j, code), func(t *testing.T) {
					if j > drillWrites(t, svc) {
						t.Skip("the drill makes no such write")
					}
					f := startFake(t)
					before := f.read(svc)
					p := f.atWrite(j, svc, func() *proc {
						return f.start(f.machine("a"), nil, drillArgs(svc)...)
					}, func() {
						f.post("/fail-operations", map[string]any{"n": 1, "code": code})
					})
					p.wait()
					if j == 1 {
						p.expectCode(3)
					} else {
						p.expectCode(0, 3)
					}
					f.same(before, "after the failed operation")
				}})
			}
		}
	}
	return fam
}

// cancelledStep: what a cancelled GitHub Actions step sends (SIGINT, then
// SIGTERM), with the restore's write in flight when the second signal lands.
func cancelledStep() family {
	fam := family{section: "Signals", id: "sigint-sigterm", name: "SIGINT, then SIGTERM while the restore's write is in flight (a cancelled GitHub Actions step)",
		over:    "api, web, checkout × SIGINT at each step before the restore",
		asserts: "the second signal does not abandon the restore: exit 3, the service as it was"}
	for _, svc := range services {
		for _, step := range []string{"template", "detect-tag", "shift", "detect"} {
			fam.variants = append(fam.variants, variant{svc + "/" + step, func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				p := f.start(f.machine("a"), []string{"RUNROLLBACK_PAUSE_AT=" + step}, drillArgs(svc)...)
				p.waitPaused(step)
				// Hold the next write (the restore's, or the template's
				// before it), then interrupt, then terminate mid-write.
				pending := f.holdAt(0)
				p.signal(syscall.SIGINT)
				pending(svc)
				p.signal(syscall.SIGTERM)
				f.release()
				p.wait()
				p.expectCode(3)
				f.same(before, "after the cancelled run")
			}})
		}
	}
	return fam
}

// recoverWhilePending: a drill killed with its write's operation still
// running; recover runs before Cloud Run finishes it, then after.
func recoverWhilePending() family {
	fam := family{section: "Signals", id: "recover-pending", name: "SIGKILL with a write's operation still running, recover before it finishes, then after",
		over: "api, web × writes 1–6", na: "the drill makes fewer writes",
		found:   "in the fake, not in runrollback: a revision's deletion still pending when a rollout finished left the service reconciling for good, so recover's verify waited out its whole budget (10 min). Fixed in fakes/fakerun: only a pending rollout shows a service reconciling.",
		asserts: "the first recover waits for the operation for --restore-timeout, changes nothing it cannot see finished and exits 4 naming it (or finishes, exit 0); once the operation is done, recover exits 0; the service as it was"}
	for _, svc := range []string{"api", "web"} {
		for k := range maxWrites {
			fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/write%d", svc, k+1), func(t *testing.T) {
				if k >= drillWrites(t, svc) {
					t.Skip("the drill makes no such write")
				}
				f := startFake(t)
				before := f.read(svc)
				a := f.machine("a")
				pending := f.holdAt(k)
				p := f.start(a, nil, drillArgs(svc)...)
				pending(svc)
				p.signal(syscall.SIGKILL)
				p.wait()
				r := f.run(a, nil, recoverArgs(svc, "--restore-timeout", "1s")...)
				r.expectCode(0, 4)
				if r.code == 4 && !strings.Contains(r.output(), "runrollback recover") && !strings.Contains(r.output(), "operation") {
					t.Errorf("exit 4 without what is pending or how to finish:\n%s", r.output())
				}
				f.release()
				f.finishRecover(t, a, svc)
				f.same(before, "after recover")
			}})
		}
	}
	return fam
}

// measured caches how many writes a clean run of a scenario makes.
var measured = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// writesOf is how many writes run (set up by setup on a fake of its own)
// makes, measured once per key.
func writesOf(t *testing.T, key string, setup func(f *fake) machine, run func(f *fake, m machine) *proc) int {
	t.Helper()
	measured.Lock()
	n, ok := measured.n[key]
	measured.Unlock()
	if ok {
		return n
	}
	f := startFake(t)
	m := setup(f)
	w0 := f.writes()
	run(f, m).wait()
	n = f.writes() - w0
	measured.Lock()
	measured.n[key] = n
	measured.Unlock()
	return n
}

// lostReplyOthers: lost replies on the writes of guard and recover.
func lostReplyOthers() family {
	fam := family{section: "Lost replies", id: "lost-reply-cmds", name: "a reply lost after the write applied, on the writes of guard and recover",
		over: "guard after a bad deploy × writes 1–2; recover of a drill killed at detect × writes 1–3 (api, web)", na: "the command makes fewer writes",
		asserts: "settled by a read: guard rolls back (exit 1), recover exits 0; nothing of theirs left; the service as the command should leave it"}
	for _, svc := range []string{"api", "web"} {
		for j := 1; j <= 2; j++ {
			fam.variants = append(fam.variants, variant{fmt.Sprintf("guard/%s/write%d", svc, j), func(t *testing.T) {
				setup := func(f *fake) machine {
					a := f.machine("a")
					f.run(a, nil, "snapshot", "--service", svc, "--out", filepath.Join(a.dir, "snapshot.json")).expectCode(0)
					f.badDeploy(svc)
					return a
				}
				guard := func(f *fake, a machine) *proc {
					return f.start(a, nil, "guard", "--service", svc, "--restore-from", filepath.Join(a.dir, "snapshot.json"), "--retry-delay", "20ms")
				}
				if j > writesOf(t, "guard/"+svc, setup, guard) {
					t.Skip("the guard makes no such write")
				}
				f := startFake(t)
				before := f.read(svc)
				a := setup(f)
				p := f.atWrite(j, svc, func() *proc { return guard(f, a) }, func() {
					f.post("/lose-reply", map[string]any{"method": "UpdateService", "code": "UNAVAILABLE"})
				})
				p.wait()
				p.expectCode(1)
				after := f.read(svc)
				for _, o := range after.ours() {
					if !strings.HasPrefix(o, "the break in the template") {
						t.Errorf("left of the guard's: %s\n%s", o, p.output())
					}
				}
				if got, want := specOf(after.traffic), snapshotSplit(before); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("traffic %v, want the snapshot's %v\n%s", got, want, p.output())
				}
				f.checkServing(after)
			}})
		}
		for j := 1; j <= 3; j++ {
			fam.variants = append(fam.variants, variant{fmt.Sprintf("recover/%s/write%d", svc, j), func(t *testing.T) {
				setup := func(f *fake) machine { return f.killAt(svc, "detect") }
				recov := func(f *fake, a machine) *proc { return f.start(a, nil, recoverArgs(svc)...) }
				if j > writesOf(t, "recover/"+svc, setup, recov) {
					t.Skip("recover makes no such write")
				}
				f := startFake(t)
				before := f.read(svc)
				a := setup(f)
				p := f.atWrite(j, svc, func() *proc { return recov(f, a) }, func() {
					f.post("/lose-reply", map[string]any{"method": "UpdateService", "code": "UNAVAILABLE"})
					f.post("/lose-reply", map[string]any{"method": "DeleteRevision", "code": "UNAVAILABLE"})
				})
				p.wait()
				p.expectCode(0)
				f.same(before, "after recover")
			}})
		}
	}
	return fam
}

// recoverRace: a person's split lands just before each write of recover
// (of a drill killed with users on its revision).
func recoverRace() family {
	fam := family{section: "Recover", id: "recover-race", name: "another writer's split just before each write of recover",
		over: "api, web, checkout × writes 1–3", na: "recover makes fewer writes",
		asserts: "their split stands (exit 3 with the difference), or recover finished first and theirs came after (exit 0 or 3); never their split overwritten; nothing of the drill's is left"}
	for _, svc := range services {
		for j := 1; j <= 3; j++ {
			fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/write%d", svc, j), func(t *testing.T) {
				setup := func(f *fake) machine { return f.killAt(svc, "detect") }
				recov := func(f *fake, a machine) *proc { return f.start(a, nil, recoverArgs(svc)...) }
				if j > writesOf(t, "recover/"+svc, setup, recov) {
					t.Skip("recover makes no such write")
				}
				f := startFake(t)
				a := setup(f)
				var updates0 int
				noop := false
				p := f.atWrite(j, svc, func() *proc { return recov(f, a) }, func() {
					// Their split equal to the one there changes nothing.
					noop = strings.Join(specOf(f.read(svc).traffic), ",") == strings.Join(theirSplit[svc], ",")
					updates0 = f.calls().Calls["UpdateService"]
					f.post("/concurrent-write", map[string]any{"service": svc, "traffic": seedTargets(theirSplit[svc]...)})
				})
				p.wait()
				fired := f.calls().Calls["UpdateService"] > updates0
				f.post("/reset-faults", struct{}{})
				if !fired {
					t.Skip("the write was a deletion: no UpdateService to race")
				}
				after := f.read(svc)
				if noop {
					p.expectCode(0)
					if o := after.ours(); len(o) > 0 {
						t.Errorf("left of the drill's: %v", o)
					}
					return
				}
				p.expectCode(0, 3)
				if got := specOf(after.traffic); strings.Join(got, ",") != strings.Join(theirSplit[svc], ",") {
					t.Errorf("their split %v was overwritten: now %v (exit %d)\n%s", theirSplit[svc], got, p.code, p.output())
				}
				if o := after.ours(); len(o) > 0 {
					t.Errorf("left of the drill's (exit %d): %v\n%s", p.code, o, p.output())
				}
				f.checkServing(after)
			}})
		}
	}
	return fam
}
