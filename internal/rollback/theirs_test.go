package rollback

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Someone pins a LATEST-tracking service to its revision while a drill runs,
// just before one of the drill's writes. The pin equals the split the drill
// restores to, but the drill never wrote it: it is theirs, and the drill must
// not write LATEST back over it.
func TestDrillKeepsAnotherWritersPin(t *testing.T) {
	for _, step := range []string{StepTemplate, StepShift, StepRestore} {
		t.Run(step, func(t *testing.T) {
			m := webWorld()
			before := m.Service()
			pin := Split{{Revision: "web-00001-aaa", Percent: 100}}
			d := newDrill(t, m)
			d.BeforeStep = func(_ context.Context, s string) error {
				if s == step {
					m.mu.Lock()
					m.before = func(m *memRun) {
						m.svc.Traffic = pin
						m.route()
						m.bump()
					}
					m.mu.Unlock()
				}
				return nil
			}
			rep := d.Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
			if rep.Result != ResultAborted || !strings.Contains(rep.Error, "someone else") {
				t.Fatalf("result %s: %s; want aborted with the other writer's change", rep.Result, rep.Error)
			}
			if got := m.Service().Traffic; !got.Equal(pin) {
				t.Errorf("traffic %s, want their pin %s", got, pin)
			}
			if l := m.leftovers(before.Template); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}

// The shift's reply is lost after it applied: a read shows it landed, and the
// drill goes on and passes.
func TestDrillShiftLostReply(t *testing.T) {
	m := apiWorld()
	before := m.Service()
	m.lose["UpdateTraffic"] = 1
	rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
	if rep.Result != ResultPass {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
	assertClean(t, m, before.Traffic, before.Template)
}

// killedDrill runs a drill of m's service and stops it dead before step, as
// SIGKILL would: the drill's goroutine exits there without restoring or
// cleaning up.
func killedDrill(t *testing.T, m *memRun, step string) {
	t.Helper()
	d := newDrill(t, m)
	d.Journal = FileJournal{} // the local journal stays on the dead machine
	done := make(chan struct{})
	d.BeforeStep = func(_ context.Context, s string) error {
		if s == step {
			close(done)
			runtime.Goexit()
		}
		return nil
	}
	go d.Run(context.Background(), DrillOptions{Service: m.Service().Ref, Break: healthBreak(t), TrafficPercent: 100})
	<-done
}

// On a LATEST-tracking service, recover from another machine tells the
// drill's own pin (its restore noted the generation it made in the journal)
// from a pin a person made after the drill died.
func TestRecoverTellsTheDrillsPinFromAPersons(t *testing.T) {
	latest := Split{{Latest: true, Percent: 100}}
	t.Run("the drill's own restore", func(t *testing.T) {
		m := webWorld()
		killedDrill(t, m, StepVerify)
		rep := (&Recover{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}).Run(t.Context(), RecoverOptions{Service: m.Service().Ref, Owner: "elsewhere", Force: true})
		if rep.Result != ResultPass {
			t.Fatalf("result %s: %s", rep.Result, rep.Error)
		}
		if got := m.Service().Traffic; !got.Equal(latest) {
			t.Errorf("traffic %s, want %s", got, latest)
		}
	})
	t.Run("a person's pin", func(t *testing.T) {
		m := webWorld()
		killedDrill(t, m, StepDetect)
		pin := Split{{Revision: "web-00001-aaa", Percent: 100}}
		m.Edit(func(s *Service) { s.Traffic = pin })
		rep := (&Recover{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}).Run(t.Context(), RecoverOptions{Service: m.Service().Ref, Owner: "elsewhere", Force: true})
		if rep.Result != ResultAborted || !strings.Contains(rep.Error, "--to-latest") {
			t.Fatalf("result %s: %s; want aborted, with how to follow LATEST again", rep.Result, rep.Error)
		}
		if got := m.Service().Traffic; !got.Equal(pin) {
			t.Errorf("traffic %s, want the person's %s", got, pin)
		}
	})
	t.Run("no journal: LATEST or pinned cannot be told", func(t *testing.T) {
		m := webWorld()
		killedDrill(t, m, StepDetect)
		m.Edit(func(s *Service) { delete(s.Annotations, AnnotationJournal) })
		rep := (&Recover{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}).Run(t.Context(), RecoverOptions{Service: m.Service().Ref, Owner: "elsewhere", Force: true})
		if len(rep.LeftBehind) != 1 || !strings.Contains(rep.LeftBehind[0], "followed LATEST") || !strings.Contains(rep.Hint, "--to-latest") {
			t.Fatalf("left behind %q, hint %q; want the unknown LATEST named, with its fix", rep.LeftBehind, rep.Hint)
		}
	})
}

// A deletion Cloud Run keeps refusing (UNAVAILABLE) never uses up the budget
// the lease's release after it needs: users are back, the revision is left
// behind, and the restore is not reported unconfirmed.
func TestEndlessDeletionLeavesTheReleaseItsBudget(t *testing.T) {
	m := webWorld()
	before := m.Service()
	for range 100000 {
		m.fail["DeleteRevision"] = append(m.fail["DeleteRevision"], ErrUnavailable)
	}
	d := newDrill(t, m)
	d.Cloud = deadlineCloud{m}
	rep := d.Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100, RestoreTimeout: 400 * time.Millisecond})
	if len(rep.LeftBehind) != 1 || !strings.Contains(rep.LeftBehind[0], "web-drill-abc123") || strings.Contains(rep.Error, "not confirmed") {
		t.Fatalf("left behind %q, error %q; want the revision left and the restore confirmed", rep.LeftBehind, rep.Error)
	}
	if got := m.Service(); !got.Traffic.Equal(before.Traffic) || HasRunAnnotations(got.Annotations) {
		t.Errorf("traffic %s, annotations %v", got.Traffic, got.Annotations)
	}
}

// deadlineCloud is memRun whose reads fail once their context is done, as
// the real API's do.
type deadlineCloud struct{ *memRun }

func (c deadlineCloud) GetService(ctx context.Context, ref ServiceRef) (*Service, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.memRun.GetService(ctx, ref)
}
