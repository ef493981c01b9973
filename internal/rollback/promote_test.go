package rollback

import (
	"context"
	"maps"
	"strings"
	"testing"
)

// memCloud is a minimal in-memory CloudRun for the guard's decision logic:
// one service, traffic and annotations writes, etags that change on each.
type memCloud struct {
	svc    Service
	writes []Split
}

func (m *memCloud) get() *Service {
	s := m.svc
	s.Traffic = append(Split(nil), m.svc.Traffic...)
	s.Annotations = maps.Clone(m.svc.Annotations)
	return &s
}

func (m *memCloud) GetService(context.Context, ServiceRef) (*Service, error) { return m.get(), nil }
func (m *memCloud) ListRevisions(context.Context, ServiceRef) ([]Revision, error) {
	return nil, nil
}

func (m *memCloud) UpdateTraffic(ctx context.Context, ref ServiceRef, etag string, t Split) (*Service, error) {
	return m.UpdateTrafficAnnotated(ctx, ref, etag, t, m.svc.Annotations)
}

func (m *memCloud) UpdateTrafficAnnotated(_ context.Context, _ ServiceRef, etag string, t Split, ann map[string]string) (*Service, error) {
	if etag != m.svc.Etag {
		return nil, ErrConflict
	}
	m.writes = append(m.writes, t)
	m.svc.Traffic, m.svc.Annotations = t, maps.Clone(ann)
	m.svc.Generation++
	m.svc.Etag = strings.Repeat("e", int(m.svc.Generation))
	m.svc.TrafficStatuses = nil
	for _, x := range t {
		m.svc.TrafficStatuses = append(m.svc.TrafficStatuses, TargetStatus{Target: x, URI: "https://" + x.Tag + "---api.a.run.app"})
	}
	return m.get(), nil
}

func (m *memCloud) DeployRevision(context.Context, ServiceRef, string, Deploy) (*Service, error) {
	panic("not used")
}
func (m *memCloud) ReplaceTemplate(context.Context, ServiceRef, string, Template, Split) (*Service, error) {
	panic("not used")
}
func (m *memCloud) SetAnnotations(ctx context.Context, ref ServiceRef, etag string, ann map[string]string) (*Service, error) {
	return m.UpdateTrafficAnnotated(ctx, ref, etag, m.svc.Traffic, ann)
}
func (m *memCloud) DeleteRevision(context.Context, ServiceRef, string) error { panic("not used") }
func (m *memCloud) ResumeOperation(context.Context, string) (*Service, error) {
	panic("not used")
}

// urlProber answers by URL: healthy unless the URL is in sick.
type urlProber struct{ sick map[string]bool }

func (p urlProber) WaitHealthy(_ context.Context, url string, _ Expect) ProbeResult {
	return ProbeResult{OK: !p.sick[url], Attempts: 1, Detail: "probed " + url}
}
func (p urlProber) WaitFailure(_ context.Context, url string, _ Expect) ProbeResult {
	return ProbeResult{OK: p.sick[url], Attempts: 1}
}

func TestPromoteUndoneWhenUsersSeeFailure(t *testing.T) {
	ref := ServiceRef{Project: "p-123456", Region: "us-central1", Name: "api"}
	before := Split{{Revision: "api-1", Percent: 100}, {Revision: "api-2", Tag: "candidate"}}
	m := &memCloud{svc: Service{Ref: ref, URI: "https://api.a.run.app", Etag: "e", Generation: 1, Ready: true,
		Traffic: before, LatestReadyRevision: "api-2"}}
	m.svc.TrafficStatuses = []TargetStatus{{Target: before[0]}, {Target: before[1], URI: "https://candidate---api.a.run.app"}}
	g := &Guard{Cloud: m, Probe: urlProber{sick: map[string]bool{"https://api.a.run.app": true}}, Journal: FileJournal{Dir: t.TempDir()}}

	rep := g.Run(t.Context(), GuardOptions{Service: ref, Candidate: "candidate", Owner: "me"})

	if rep.Result != ResultFail || !strings.Contains(rep.Error, "healthy on its tag URL but not for users") {
		t.Fatalf("Run() = %s: %s, want fail, promoted then undone", rep.Result, rep.Error)
	}
	if len(m.writes) != 2 {
		t.Fatalf("writes = %v, want the promotion then the undo", m.writes)
	}
	if got := m.writes[0].String(); got != "api-2=100@candidate" {
		t.Errorf("promotion = %s, want api-2=100@candidate", got)
	}
	if !m.svc.Traffic.Equal(before) {
		t.Errorf("traffic after = %s, want %s", m.svc.Traffic, before)
	}
	if HasRunAnnotations(m.svc.Annotations) {
		t.Errorf("lease left on the service: %v", m.svc.Annotations)
	}
	if !rep.TrafficRestored {
		t.Errorf("report says traffic not restored")
	}
	if rep.Exposure.Percent != 100 {
		t.Errorf("exposure = %+v, want 100%% of traffic for the time the candidate served", rep.Exposure)
	}
}

func TestRecoverUndoesAnInterruptedPromotion(t *testing.T) {
	ref := ServiceRef{Project: "p-123456", Region: "us-central1", Name: "api"}
	before := Split{{Revision: "api-1", Percent: 100}, {Revision: "api-2", Tag: "candidate"}}
	promoted := Split{{Revision: "api-2", Percent: 100, Tag: "candidate"}}
	snap := Snapshot{Schema: SnapshotSchema, Service: ref, Traffic: before, LatestReady: "api-2"}
	j := Journal{Schema: JournalSchema, ID: "abc123", Command: "guard", Owner: "runner", Step: StepPromote, Snapshot: snap, Expect: promoted, Prior: before}
	ann, err := WithRunAnnotations(nil, Lease{ID: "abc123", Owner: "runner", Command: "guard"}, j)
	if err != nil {
		t.Fatal(err)
	}
	m := &memCloud{svc: Service{Ref: ref, URI: "https://api.a.run.app", Etag: "e", Generation: 2, Ready: true,
		Traffic: promoted, Annotations: ann, LatestReadyRevision: "api-2"}}
	rc := &Recover{Cloud: m, Probe: urlProber{}, Journal: FileJournal{Dir: t.TempDir()}}

	// The lease expired long ago (zero time), so any machine may recover.
	rep := rc.Run(t.Context(), RecoverOptions{Service: ref, Owner: "laptop"})

	if rep.Result != ResultPass {
		t.Fatalf("Run() = %s: %s, want pass", rep.Result, rep.Error)
	}
	if !m.svc.Traffic.Equal(before) {
		t.Errorf("traffic after recover = %s, want the split before the promotion %s", m.svc.Traffic, before)
	}
	if HasRunAnnotations(m.svc.Annotations) {
		t.Errorf("annotations left: %v", m.svc.Annotations)
	}
}
