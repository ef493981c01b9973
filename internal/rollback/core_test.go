package rollback

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func mustSplit(t *testing.T, s string) Split {
	t.Helper()
	out, err := ParseSplit(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSettle(t *testing.T) {
	ctx := t.Context()
	shows := func(want Split) func(*Service) bool {
		return func(s *Service) bool { return s.Traffic.Equal(want) }
	}
	moved := Split{{Revision: "api-00001-abc", Percent: 100}}
	tests := []struct {
		name  string
		setup func(m *memRun) // after the read the write is based on
		err   error
		read  error
		want  Outcome
	}{
		{"no error", nil, nil, nil, Applied},
		{"lost reply, the write applied", func(m *memRun) { m.Edit(func(s *Service) { s.Traffic = moved }) }, ErrUnavailable, nil, Applied},
		{"refused, a read shows the same etag", nil, fmt.Errorf("denied: %w", ErrPermission), nil, NotApplied},
		{"unavailable, a read shows the same etag", nil, ErrUnavailable, nil, NotApplied},
		{"stale etag: someone else wrote", func(m *memRun) {
			m.Edit(func(s *Service) { s.Traffic = mustSplit(t, "api-00001-abc=50,api-00002-def=50") })
		}, ErrConflict, nil, NotApplied},
		{"poll NOT_FOUND after someone else's write", func(m *memRun) {
			m.Edit(func(s *Service) { s.Traffic = mustSplit(t, "api-00001-abc=50,api-00002-def=50") })
		},
			&PendingError{Op: "update", Operation: "op/1", Err: ErrNotFound}, nil, Unknown},
		{"poll UNAUTHENTICATED, the write applied", func(m *memRun) { m.Edit(func(s *Service) { s.Traffic = moved }) },
			&PendingError{Op: "update", Operation: "op/1", Err: ErrUnauthenticated}, nil, Applied},
		{"the read fails too", nil, ErrUnavailable, ErrUnavailable, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := apiWorld()
			before := m.Service()
			if tt.setup != nil {
				tt.setup(m)
			}
			if tt.read != nil {
				m.fail["GetService"] = []error{tt.read}
			}
			got, cur := settle(ctx, m, before.Ref, before, before, tt.err, shows(moved))
			if got != tt.want {
				t.Errorf("settle = %s, want %s", got, tt.want)
			}
			if (cur == nil) != (tt.read != nil && tt.err != nil) {
				t.Errorf("service returned = %v", cur)
			}
		})
	}
}

// A poll's NOT_FOUND or UNAUTHENTICATED is about the poll, never proof that
// Cloud Run refused the write.
func TestRefusedOnCall(t *testing.T) {
	for _, err := range []error{ErrPermission, ErrInvalid, ErrConflict, ErrQuota, ErrRefused, fmt.Errorf("x: %w", ErrNotFound)} {
		if !refusedOnCall(err) {
			t.Errorf("refusedOnCall(%v) = false", err)
		}
	}
	for _, err := range []error{nil, ErrUnavailable, ErrNotReady, &PendingError{Err: ErrNotFound}, &PendingError{Err: ErrUnauthenticated}, context.DeadlineExceeded} {
		if refusedOnCall(err) {
			t.Errorf("refusedOnCall(%v) = true", err)
		}
	}
}

func drillJournal(snap Snapshot) *Journal {
	return &Journal{Schema: JournalSchema, ID: "abc123", Command: "test", Snapshot: snap,
		BrokenRevision: "api-drill-abc123", Tag: "drill-abc123", TemplateChanged: true}
}

func TestDecideRestore(t *testing.T) {
	m := apiWorld()
	snap := TakeSnapshot(m.Service(), time.Now())
	shifted := mustSplit(t, "api-00002-def=0,api-drill-abc123=100@drill-abc123")
	tests := []struct {
		name         string
		expect       Split
		cur          string
		wantTraffic  string // "" = nothing to write
		wantConflict bool
	}{
		{"already restored", shifted, "api-00002-def=100", "", false},
		{"what the run left", shifted, "api-00002-def=0,api-drill-abc123=100@drill-abc123", "api-00002-def=100", false},
		{"the run's last write never applied", shifted, "api-00002-def=100,api-drill-abc123=0@drill-abc123", "api-00002-def=100", false},
		{"no expectation: only snapshot and ours", nil, "api-00002-def=50,api-drill-abc123=50@drill-abc123", "api-00002-def=100", false},
		{"theirs, nothing of ours in it", shifted, "api-00001-abc=100", "", true},
		{"theirs, with our revision in it", shifted, "api-00001-abc=50,api-drill-abc123=50", "api-00001-abc=50,api-00002-def=50", true},
		{"theirs, our tag kept at 0", shifted, "api-00001-abc=100,api-drill-abc123=0@drill-abc123", "api-00001-abc=100", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := drillJournal(snap)
			j.Expect = tt.expect
			if tt.expect != nil {
				j.Prior = mustSplit(t, "api-00002-def=100,api-drill-abc123=0@drill-abc123")
			}
			c := &converger{j: j, ref: snap.Service}
			cur := Split{}
			for part := range strings.SplitSeq(tt.cur, ",") {
				var x Target
				name, rest, _ := strings.Cut(part, "=")
				pct, tag, _ := strings.Cut(rest, "@")
				fmt.Sscan(pct, &x.Percent)
				x.Revision, x.Tag = name, tag
				cur = append(cur, x)
			}
			p := c.decideRestore(&Service{Traffic: cur})
			if (p.conflict != "") != tt.wantConflict {
				t.Errorf("conflict = %q, want conflict %v", p.conflict, tt.wantConflict)
			}
			switch {
			case tt.wantTraffic == "" && !p.done:
				t.Errorf("plan writes %s, want nothing written", p.want)
			case tt.wantTraffic != "" && (p.done || p.want.String() != strings.ReplaceAll(mustSplit(t, tt.wantTraffic).String(), "", "")):
				t.Errorf("plan = %+v, want %s written", p, tt.wantTraffic)
			}
		})
	}
}

func TestWithoutOurs(t *testing.T) {
	snap := Snapshot{Traffic: mustSplit(t, "checkout-00002-bbb=90,checkout-00003-ccc=10@canary")}
	c := &converger{j: &Journal{BrokenRevision: "checkout-drill-x", Tag: "drill-x", Snapshot: snap}}
	got := c.withoutOurs(Split{{Revision: "checkout-00003-ccc", Percent: 60, Tag: "canary"}, {Revision: "checkout-drill-x", Percent: 40, Tag: "drill-x"}})
	if want := "checkout-00003-ccc=60@canary, checkout-00002-bbb=40"; got.String() != want {
		t.Errorf("withoutOurs = %s, want %s", got, want)
	}
	got = c.withoutOurs(Split{{Revision: "checkout-00002-bbb", Percent: 10}, {Revision: "checkout-drill-x", Percent: 90}})
	if want := "checkout-00002-bbb=100"; got.String() != want {
		t.Errorf("withoutOurs = %s, want %s", got, want)
	}
}

func newDrill(t *testing.T, m *memRun) *Drill {
	return &Drill{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t), NewID: func() string { return "abc123" }}
}

func healthBreak(t *testing.T) Break {
	b, err := ParseBreak("health")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDrillPasses(t *testing.T) {
	for _, m := range []*memRun{apiWorld(), webWorld(), checkoutWorld()} {
		t.Run(m.svc.Ref.Name, func(t *testing.T) {
			before := m.Service()
			d := newDrill(t, m)
			rep := d.Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
			if rep.Result != ResultPass {
				t.Fatalf("result %s: %s (hint %s); steps %+v", rep.Result, rep.Error, rep.Hint, rep.Steps)
			}
			assertClean(t, m, before.Traffic, before.Template)
			if j, _ := d.Journal.Load(before.Ref); j != nil {
				t.Errorf("local journal left: %+v", j)
			}
		})
	}
}

func TestDrillRestoreRidesOutUnavailable(t *testing.T) {
	m := apiWorld()
	before := m.Service()
	// The restore (which releases the lease with it) meets 12 UNAVAILABLEs in a row.
	for range 12 {
		m.fail["UpdateTrafficAnnotated"] = append(m.fail["UpdateTrafficAnnotated"], fmt.Errorf("down: %w", ErrUnavailable))
	}
	rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
	if rep.Result != ResultPass {
		t.Fatalf("result %s: %s", rep.Result, rep.Error)
	}
	if got := m.calls["UpdateTrafficAnnotated"]; got < 13 {
		t.Errorf("UpdateTrafficAnnotated calls = %d, want 12 refusals and the restore", got)
	}
	assertClean(t, m, before.Traffic, before.Template)
}

func TestDrillRestoreGivesUpAfterItsBudget(t *testing.T) {
	m := apiWorld()
	before := m.Service()
	m.fail["UpdateTraffic"] = []error{nil}
	for range 100000 {
		m.fail["UpdateTraffic"] = append(m.fail["UpdateTraffic"], ErrUnavailable)
		m.fail["UpdateTrafficAnnotated"] = append(m.fail["UpdateTrafficAnnotated"], ErrUnavailable)
	}
	rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100, RestoreTimeout: 50 * time.Millisecond})
	if rep.Result != ResultError || !strings.Contains(rep.Hint, "runrollback recover") {
		t.Fatalf("result %s, hint %q; want error and the recover command", rep.Result, rep.Hint)
	}
	if l, _, _ := LeaseAndJournal(m.Service()); l == nil {
		t.Errorf("the lease is gone: recover would not know what to finish")
	}
}

func TestDrillLostReplyOnLease(t *testing.T) {
	m := apiWorld()
	before := m.Service()
	m.lose["DeployRevision"] = 1
	m.fail["GetService"] = []error{nil, ErrUnavailable} // preflight reads; the read after the lost reply fails
	rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
	// The outcome of the write that takes the lease is unknown: the drill
	// stops, and removes what it may have left rather than claim nothing changed.
	if rep.Result == ResultPass || strings.Contains(rep.Hint, "nothing was changed") {
		t.Fatalf("result %s (hint %q) after an unknown lease write", rep.Result, rep.Hint)
	}
	assertClean(t, m, before.Traffic, before.Template)
}

func TestCleanupRetriesAndLeftBehind(t *testing.T) {
	m := apiWorld()
	before := m.Service()
	snap := TakeSnapshot(before, time.Now())
	// The drill left: its revision, the broken template, the lease.
	j := drillJournal(snap)
	l := Lease{ID: j.ID, Owner: "me", Command: "test", Expires: time.Now().Add(time.Hour)}
	ann, _ := WithRunAnnotations(before.Annotations, l, *j)
	if _, err := m.DeployRevision(t.Context(), before.Ref, before.Etag, Deploy{Revision: j.BrokenRevision, Env: map[string]string{BreakEnvVar: "health"},
		Traffic: mustSplit(t, "api-00002-def=100")}); err != nil {
		t.Fatal(err)
	}
	cur := m.Service()
	if _, err := m.SetAnnotations(t.Context(), before.Ref, cur.Etag, ann); err != nil {
		t.Fatal(err)
	}
	m.fail["ReplaceTemplate"] = []error{ErrUnavailable, ErrUnavailable, fmt.Errorf("%w: slow down", ErrQuota)}
	m.fail["SetAnnotations"] = []error{ErrUnavailable}
	m.fail["DeleteRevision"] = []error{ErrUnavailable, fmt.Errorf("%w: no", ErrRefused)}
	rep := &Report{}
	c := &converger{cloud: m, ref: before.Ref, j: j, svc: m.Service(), rep: rep, warn: func(string) {}}
	detail, err := c.cleanup(t.Context(), func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if m.calls["ReplaceTemplate"] != 4 || m.calls["SetAnnotations"] < 3 {
		t.Errorf("calls = %v, want the template write and the release retried", m.calls)
	}
	if !strings.Contains(detail, "template restored") || !strings.Contains(detail, "lease released") {
		t.Errorf("detail = %q", detail)
	}
	if len(c.left) != 1 || !strings.Contains(c.left[0], j.BrokenRevision) || !strings.Contains(c.left[0], "refused") {
		t.Errorf("left = %v, want the revision Cloud Run refused to delete", c.left)
	}
	if s := m.Service(); s.Template.Hash != before.Template.Hash || HasRunAnnotations(s.Annotations) {
		t.Errorf("template %s, annotations %v", s.Template.Hash, s.Annotations)
	}
	if s := m.Service(); s.Annotations["client.knative.dev/user-image"] != "app:1" {
		t.Errorf("someone else's annotation lost: %v", s.Annotations)
	}
}

// badDeploy puts a broken revision at 100% the way gcloud run deploy would.
func badDeploy(t *testing.T, m *memRun) {
	t.Helper()
	s := m.Service()
	if _, err := m.DeployRevision(t.Context(), s.Ref, s.Etag, Deploy{Revision: s.Ref.Name + "-00003-bad",
		Env: map[string]string{BreakEnvVar: "health", "APP_VERSION": "1.2.0"}, Traffic: Split{{Revision: s.Ref.Name + "-00003-bad", Percent: 100}}}); err != nil {
		t.Fatal(err)
	}
}

func TestGuardRollbackOutcomes(t *testing.T) {
	good := Split{{Revision: "api-00002-def", Percent: 100}}
	tests := []struct {
		name       string
		fault      func(m *memRun)
		result     string
		traffic    string // the traffic after, as the service stores it
		hint       string
		leaseAfter bool
	}{
		{"clean rollback", nil, ResultFail, "api-00002-def=100", "rolled back", false},
		{"lost reply on the rollback", func(m *memRun) { m.lose["UpdateTrafficAnnotated"] = 1 }, ResultFail, "api-00002-def=100", "rolled back", false},
		{"unavailable for a while", func(m *memRun) {
			m.fail["UpdateTrafficAnnotated"] = []error{ErrUnavailable, ErrUnavailable, ErrUnavailable, ErrQuota}
		}, ResultFail, "api-00002-def=100", "rolled back", false},
		{"refused", func(m *memRun) { m.fail["UpdateTrafficAnnotated"] = []error{fmt.Errorf("denied: %w", ErrPermission)} }, ResultFail, "api-00003-bad=100", "nothing was changed", false},
		{"someone else's change first", func(m *memRun) {
			m.before = func(m *memRun) {
				m.svc.Traffic = Split{{Revision: "api-00001-abc", Percent: 100}}
				m.route()
				m.bump()
			}
		}, ResultAborted, "api-00001-abc=100", "nothing was overwritten", false},
		{"operation poll fails after the write applied", func(m *memRun) {
			m.pend["UpdateTrafficAnnotated"] = 1
		}, ResultFail, "api-00002-def=100", "rolled back", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := apiWorld()
			snap := TakeSnapshot(m.Service(), time.Now())
			badDeploy(t, m)
			if tt.fault != nil {
				tt.fault(m)
			}
			g := &Guard{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}
			rep := g.Run(t.Context(), GuardOptions{Service: snap.Service, RestoreFrom: &snap, Owner: "me"})
			if rep.Result != tt.result || !strings.Contains(rep.Hint+rep.Error, tt.hint) {
				t.Errorf("result %s (%s; hint %s), want %s with %q", rep.Result, rep.Error, rep.Hint, tt.result, tt.hint)
			}
			if got := m.Service().Traffic.String(); got != mustSplit(t, tt.traffic).String() {
				t.Errorf("traffic = %s, want %s", got, tt.traffic)
			}
			if HasRunAnnotations(m.Service().Annotations) != tt.leaseAfter {
				t.Errorf("annotations = %v", m.Service().Annotations)
			}
			if j, _ := g.Journal.Load(snap.Service); (j != nil) != tt.leaseAfter {
				t.Errorf("local journal = %+v", j)
			}
			_ = good
		})
	}
}

// A journal too large for Cloud Run's annotations never stands between users
// and their restore.
func TestGuardRestoresWhenTheJournalDoesNotFit(t *testing.T) {
	m := apiWorld()
	m.Edit(func(s *Service) { s.Annotations["big"] = strings.Repeat("x", 256<<10-100) })
	snap := TakeSnapshot(m.Service(), time.Now())
	badDeploy(t, m)
	g := &Guard{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}
	rep := g.Run(t.Context(), GuardOptions{Service: snap.Service, RestoreFrom: &snap, Owner: "me"})
	if rep.Result != ResultFail || !m.Service().Traffic.Equal(snap.Traffic) {
		t.Fatalf("result %s (%s), traffic %s; want rolled back", rep.Result, rep.Error, m.Service().Traffic)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "writing the traffic alone") {
		t.Errorf("warnings = %v", rep.Warnings)
	}
}

func TestRecoverDecisions(t *testing.T) {
	ctx := t.Context()
	t.Run("interrupted guard goes to the snapshot's pinned split", func(t *testing.T) {
		m := apiWorld()
		snap := TakeSnapshot(m.Service(), time.Now())
		badDeploy(t, m)
		cur := m.Service()
		j := Journal{Schema: JournalSchema, ID: "g1", Command: "guard", Owner: "runner-1", Step: StepRestore, Snapshot: snap, From: cur.Traffic}
		ann, _ := WithRunAnnotations(cur.Annotations, Lease{ID: "g1", Owner: "runner-1", Command: "guard", Expires: time.Now().Add(-time.Minute)}, j)
		if _, err := m.SetAnnotations(ctx, cur.Ref, cur.Etag, ann); err != nil {
			t.Fatal(err)
		}
		rc := &Recover{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}
		rep := rc.Run(ctx, RecoverOptions{Service: cur.Ref, Owner: "elsewhere"})
		if rep.Result != ResultPass {
			t.Fatalf("result %s: %s", rep.Result, rep.Error)
		}
		if got := m.Service().Traffic; !got.Equal(snap.Traffic) || HasRunAnnotations(m.Service().Annotations) {
			t.Errorf("traffic %s, annotations %v; want %s and none of ours", got, m.Service().Annotations, snap.Traffic)
		}
	})
	t.Run("a person's later change is never overwritten", func(t *testing.T) {
		m := checkoutWorld()
		before := m.Service()
		snap := TakeSnapshot(before, time.Now())
		j := drillJournal(snap)
		j.BrokenRevision, j.Tag = "checkout-drill-abc123", "drill-abc123"
		j.TemplateChanged = false
		ann, _ := WithRunAnnotations(before.Annotations, Lease{ID: j.ID, Owner: "runner-1", Command: "test", Expires: time.Now().Add(-time.Minute)}, *j)
		if _, err := m.SetAnnotations(ctx, before.Ref, before.Etag, ann); err != nil {
			t.Fatal(err)
		}
		fifty := mustSplit(t, "checkout-00002-bbb=50,checkout-00003-ccc=50@canary")
		m.Edit(func(s *Service) { s.Traffic = fifty })
		rc := &Recover{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}
		rep := rc.Run(ctx, RecoverOptions{Service: before.Ref, Owner: "elsewhere"})
		if rep.Result != ResultAborted || !strings.Contains(rep.Error, "someone else changed the traffic") {
			t.Errorf("result %s: %s; want aborted with the difference", rep.Result, rep.Error)
		}
		if got := m.Service().Traffic; !got.Equal(fifty) {
			t.Errorf("traffic = %s, want the person's %s", got, fifty)
		}
	})
	t.Run("nothing in flight", func(t *testing.T) {
		m := apiWorld()
		rc := &Recover{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}
		rep := rc.Run(ctx, RecoverOptions{Service: m.Service().Ref})
		if rep.Result != ResultPass || m.writes != 0 {
			t.Errorf("result %s, %d writes; want a no-op", rep.Result, m.writes)
		}
	})
}

func TestRollbackOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		fault  func(m *memRun)
		result string
		hint   string
		moved  bool
	}{
		{"clean", nil, ResultPass, "", true},
		{"lost reply: the write applied", func(m *memRun) { m.lose["UpdateTraffic"] = 1 }, ResultPass, "", true},
		{"refused: a read proves nothing changed", func(m *memRun) { m.fail["UpdateTraffic"] = []error{ErrPermission} }, ResultAborted, "nothing was changed", false},
		{"lost reply and the read back fails", func(m *memRun) {
			m.lose["UpdateTraffic"] = 1
			m.fail["GetService"] = []error{nil, ErrUnavailable, ErrUnavailable}
		}, ResultPass, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := apiWorld()
			if tt.fault != nil {
				tt.fault(m)
			}
			rb := &Rollback{Cloud: m, Probe: memProbe{m: m}}
			rep := rb.Run(t.Context(), RollbackOptions{Service: m.svc.Ref, To: "api-00001-abc"})
			if rep.Result != tt.result || !strings.Contains(rep.Hint, tt.hint) {
				t.Errorf("result %s (%s; hint %s), want %s with %q", rep.Result, rep.Error, rep.Hint, tt.result, tt.hint)
			}
			if got := m.Service().Traffic.Equal(Split{{Revision: "api-00001-abc", Percent: 100}}); got != tt.moved {
				t.Errorf("traffic = %s, moved %v want %v", m.Service().Traffic, got, tt.moved)
			}
		})
	}
}

// A promotion whose operation poll fails (NOT_FOUND, UNAUTHENTICATED) after it
// applied is verified like any other, not reported as "nothing changed".
func TestPromoteLostPoll(t *testing.T) {
	for _, pollErr := range []error{ErrNotFound, ErrUnauthenticated} {
		t.Run(pollErr.Error(), func(t *testing.T) {
			m := apiWorld()
			s := m.Service()
			stage := append(s.Traffic, Target{Revision: "api-00003-new", Tag: "candidate"})
			if _, err := m.DeployRevision(t.Context(), s.Ref, s.Etag, Deploy{Revision: "api-00003-new", Env: map[string]string{"APP_VERSION": "1.2.0"}, Traffic: stage}); err != nil {
				t.Fatal(err)
			}
			m.opFail["UpdateTrafficAnnotated"] = []error{&PendingError{Op: "promote", Operation: "op/9", Err: pollErr}}
			m.ops["op/9"] = nil
			g := &Guard{Cloud: m, Probe: memProbe{m: m}, Journal: testJournal(t)}
			rep := g.Run(t.Context(), GuardOptions{Service: s.Ref, Candidate: "candidate", Owner: "me"})
			if rep.Result != ResultPass {
				t.Fatalf("result %s: %s (hint %s)", rep.Result, rep.Error, rep.Hint)
			}
			if got := m.Service().Traffic.String(); got != "api-00003-new=100@last-good, api-00002-def=0" && !strings.Contains(got, "api-00003-new=100") {
				t.Errorf("traffic = %s", got)
			}
			if HasRunAnnotations(m.Service().Annotations) {
				t.Errorf("lease left: %v", m.Service().Annotations)
			}
		})
	}
}

var _ = errors.New

// A run removes only its own lease and journal: after another run took over,
// its annotations stay.
func TestReleaseKeepsAnotherRunsLease(t *testing.T) {
	m := apiWorld()
	s := m.Service()
	theirs := Journal{Schema: JournalSchema, ID: "bbbbbb", Command: "test", Snapshot: TakeSnapshot(s, time.Now())}
	ann, _ := WithRunAnnotations(s.Annotations, Lease{ID: "bbbbbb", Owner: "b@host", Command: "test", Expires: time.Now().Add(time.Hour)}, theirs)
	if _, err := m.SetAnnotations(t.Context(), s.Ref, s.Etag, ann); err != nil {
		t.Fatal(err)
	}
	var warned []string
	c := &converger{cloud: m, ref: s.Ref, j: &Journal{ID: "aaaaaa"}, svc: m.Service(), rep: &Report{}, warn: func(w string) { warned = append(warned, w) }}
	forgot := false
	if _, err := c.release(t.Context(), func() error { forgot = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if l, _ := leaseOf(m.Service()); l == nil || l.ID != "bbbbbb" {
		t.Errorf("lease = %+v, want run bbbbbb's kept", l)
	}
	if !forgot || len(warned) != 1 || !strings.Contains(warned[0], "another run's") {
		t.Errorf("forgot %v, warned %v", forgot, warned)
	}
	// Our own, or an unreadable one, goes.
	c.j.ID = "bbbbbb"
	if _, err := c.release(t.Context(), func() error { return nil }); err != nil || HasRunAnnotations(m.Service().Annotations) {
		t.Errorf("release = %v, annotations %v", err, m.Service().Annotations)
	}
}

// A drill does not take over an expired lease whose run left its entries.
func TestPreflightRefusesExpiredLeaseWithLeftovers(t *testing.T) {
	m := apiWorld()
	s := m.Service()
	old := Journal{Schema: JournalSchema, ID: "old123", Command: "test", Snapshot: TakeSnapshot(s, time.Now())}
	ann, _ := WithRunAnnotations(s.Annotations, Lease{ID: "old123", Owner: "gone", Command: "test", Expires: time.Now().Add(-time.Minute)}, old)
	m.Edit(func(s *Service) {
		s.Annotations = ann
		s.Traffic = append(s.Traffic, Target{Revision: "api-00001-abc", Tag: "drill-old123"})
	})
	before := m.writes
	rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: s.Ref, Break: healthBreak(t), TrafficPercent: 100})
	if rep.Result != ResultAborted || !strings.Contains(rep.Hint, "recover") || m.writes != before {
		t.Errorf("result %s (%s, hint %s), %d writes; want aborted before writing", rep.Result, rep.Error, rep.Hint, m.writes-before)
	}
}

func TestInferFromServiceState(t *testing.T) {
	tests := []struct {
		world   *memRun
		traffic string
		want    string // "" = stop
	}{
		{apiWorld(), "api-00002-def=0,api-drill-abc123=100@drill-abc123", "api-00002-def=100"},
		{apiWorld(), "api-00002-def=100,api-drill-abc123=0@drill-abc123", "api-00002-def=100"},
		{checkoutWorld(), "checkout-00002-bbb=0,checkout-00003-ccc=0@canary,checkout-drill-abc123=100@drill-abc123", ""},
		{checkoutWorld(), "checkout-00002-bbb=90,checkout-00003-ccc=10@canary,checkout-drill-abc123=0@drill-abc123", "checkout-00002-bbb=90,checkout-00003-ccc=10@canary"},
	}
	for _, tt := range tests {
		t.Run(tt.traffic, func(t *testing.T) {
			m := tt.world
			ref := m.Service().Ref
			if err := m.setTraffic(Split{{Revision: ref.Name + "-00002-" + map[string]string{"api": "def", "checkout": "bbb"}[ref.Name], Percent: 100}}); err != nil {
				t.Fatal(err)
			}
			m.mu.Lock()
			_ = m.newRevision(ref.Name+"-drill-abc123", memTemplate{Env: map[string]string{BreakEnvVar: "health"}})
			m.mu.Unlock()
			m.Edit(func(s *Service) { s.Traffic = mustSplit(t, tt.traffic) })
			rr := &recoverRun{runner: newRunner(&Report{}, nil, nil, nil, FileJournal{}), rc: &Recover{Cloud: m}, o: RecoverOptions{Service: ref}, svc: m.Service()}
			j, _, err := rr.infer(t.Context(), "")
			if tt.want == "" {
				if err == nil || !errors.Is(err, ErrNotRestored) || !strings.Contains(rr.hint, "runrollback rollback") {
					t.Errorf("infer = %v, %v (hint %q); want a stop with the commands", j, err, rr.hint)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := j.Snapshot.Traffic.String(); got != mustSplit(t, tt.want).String() || j.ID != "abc123" || !j.TemplateChanged || j.Mark == nil {
				t.Errorf("journal %+v, traffic %s, want %s", j, got, tt.want)
			}
		})
	}
}

func TestTagsFitTheServiceName(t *testing.T) {
	name := func(n int) string { return "s" + strings.Repeat("x", n-1) }
	for _, tt := range []struct {
		n        int
		tag      string // "" = no room
		lastGood string
	}{
		{3, "drill-abc123", "last-good"},
		{34, "drill-abc123", "last-good"},
		{35, "dabc123", "last-good"},
		{37, "dabc123", "last-good"},
		{38, "dabc123", "good"},
		{40, "dabc12", "good"},
		{42, "dabc", "good"},
		{43, "dab", "lg"},
		{44, "da", "lg"},
		{45, "", ""},
		{46, "", ""},
		{49, "", ""},
	} {
		tag, rev, id, err := DrillNames(name(tt.n), "abc123")
		if tt.tag == "" {
			if !errors.Is(err, ErrNoTagRoom) {
				t.Errorf("%d: DrillNames = %q, %v; want no room", tt.n, tag, err)
			}
		} else if tag != tt.tag || err != nil || rev != name(tt.n)+"-drill-"+id || len(tag)+tt.n > MaxTagAndService || len(rev) > 63 {
			t.Errorf("%d: DrillNames = %q, %q, %q, %v; want tag %q", tt.n, tag, rev, id, err, tt.tag)
		}
		lg, err := LastGoodTag(name(tt.n), "", false)
		if lg != tt.lastGood || (lg == "") != errors.Is(err, ErrNoTagRoom) {
			t.Errorf("%d: LastGoodTag = %q, %v; want %q", tt.n, lg, err, tt.lastGood)
		}
	}
	if _, err := LastGoodTag(name(38), "last-good", true); !errors.Is(err, ErrNoTagRoom) {
		t.Errorf("an explicit tag that does not fit: %v", err)
	}
}

// The journal on the service does not grow with the template: measured
// against the largest template Cloud Run allows (1,000 env vars, each value
// up to 32,768 bytes), and a traffic list of 100 entries, it stays far below
// the 256 KiB Cloud Run allows for all of a service's annotations.
func TestJournalAnnotationSize(t *testing.T) {
	env := map[string]string{}
	for i := range 1000 {
		env[fmt.Sprintf("VAR_%04d", i)] = strings.Repeat("v", 32768)
	}
	raw := []byte(strings.Repeat("t", 1000*(32768+16)))
	var traffic Split
	for i := range 100 {
		traffic = append(traffic, Target{Revision: fmt.Sprintf("svc-%05d-abc", i), Percent: map[bool]int32{true: 100}[i == 0], Tag: fmt.Sprintf("t%02d", i)})
	}
	svc := &Service{Ref: ServiceRef{Project: "p-123456", Region: "us-central1", Name: strings.Repeat("s", 44)}, Traffic: traffic,
		Template: Template{Revision: "svc-00001-abc", Hash: "0123456789abcdef", Image: "us-docker.pkg.dev/p/app/app:1", Env: env, Raw: raw}}
	snap := TakeSnapshot(svc, time.Now())
	b, _ := ParseBreak("flaky:50")
	j := Journal{Schema: JournalSchema, ID: "abc123", Command: "test", Owner: "github.com/org/repo run 1234567890", Started: time.Now(),
		Snapshot: snap, BrokenRevision: svc.Ref.Name + "-drill-a", Tag: "da", TemplateChanged: true, Mark: markOf(b, snap.Template),
		Plan: []Split{append(traffic, Target{Revision: "x", Tag: "da"}), append(traffic, Target{Revision: "x", Percent: 100, Tag: "da"})}, PID: 99999}
	size := JournalAnnotationSize(j)
	t.Logf("template %d bytes; journal annotation %d bytes (limit for all annotations %d)", len(raw)+len(env)*32768, size, 256<<10)
	if size > 32<<10 {
		t.Errorf("journal annotation is %d bytes, want it well within 256 KiB", size)
	}
	ann, err := WithRunAnnotations(nil, Lease{ID: j.ID}, j)
	if err != nil || strings.Contains(ann[AnnotationJournal], "vvvv") {
		t.Errorf("the annotation carries the template's env: %v", err)
	}
}

// After cleanup, a LATEST-tracking service serves the fresh revision built from
// the restored template: it is verified, and when its image tag now resolves to
// another build, users are kept on the revision that served before.
func TestVerifyWhatServesAfterCleanup(t *testing.T) {
	t.Run("fresh revision healthy", func(t *testing.T) {
		m := webWorld()
		before := m.Service()
		rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
		if rep.Result != ResultPass || rep.After.Revision == "web-00001-aaa" || rep.After.Version != "1.0.0" {
			t.Fatalf("result %s (%s), after %+v; want pass, served by the fresh revision", rep.Result, rep.Error, rep.After)
		}
		assertClean(t, m, before.Traffic, before.Template)
	})
	t.Run("image tag moved", func(t *testing.T) {
		m := webWorld()
		m.registry = map[string]string{"web:1": "2.0.0-rc"}
		before := m.Service()
		rep := newDrill(t, m).Run(t.Context(), DrillOptions{Service: before.Ref, Break: healthBreak(t), TrafficPercent: 100})
		if rep.Result == ResultPass || len(rep.LeftBehind) != 1 || !strings.Contains(rep.LeftBehind[0], "instead of LATEST") ||
			!strings.Contains(rep.LeftBehind[0], "now resolves to something else") || !strings.Contains(rep.Hint, "Redeploy by digest") || !strings.Contains(rep.Hint, "--to-latest") {
			t.Fatalf("result %s, left %v, hint %q", rep.Result, rep.LeftBehind, rep.Hint)
		}
		if got := m.Service().Traffic.String(); got != "web-00001-aaa=100" {
			t.Errorf("traffic = %s, want users kept on web-00001-aaa", got)
		}
	})
}
