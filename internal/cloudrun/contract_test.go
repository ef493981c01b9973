package cloudrun_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// contractEnv is one backend the contract suite runs against: the fake on every
// `go test`, real Cloud Run under the live build tag.
type contractEnv struct {
	client *cloudrun.Client
	// ref is a service with at least two ready revisions, the newer serving 100%.
	ref rollback.ServiceRef
	// older is the other ready revision of ref.
	older string
}

// testContract is what any Cloud Run the adapter talks to must do, as seen
// through the adapter.
func testContract(t *testing.T, newEnv func(t *testing.T) contractEnv) {
	t.Run("read service and revisions", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		svc, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatalf("GetService(%s) = %v", e.ref, err)
		}
		if svc.Ref != e.ref || svc.Etag == "" || svc.Generation < 1 || svc.URI == "" || !svc.Ready || !svc.Converged() {
			t.Errorf("GetService(%s) = %+v, want ready, converged, with etag, generation and URI", e.ref, svc)
		}
		if len(svc.Template.Raw) == 0 || svc.Template.Hash == "" {
			t.Errorf("GetService(%s).Template = %+v, want the raw template and its hash", e.ref, svc.Template)
		}
		revs, err := e.client.ListRevisions(ctx, e.ref)
		if err != nil {
			t.Fatalf("ListRevisions(%s) = %v", e.ref, err)
		}
		if len(revs) < 2 {
			t.Fatalf("ListRevisions(%s) = %d revisions, want at least 2", e.ref, len(revs))
		}
		if !slices.IsSortedFunc(revs, func(a, b rollback.Revision) int { return b.CreateTime.Compare(a.CreateTime) }) {
			t.Errorf("ListRevisions(%s) is not newest first: %v", e.ref, revs)
		}
	})

	t.Run("traffic-only update moves traffic and back", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		before, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		to := rollback.Split{{Revision: e.older, Percent: 100}}
		after, err := e.client.UpdateTraffic(ctx, e.ref, before.Etag, to)
		if err != nil {
			t.Fatalf("UpdateTraffic(%s) = %v", to, err)
		}
		if !after.Traffic.Equal(to) || after.Generation != before.Generation+1 || after.Etag == before.Etag {
			t.Errorf("after UpdateTraffic: traffic %s gen %d etag %q; want %s, gen %d, a new etag", after.Traffic, after.Generation, after.Etag, to, before.Generation+1)
		}
		if after.LatestCreatedRevision != before.LatestCreatedRevision {
			t.Errorf("a traffic-only update created revision %s", after.LatestCreatedRevision)
		}
		if !rollback.SameSplit(after.ActualSplit(), to) {
			t.Errorf("actual split %s, want %s", after.ActualSplit(), to)
		}
		back, err := e.client.UpdateTraffic(ctx, e.ref, after.Etag, before.Traffic)
		if err != nil {
			t.Fatalf("UpdateTraffic back = %v", err)
		}
		if !back.Traffic.Equal(before.Traffic) {
			t.Errorf("traffic back = %s, want %s", back.Traffic, before.Traffic)
		}
	})

	t.Run("stale etag is a conflict and changes nothing", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		before, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		moved, err := e.client.UpdateTraffic(ctx, e.ref, before.Etag, rollback.Split{{Revision: e.older, Percent: 100}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.UpdateTraffic(ctx, e.ref, before.Etag, before.Traffic)
		if !errors.Is(err, rollback.ErrConflict) {
			t.Fatalf("UpdateTraffic with a stale etag = %v, want ErrConflict", err)
		}
		cur, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Etag != moved.Etag || !cur.Traffic.Equal(moved.Traffic) {
			t.Errorf("after a conflict the service changed: %s (etag %s), want %s (etag %s)", cur.Traffic, cur.Etag, moved.Traffic, moved.Etag)
		}
		if _, err := e.client.UpdateTraffic(ctx, e.ref, cur.Etag, before.Traffic); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown revision is invalid", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		before, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.UpdateTraffic(ctx, e.ref, before.Etag, rollback.Split{{Revision: e.ref.Name + "-99999-zzz", Percent: 100}})
		if !errors.Is(err, rollback.ErrInvalid) {
			t.Errorf("UpdateTraffic to an unknown revision = %v, want ErrInvalid", err)
		}
	})

	t.Run("missing service is not found", func(t *testing.T) {
		e := newEnv(t)
		ref := e.ref
		ref.Name = "no-such-service-rr"
		_, err := e.client.GetService(t.Context(), ref)
		if !errors.Is(err, rollback.ErrNotFound) {
			t.Errorf("GetService(%s) = %v, want ErrNotFound", ref, err)
		}
	})

	t.Run("deploy a tagged revision at 0%, restore the template, delete it", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		before, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		pinned := rollback.Resolve(before.Traffic, before.LatestReadyRevision)
		name := e.ref.Name + "-drill-ctest1"
		deployed, err := e.client.DeployRevision(ctx, e.ref, before.Etag, rollback.Deploy{
			Revision: name,
			Env:      map[string]string{"RUNROLLBACK_BREAK": "health"},
			Traffic:  append(slices.Clone(pinned), rollback.Target{Revision: name, Tag: "drill-ctest1"}),
		})
		if err != nil {
			t.Fatalf("DeployRevision = %v", err)
		}
		if deployed.LatestCreatedRevision != name || deployed.Template.Env["RUNROLLBACK_BREAK"] != "health" {
			t.Errorf("after DeployRevision: latest created %s, env %v; want %s with the break", deployed.LatestCreatedRevision, deployed.Template.Env, name)
		}
		var tagURI string
		for _, st := range deployed.TrafficStatuses {
			if st.Tag == "drill-ctest1" {
				tagURI = st.URI
				if st.Revision != name || st.Percent != 0 {
					t.Errorf("tag status = %+v, want %s at 0%%", st, name)
				}
			}
		}
		if tagURI == "" {
			t.Errorf("no URI for the drill tag in %+v", deployed.TrafficStatuses)
		}
		restored, err := e.client.ReplaceTemplate(ctx, e.ref, deployed.Etag, before.Template, pinned)
		if err != nil {
			t.Fatalf("ReplaceTemplate = %v", err)
		}
		if restored.Template.Hash != before.Template.Hash {
			t.Errorf("template hash after restore = %s, want %s", restored.Template.Hash, before.Template.Hash)
		}
		if restored.LatestCreatedRevision == name || restored.LatestCreatedRevision == before.LatestCreatedRevision {
			t.Errorf("ReplaceTemplate did not build a fresh revision: latest created %s", restored.LatestCreatedRevision)
		}
		if err := e.client.DeleteRevision(ctx, e.ref, name); err != nil {
			t.Fatalf("DeleteRevision(%s) = %v", name, err)
		}
		if err := e.client.DeleteRevision(ctx, e.ref, name); err != nil {
			t.Errorf("DeleteRevision(%s) again = %v, want nil (already gone)", name, err)
		}
	})

	t.Run("deleting a serving revision is refused", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		svc, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		serving := svc.ActualSplit()[0].Revision
		err = e.client.DeleteRevision(ctx, e.ref, serving)
		if !errors.Is(err, rollback.ErrRefused) {
			t.Errorf("DeleteRevision(%s) = %v, want ErrRefused", serving, err)
		}
	})

	t.Run("annotations", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		svc, err := e.client.GetService(ctx, e.ref)
		if err != nil {
			t.Fatal(err)
		}
		ann := rollback.WithoutRunAnnotations(svc.Annotations)
		ann["runrollback.dev/lease"] = `{"id":"x"}`
		got, err := e.client.SetAnnotations(ctx, e.ref, svc.Etag, ann)
		if err != nil {
			t.Fatalf("SetAnnotations = %v", err)
		}
		if got.Annotations["runrollback.dev/lease"] != `{"id":"x"}` || got.LatestCreatedRevision != svc.LatestCreatedRevision {
			t.Errorf("after SetAnnotations: %v, latest created %s", got.Annotations, got.LatestCreatedRevision)
		}
		clean, err := e.client.SetAnnotations(ctx, e.ref, got.Etag, rollback.WithoutRunAnnotations(got.Annotations))
		if err != nil {
			t.Fatal(err)
		}
		if rollback.HasRunAnnotations(clean.Annotations) {
			t.Errorf("annotations after removal = %v", clean.Annotations)
		}
	})

	t.Run("calls are counted", func(t *testing.T) {
		e := newEnv(t)
		r0, w0 := e.client.Calls()
		svc, err := e.client.GetService(t.Context(), e.ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.UpdateTraffic(t.Context(), e.ref, svc.Etag, svc.Traffic); err != nil {
			t.Fatal(err)
		}
		r1, w1 := e.client.Calls()
		if r1-r0 < 1 || w1-w0 != 1 {
			t.Errorf("Calls() moved by reads %d, writes %d; want ≥1 read and 1 write", r1-r0, w1-w0)
		}
	})
}
