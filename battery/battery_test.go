package battery

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A family is a group of cases with one contract, run over several services,
// steps or writes (its variants).
type family struct {
	section  string // RELIABILITY.md subsection
	id       string // the subtest's name
	name     string
	over     string // what the variants range over
	asserts  string
	na       string // why some variants have nothing to do
	found    string // what the battery found failing before a fix, and the fix
	variants []variant
}

type variant struct {
	name string
	run  func(t *testing.T)
}

type result int

const (
	failed result = iota
	passed
	skipped // nothing to do: the drill makes no such write
)

var (
	resultsMu sync.Mutex
	results   = map[string]map[string]result{} // family name → variant → result
)

func record(fam, variant string, r result) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if results[fam] == nil {
		results[fam] = map[string]result{}
	}
	results[fam][variant] = r
}

// services are the three shapes of traffic in world.
var services = []string{"api", "web", "checkout"}

// drillSteps are the drill's steps, in order (docs/drill.md).
var drillSteps = []string{"preflight", "lease", "deploy", "template", "detect-tag", "shift", "detect", "restore", "verify", "cleanup"}

func families() []family {
	return []family{
		sigintAtPause(),
		sigintInWrite(),
		cancelledStep(),
		sigkillAtPause(),
		sigkillInWrite(),
		recoverWhilePending(),
		concurrentWriter(),
		lostReply(),
		lostReplyREST(),
		lostReplyOthers(),
		stalled(),
		twoAtOnce(),
		storms(),
		failedOperation(),
		recoverAfterPerson(),
		recoverRace(),
		corruptJournals(),
		guardRace(),
		hostileFiles(),
		tagMoved(),
	}
}

func TestBattery(t *testing.T) {
	fams := families()
	t.Run("case", func(t *testing.T) {
		for _, fam := range fams {
			for _, v := range fam.variants {
				t.Run(fam.id+"/"+v.name, func(t *testing.T) {
					t.Parallel()
					t.Cleanup(func() {
						switch {
						case t.Failed():
							record(fam.name, v.name, failed)
						case t.Skipped():
							record(fam.name, v.name, skipped)
						default:
							record(fam.name, v.name, passed)
						}
					})
					v.run(t)
				})
			}
		}
	})
	if bin == "" {
		return
	}
	checkReliability(t, fams)
}

// sigintAtPause: SIGINT while the run is paused before each step.
func sigintAtPause() family {
	fam := family{section: "Signals", id: "sigint-pause", name: "SIGINT at each pause point",
		over:    "api, web, checkout × the 10 steps",
		asserts: "exit 3 before the restore, 0 from it on (a signal never abandons a restore); the service as it was, entry for entry; no answer from a drill revision"}
	for _, svc := range services {
		for _, step := range drillSteps {
			fam.variants = append(fam.variants, variant{svc + "/" + step, func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				p := f.start(f.machine("a"), []string{"RUNROLLBACK_PAUSE_AT=" + step}, drillArgs(svc)...)
				p.waitPaused(step)
				p.signal(syscall.SIGINT)
				p.wait()
				if slices.Index(drillSteps, step) < slices.Index(drillSteps, "restore") {
					p.expectCode(3)
				} else {
					p.expectCode(0)
				}
				f.same(before, "after the interrupted drill")
			}})
		}
	}
	return fam
}

// shape is what a clean drill of a service writes: how many writes in all,
// and how many of them are UpdateService (the others, last, delete the drill
// revision). Measured once per service on a fake of its own.
type shape struct{ writes, updates int }

var (
	shapesMu sync.Mutex
	shapes   = map[string]shape{}
)

func drillShape(t *testing.T, svc string) shape {
	t.Helper()
	shapesMu.Lock()
	s, ok := shapes[svc]
	shapesMu.Unlock()
	if ok {
		return s
	}
	f := startFake(t)
	c0 := f.calls()
	p := f.run(f.machine("probe"), nil, drillArgs(svc)...)
	p.expectCode(0)
	c1 := f.calls()
	s = shape{writes: c1.Writes - c0.Writes, updates: c1.Calls["UpdateService"] - c0.Calls["UpdateService"]}
	shapesMu.Lock()
	shapes[svc] = s
	shapesMu.Unlock()
	return s
}

func drillWrites(t *testing.T, svc string) int { return drillShape(t, svc).writes }

// maxWrites bounds the writes a variant may target; a variant past the
// drill's writes checks that it has nothing to target and passes.
const maxWrites = 6

// sigintInWrite: SIGINT while write k's operation is pending.
func sigintInWrite() family {
	fam := family{section: "Signals", id: "sigint-write", name: "SIGINT while each write is in flight",
		over: "api, web, checkout × writes 1–6", na: "the drill makes fewer writes",
		asserts: "the write's operation pending when the signal lands, then finished: exit 3, or 0 once the restore has begun; the service as it was"}
	for _, svc := range services {
		for k := range maxWrites {
			fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/write%d", svc, k+1), func(t *testing.T) {
				if k >= drillWrites(t, svc) {
					t.Skip("the drill makes no such write")
				}
				f := startFake(t)
				before := f.read(svc)
				pending := f.holdAt(k)
				p := f.start(f.machine("a"), nil, drillArgs(svc)...)
				pending(svc)
				p.signal(syscall.SIGINT)
				f.release()
				p.wait()
				p.expectCode(0, 3)
				f.same(before, "after the interrupted drill")
			}})
		}
	}
	return fam
}

// where is the machine recover runs on: a, where the drill ran ("here"), or
// another one ("elsewhere"), which has none of a's local journal.
func (f *fake) where(a machine, where string) machine {
	if where == "elsewhere" {
		return f.machine("b")
	}
	return a
}

// finishRecover runs recover on m until it says nothing is in flight:
// recover on another machine asks for --force while the dead run's lease is
// live (exit 3, changing nothing), then finishes with it.
func (f *fake) finishRecover(t *testing.T, m machine, svc string) {
	t.Helper()
	held := f.read(svc)
	p := f.run(m, nil, recoverArgs(svc)...)
	if p.code == 3 && strings.Contains(p.output(), "--force") {
		if d := diff(held, f.read(svc)); len(d) > 0 {
			t.Errorf("recover that asked for --force changed %s:\n  %s", svc, strings.Join(d, "\n  "))
		}
		p = f.run(m, nil, recoverArgs(svc, "--force")...)
	}
	p.expectCode(0)
	again := f.run(m, nil, recoverArgs(svc)...)
	again.expectCode(0)
	if !strings.Contains(again.output(), "nothing in flight") {
		t.Errorf("a second recover did not find nothing in flight:\n%s", again.output())
	}
}

// sigkillAtPause: SIGKILL while paused before each step, then recover from
// the same machine, or from another one (no local journal).
func sigkillAtPause() family {
	fam := family{section: "Signals", id: "sigkill-pause", name: "SIGKILL at each pause point, then recover (same machine; another machine)",
		over:    "api, web, checkout × the 10 steps × here, elsewhere",
		asserts: "recover (with --force on another machine while the dead run's lease is live; the call without it changes nothing) exits 0, a second recover finds nothing in flight; the service as it was"}
	for _, svc := range services {
		for _, step := range drillSteps {
			for _, where := range []string{"here", "elsewhere"} {
				fam.variants = append(fam.variants, variant{svc + "/" + step + "/" + where, func(t *testing.T) {
					f := startFake(t)
					before := f.read(svc)
					a := f.machine("a")
					p := f.start(a, []string{"RUNROLLBACK_PAUSE_AT=" + step}, drillArgs(svc)...)
					p.waitPaused(step)
					p.signal(syscall.SIGKILL)
					p.wait()
					f.finishRecover(t, f.where(a, where), svc)
					f.same(before, "after recover")
				}})
			}
		}
	}
	return fam
}

// sigkillInWrite: SIGKILL while write k's operation is pending; the
// operation then finishes (Cloud Run carries on without the caller), and
// recover runs, here or elsewhere.
func sigkillInWrite() family {
	fam := family{section: "Signals", id: "sigkill-write", name: "SIGKILL while each write is in flight, then recover (same machine; another machine)",
		over: "api, web, checkout × writes 1–6 × here, elsewhere", na: "the drill makes fewer writes",
		asserts: "the operation finishes after the kill; recover exits 0 (with --force elsewhere while the lease is live) and a second finds nothing in flight; the service as it was"}
	for _, svc := range services {
		for k := range maxWrites {
			for _, where := range []string{"here", "elsewhere"} {
				fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/write%d/%s", svc, k+1, where), func(t *testing.T) {
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
					f.release()
					f.finishRecover(t, f.where(a, where), svc)
					f.same(before, "after recover")
				}})
			}
		}
	}
	return fam
}
