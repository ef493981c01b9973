package rollback

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fleetCloud is several memRuns behind one CloudRun, by service name, and
// records when each write reaches them (after the limiter).
type fleetCloud struct {
	runs map[string]*memRun

	mu     sync.Mutex
	writes []time.Time
}

func (f *fleetCloud) run(ref ServiceRef) *memRun { return f.runs[ref.Name] }

func (f *fleetCloud) wrote() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, time.Now())
}

func (f *fleetCloud) GetService(ctx context.Context, ref ServiceRef) (*Service, error) {
	return f.run(ref).GetService(ctx, ref)
}

func (f *fleetCloud) ListRevisions(ctx context.Context, ref ServiceRef) ([]Revision, error) {
	return f.run(ref).ListRevisions(ctx, ref)
}

func (f *fleetCloud) UpdateTraffic(ctx context.Context, ref ServiceRef, etag string, t Split) (*Service, error) {
	f.wrote()
	return f.run(ref).UpdateTraffic(ctx, ref, etag, t)
}

func (f *fleetCloud) UpdateTrafficAnnotated(ctx context.Context, ref ServiceRef, etag string, t Split, ann map[string]string) (*Service, error) {
	f.wrote()
	return f.run(ref).UpdateTrafficAnnotated(ctx, ref, etag, t, ann)
}

func (f *fleetCloud) DeployRevision(ctx context.Context, ref ServiceRef, etag string, d Deploy) (*Service, error) {
	f.wrote()
	return f.run(ref).DeployRevision(ctx, ref, etag, d)
}

func (f *fleetCloud) ReplaceTemplate(ctx context.Context, ref ServiceRef, etag string, t Template, traffic Split) (*Service, error) {
	f.wrote()
	return f.run(ref).ReplaceTemplate(ctx, ref, etag, t, traffic)
}

func (f *fleetCloud) SetAnnotations(ctx context.Context, ref ServiceRef, etag string, ann map[string]string) (*Service, error) {
	f.wrote()
	return f.run(ref).SetAnnotations(ctx, ref, etag, ann)
}

func (f *fleetCloud) DeleteRevision(ctx context.Context, ref ServiceRef, name string) error {
	f.wrote()
	return f.run(ref).DeleteRevision(ctx, ref, name)
}

func (f *fleetCloud) ResumeOperation(ctx context.Context, op string) (*Service, error) {
	for _, m := range f.runs {
		if s, err := m.ResumeOperation(ctx, op); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("operation %s: %w", op, ErrNotFound)
}

// fleetProbe answers for whichever service serves the URL.
type fleetProbe struct{ f *fleetCloud }

func (p fleetProbe) probe(url string) memProbe {
	for _, m := range p.f.runs {
		if m.servingRevision(url) != nil {
			return memProbe{m: m}
		}
	}
	return memProbe{m: newMemRun("none", nil)}
}

func (p fleetProbe) WaitHealthy(ctx context.Context, url string, exp Expect) ProbeResult {
	return p.probe(url).WaitHealthy(ctx, url, exp)
}

func (p fleetProbe) WaitFailure(ctx context.Context, url string, exp Expect) ProbeResult {
	return p.probe(url).WaitFailure(ctx, url, exp)
}

// TestFleetRestoresNeverWaitForQuota drills 8 services at once under a quota
// of 10 writes a minute, in synctest's fake time, where nothing but the
// limiter takes time: every drill's restore was reserved before its shift,
// so no user of any service spends a moment on a broken revision waiting for
// quota (exposure 0), while the fleet as a whole takes minutes and never
// makes more than 10 writes in a minute.
func TestFleetRestoresNeverWaitForQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const services, quota = 8, 10
		f := &fleetCloud{runs: map[string]*memRun{}}
		var opts []DrillOptions
		for i := range services {
			name := fmt.Sprintf("svc%d", i)
			m := newMemRun(name, Split{{Revision: name + "-00002-def", Percent: 100}},
				Revision{Name: name + "-00002-def", Image: "app:1.1", Env: map[string]string{"APP_VERSION": "1.1.0"}},
				Revision{Name: name + "-00001-abc", Image: "app:1.0", Env: map[string]string{"APP_VERSION": "1.0.0"}})
			f.runs[name] = m
			opts = append(opts, DrillOptions{Service: m.svc.Ref, Break: healthBreak(t), TrafficPercent: 100})
		}
		fl := &Fleet{
			Drill:           Drill{Cloud: f, Probe: fleetProbe{f}, Journal: testJournal(t), NewID: func() string { return "abc123" }},
			Parallel:        services,
			WritesPerMinute: quota,
		}
		start := time.Now()
		reports := fl.Run(t.Context(), opts)
		took := time.Since(start)
		for _, r := range reports {
			if r.Result != ResultPass {
				t.Fatalf("%s: %s: %s", r.Service.Name, r.Result, r.Error)
			}
			if r.Exposure.MS != 0 || r.Timings.Restore != 0 {
				t.Errorf("%s: exposure %d ms, restore %d ms of fake time: the restore waited for quota", r.Service.Name, r.Exposure.MS, r.Timings.Restore)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		at := make([]time.Duration, len(f.writes))
		for i, w := range f.writes {
			at[i] = w.Sub(start)
		}
		slices.Sort(at)
		window := time.Minute + WindowMargin
		if got := maxIn(at, time.Minute); got > quota {
			t.Errorf("%d writes in one minute, quota %d", got, quota)
		}
		// n writes under a quota of q a window cannot end before (n-1)/q
		// windows, and the limiter should waste no more than a window on
		// top.
		t.Logf("%d writes in %v of fake time", len(at), took)
		if min := time.Duration((len(at)-1)/quota) * window; took < min {
			t.Errorf("%d writes took %v, less than the quota allows (%v)", len(at), took, min)
		}
		if took > time.Duration((len(at)-1)/quota+1)*window {
			t.Errorf("%d writes took %v: more than a minute past the quota bound", len(at), took)
		}
	})
}
