package rollback

import (
	"context"
	"strings"
	"testing"
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
