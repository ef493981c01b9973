package fakerun_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

const notReady = "is not ready and cannot serve traffic. The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable within the allocated timeout."

func TestRevisionThatFailsToStart(t *testing.T) {
	e := newEnv(t)
	before := e.get(t, apiName)

	// A drill-style deploy: a named, tagged, 0% revision with the break.
	tpl := template("us-docker.pkg.dev/local-project/app/api:1.1.0", "APP_VERSION", "1.1.0", "RUNROLLBACK_BREAK", "startup")
	tpl.Revision = "api-drill-1"
	traffic := []*runpb.TrafficTarget{pin("api-00002-def", 100), tagged("api-drill-1", 0, "drill-1")}
	_, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Etag: before.GetEtag(), Template: tpl, Traffic: traffic},
		UpdateMask: mask("template", "traffic"),
	})
	wantCode(t, "deploy of a revision that fails to start", err, codes.FailedPrecondition, "Revision 'api-drill-1' "+notReady)

	got := e.get(t, apiName)
	if diff := diffProto(traffic, got.GetTraffic()); diff != "" {
		t.Errorf("desired traffic after the failure (-want +got):\n%s", diff)
	}
	if diff := diffProto(before.GetTrafficStatuses(), got.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses moved (-before +after):\n%s", diff)
	}
	if got.GetGeneration() != 2 || got.GetObservedGeneration() != 1 {
		t.Errorf("generation, observed_generation = %d, %d; want 2, 1", got.GetGeneration(), got.GetObservedGeneration())
	}
	if got.GetLatestReadyRevision() != before.GetLatestReadyRevision() || got.GetLatestCreatedRevision() != apiName+"/revisions/api-drill-1" {
		t.Errorf("latest ready, created = %q, %q; want %q, …/api-drill-1", got.GetLatestReadyRevision(), got.GetLatestCreatedRevision(), before.GetLatestReadyRevision())
	}
	if tc := got.GetTerminalCondition(); tc.GetState() != runpb.Condition_CONDITION_FAILED || !strings.Contains(tc.GetMessage(), notReady) {
		t.Errorf("terminal_condition = %v, want FAILED with the not-ready message", tc)
	}
	rev, err := e.revs.GetRevision(t.Context(), &runpb.GetRevisionRequest{Name: apiName + "/revisions/api-drill-1"})
	if err != nil {
		t.Fatalf("GetRevision(api-drill-1) = %v", err)
	}
	if c := rev.GetConditions()[0]; c.GetType() != "Ready" || c.GetState() != runpb.Condition_CONDITION_FAILED {
		t.Errorf("api-drill-1 Ready condition = %v, want FAILED", c)
	}
	if r, ok := e.srv.Routes(apiName, "drill-1"); ok {
		t.Errorf("Routes(api, drill-1) = %v, true; want no such tag while it is not served", r)
	}

	// A later update whose traffic still names it fails the same way.
	_, err = e.setTraffic(t, apiName, traffic...)
	wantCode(t, "traffic still naming the broken revision", err, codes.FailedPrecondition, "Revision 'api-drill-1' "+notReady)

	// Restoring the split succeeds and serves again; the service stays not
	// Ready while its latest created revision is the failed one (see
	// TestReadyAfterFailedRevision).
	restored, err := e.setTraffic(t, apiName, pin("api-00002-def", 100))
	if err != nil {
		t.Fatalf("restore = %v", err)
	}
	if restored.GetObservedGeneration() != restored.GetGeneration() || restored.GetTerminalCondition().GetState() != runpb.Condition_CONDITION_FAILED {
		t.Errorf("after restore: observed %d of %d, terminal %v; want the generation served, Ready still FAILED", restored.GetObservedGeneration(), restored.GetGeneration(), restored.GetTerminalCondition())
	}
	// It is the latest created revision: Cloud Run refuses to delete it.
	_, err = e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: apiName + "/revisions/api-drill-1"})
	wantCode(t, "DeleteRevision(latest created)", err, codes.FailedPrecondition, "latest created revision")

	// Writing the original template back builds a fresh revision; then the
	// broken one is neither latest nor in the traffic, and can be deleted.
	orig := before.GetTemplate()
	fresh := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: orig}, UpdateMask: mask("template")})
	if !strings.HasPrefix(shortName(fresh.GetLatestCreatedRevision()), "api-00004-") {
		t.Errorf("fresh revision = %q, want api-00004-…", fresh.GetLatestCreatedRevision())
	}
	if fresh.GetTerminalCondition().GetState() != runpb.Condition_CONDITION_SUCCEEDED || fresh.GetLatestReadyRevision() != fresh.GetLatestCreatedRevision() {
		t.Errorf("after the fresh revision: terminal %v, latest ready %s, created %s; want Ready", fresh.GetTerminalCondition(), fresh.GetLatestReadyRevision(), fresh.GetLatestCreatedRevision())
	}
	op, err := e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: apiName + "/revisions/api-drill-1"})
	if err != nil {
		t.Fatalf("DeleteRevision(api-drill-1) = %v", err)
	}
	if r, err := waitOp(t, op); err != nil || shortName(r.GetName()) != "api-drill-1" {
		t.Errorf("DeleteRevision(api-drill-1).Wait() = %v, %v", r.GetName(), err)
	}
}

func TestLatestTrackingServiceWithImageThatCrashes(t *testing.T) {
	e := newEnv(t)
	before := e.get(t, webName)
	_, err := e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: webName, Template: template("web:crash-on-start")}})
	wantCode(t, "deploy of crash-on-start to a LATEST service", err, codes.FailedPrecondition, notReady)
	got := e.get(t, webName)
	if diff := diffProto(before.GetTrafficStatuses(), got.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses moved (-before +after):\n%s", diff)
	}
	if r, ok := e.srv.Routes(webName, ""); !ok || len(r) != 1 || r[0].Revision != "web-00001-aaa" || !r[0].Ready {
		t.Errorf("Routes(web) = %v, %v; want 100%% web-00001-aaa", r, ok)
	}
	// LATEST is the latest *ready* revision: a LATEST split serves the old one.
	got, err = e.setTraffic(t, webName, latest(100))
	if err != nil || len(got.GetTrafficStatuses()) != 1 || got.GetTrafficStatuses()[0].GetRevision() != "web-00001-aaa" {
		t.Errorf("LATEST after the failed revision = %v, %v; want it to resolve to web-00001-aaa", got.GetTrafficStatuses(), err)
	}
	// Pinned to the good one, it serves.
	if _, err := e.setTraffic(t, webName, pin("web-00001-aaa", 100)); err != nil {
		t.Errorf("pin web-00001-aaa = %v", err)
	}
}

func TestDeleteRevisionRules(t *testing.T) {
	e := newEnv(t)
	del := func(rev string) error {
		t.Helper()
		op, err := e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: checkoutName + "/revisions/" + rev})
		if err != nil {
			return err
		}
		_, err = waitOp(t, op)
		return err
	}
	wantCode(t, "delete serving revision", del("checkout-00002-bbb"), codes.FailedPrecondition, "serving 90% of the traffic")
	wantCode(t, "delete latest created revision", del("checkout-00003-ccc"), codes.FailedPrecondition, "latest created revision")

	// Deploy a newer revision so that checkout-00003-ccc is only tagged.
	e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: checkoutName, Template: template("checkout:2.2.0", "APP_VERSION", "2.2.0"), Traffic: []*runpb.TrafficTarget{pin("checkout-00002-bbb", 100), tagged("checkout-00003-ccc", 0, "canary")}},
		UpdateMask: mask("template", "traffic"),
	})
	wantCode(t, "delete tagged revision", del("checkout-00003-ccc"), codes.FailedPrecondition, "tagged 'canary'")
	if _, err := e.setTraffic(t, checkoutName, pin("checkout-00002-bbb", 100), pin("checkout-00003-ccc", 0)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete revision named at 0%", del("checkout-00003-ccc"), codes.FailedPrecondition, "names it")
	if _, err := e.setTraffic(t, checkoutName, pin("checkout-00002-bbb", 100)); err != nil {
		t.Fatal(err)
	}
	if err := del("checkout-00003-ccc"); err != nil {
		t.Fatalf("delete unused revision = %v", err)
	}
	_, err := e.revs.GetRevision(t.Context(), &runpb.GetRevisionRequest{Name: checkoutName + "/revisions/checkout-00003-ccc"})
	wantCode(t, "GetRevision(deleted)", err, codes.NotFound, "Resource 'checkout-00003-ccc' of kind 'REVISION' in region 'us-central1' in project 'local-project' does not exist.")
	if names := e.revisionNames(t, checkoutName); slices.Contains(names, "checkout-00003-ccc") || len(names) != 2 {
		t.Errorf("revisions after delete = %v", names)
	}
	_, err = e.setTraffic(t, checkoutName, pin("checkout-00003-ccc", 100))
	wantCode(t, "traffic to a deleted revision", err, codes.InvalidArgument, "not found")
	wantCode(t, "delete it again", del("checkout-00003-ccc"), codes.NotFound)

	// The only revision.
	op, err := e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: webName + "/revisions/web-00001-aaa"})
	if err == nil {
		_, err = waitOp(t, op)
	}
	wantCode(t, "delete the only revision", err, codes.FailedPrecondition, "only revision")

	// A stale etag on the revision.
	_, err = e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: apiName + "/revisions/api-00001-abc", Etag: `"stale"`})
	wantCode(t, "DeleteRevision(stale etag)", err, codes.Aborted)
}

func TestDeleteService(t *testing.T) {
	e := newEnv(t)
	op, err := e.svcs.DeleteService(t.Context(), &runpb.DeleteServiceRequest{Name: webName})
	if err != nil {
		t.Fatalf("DeleteService(web) = %v", err)
	}
	got, err := waitOp(t, op)
	if err != nil || got.GetName() != webName {
		t.Fatalf("DeleteService(web).Wait() = %v, %v", got.GetName(), err)
	}
	_, err = e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: webName})
	wantCode(t, "GetService(deleted)", err, codes.NotFound)
	if e.srv.Service(webName) != nil || e.srv.Revision(webName+"/revisions/web-00001-aaa") != nil {
		t.Errorf("the deleted service or its revision is still there")
	}
	if n := len(e.srv.Services()); n != 2 {
		t.Errorf("Services() = %d services, want 2", n)
	}
	_, err = e.svcs.DeleteService(t.Context(), &runpb.DeleteServiceRequest{Name: webName})
	wantCode(t, "DeleteService(again)", err, codes.NotFound)
}

func TestHeldOperations(t *testing.T) {
	e := newEnv(t)
	e.srv.HoldOperations(true)
	op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Template: template("api:1.2.0", "APP_VERSION", "1.2.0"), Traffic: []*runpb.TrafficTarget{latest(100)}},
		UpdateMask: mask("template", "traffic"),
	})
	if err != nil {
		t.Fatalf("UpdateService = %v", err)
	}
	if op.Done() {
		t.Fatalf("operation is done while operations are held")
	}
	if !strings.HasPrefix(op.Name(), loc+"/operations/") {
		t.Errorf("operation name = %q, want %s/operations/…", op.Name(), loc)
	}
	if got, err := op.Poll(t.Context()); err != nil || got != nil || op.Done() {
		t.Fatalf("Poll() while held = %v, %v, done %v; want nil, nil, false", got, err, op.Done())
	}
	meta, err := op.Metadata()
	if err != nil || meta.GetName() != apiName {
		t.Errorf("Metadata() = %v, %v; want the service", meta.GetName(), err)
	}

	svc := e.get(t, apiName)
	if !svc.GetReconciling() || svc.GetGeneration() != 2 || svc.GetObservedGeneration() != 1 {
		t.Errorf("while held: reconciling %v, generation %d, observed %d; want true, 2, 1", svc.GetReconciling(), svc.GetGeneration(), svc.GetObservedGeneration())
	}
	if svc.GetTerminalCondition().GetState() != runpb.Condition_CONDITION_RECONCILING {
		t.Errorf("terminal_condition while held = %v, want RECONCILING", svc.GetTerminalCondition())
	}
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeRevision, "api-00002-def", 100, "", "")}, svc.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses while held (-want +got):\n%s", diff)
	}
	newRev := svc.GetLatestCreatedRevision()
	if svc.GetLatestReadyRevision() == newRev {
		t.Errorf("latest_ready_revision = the pending revision %q", newRev)
	}
	if r := e.srv.Revision(newRev); !r.GetReconciling() || r.GetConditions()[0].GetState() != runpb.Condition_CONDITION_RECONCILING {
		t.Errorf("pending revision: reconciling %v, Ready %v", r.GetReconciling(), r.GetConditions()[0])
	}
	raw, err := e.svcs.GetOperation(t.Context(), &longrunningpb.GetOperationRequest{Name: op.Name()})
	if err != nil || raw.GetDone() {
		t.Errorf("GetOperation while held = done %v, %v; want false, nil", raw.GetDone(), err)
	}

	e.srv.ReleaseOperations()
	got, err := op.Poll(t.Context())
	if err != nil || !op.Done() {
		t.Fatalf("Poll() after release = %v, done %v", err, op.Done())
	}
	if got.GetReconciling() || got.GetObservedGeneration() != 2 || got.GetLatestReadyRevision() != newRev {
		t.Errorf("after release: reconciling %v, observed %d, latest ready %q; want false, 2, %q", got.GetReconciling(), got.GetObservedGeneration(), got.GetLatestReadyRevision(), newRev)
	}
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeLatest, shortName(newRev), 100, "", "")}, got.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses after release (-want +got):\n%s", diff)
	}
}

func TestHeldOperationsInOrder(t *testing.T) {
	e := newEnv(t)
	e.srv.HoldOperations(true)
	first, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}}, UpdateMask: mask("traffic")})
	if err != nil {
		t.Fatal(err)
	}
	broken, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: template("api:crash-on-start")}, UpdateMask: mask("template")})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(false)
	e.srv.ReleaseOperations()
	if _, err := waitOp(t, first); err != nil {
		t.Errorf("first held operation = %v, want success", err)
	}
	_, err = waitOp(t, broken)
	wantCode(t, "second held operation", err, codes.FailedPrecondition, notReady)
	svc := e.get(t, apiName)
	if svc.GetReconciling() || svc.GetObservedGeneration() != 2 || svc.GetGeneration() != 3 {
		t.Errorf("after release: reconciling %v, observed %d, generation %d; want false, 2, 3", svc.GetReconciling(), svc.GetObservedGeneration(), svc.GetGeneration())
	}
	if svc.GetTrafficStatuses()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("traffic_statuses = %v, want api-00001-abc from the first operation", svc.GetTrafficStatuses())
	}
}

func TestWaitOperation(t *testing.T) {
	// WaitOperation honours the request's timeout here; see
	// TestWaitOperationReturnsEarly for the default.
	ro := fakerun.DefaultRollout()
	ro.WaitMax = -1
	e := newEnv(t, fakerun.WithRollout(ro))
	e.srv.HoldOperations(true)
	op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}}, UpdateMask: mask("traffic")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svcs.WaitOperation(t.Context(), &longrunningpb.WaitOperationRequest{Name: op.Name(), Timeout: durationpb.New(time.Millisecond)})
	if err != nil || got.GetDone() {
		t.Fatalf("WaitOperation(1ms) while held = done %v, %v; want false, nil", got.GetDone(), err)
	}

	type result struct {
		op  *longrunningpb.Operation
		err error
	}
	done := make(chan result, 1)
	go func() {
		op, err := e.svcs.WaitOperation(t.Context(), &longrunningpb.WaitOperationRequest{Name: op.Name(), Timeout: durationpb.New(time.Minute)})
		done <- result{op, err}
	}()
	waitFor(t, "the second WaitOperation call", func() bool { return e.srv.Calls()["WaitOperation"] == 2 })
	e.srv.ReleaseOperations()
	r := <-done
	if r.err != nil || !r.op.GetDone() || r.op.GetResponse() == nil {
		t.Errorf("WaitOperation after release = %v, %v; want done with a response", r.op, r.err)
	}
}

func TestListAndDeleteOperations(t *testing.T) {
	e := newEnv(t)
	var names []string
	for _, rev := range []string{"api-00001-abc", "api-00002-def"} {
		op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin(rev, 100)}}, UpdateMask: mask("traffic")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := waitOp(t, op); err != nil {
			t.Fatal(err)
		}
		names = append(names, op.Name())
	}
	var got []string
	it := e.svcs.ListOperations(t.Context(), &longrunningpb.ListOperationsRequest{Name: loc, PageSize: 1})
	for {
		op, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("ListOperations = %v", err)
		}
		if !op.GetDone() {
			t.Errorf("operation %s not done", op.GetName())
		}
		got = append(got, op.GetName())
	}
	if want := []string{names[1], names[0]}; !slices.Equal(got, want) {
		t.Errorf("ListOperations = %v, want %v (newest first)", got, want)
	}
	if err := e.svcs.DeleteOperation(t.Context(), &longrunningpb.DeleteOperationRequest{Name: names[0]}); err != nil {
		t.Fatalf("DeleteOperation = %v", err)
	}
	_, err := e.svcs.GetOperation(t.Context(), &longrunningpb.GetOperationRequest{Name: names[0]})
	wantCode(t, "GetOperation(deleted)", err, codes.NotFound)
	// Resuming by name, as from another process.
	svc, err := e.svcs.UpdateServiceOperation(names[1]).Wait(t.Context())
	if err != nil || svc.GetName() != apiName {
		t.Errorf("UpdateServiceOperation(name).Wait() = %v, %v", svc.GetName(), err)
	}
}

func TestListRevisionsAcrossAndPaging(t *testing.T) {
	e := newEnv(t)
	all := e.revisionNames(t, loc+"/services/-")
	want := []string{"checkout-00003-ccc", "checkout-00002-bbb", "web-00001-aaa", "api-00002-def", "api-00001-abc"}
	if !slices.Equal(all, want) {
		t.Errorf("ListRevisions(services/-) = %v, want %v", all, want)
	}
	_, raw := rawClients(t, e.srv)
	resp, err := raw.ListRevisions(t.Context(), &runpb.ListRevisionsRequest{Parent: apiName, PageSize: 1})
	if err != nil || len(resp.GetRevisions()) != 1 || resp.GetNextPageToken() == "" {
		t.Fatalf("ListRevisions(page 1) = %v, token %q, %v", resp.GetRevisions(), resp.GetNextPageToken(), err)
	}
	resp2, err := raw.ListRevisions(t.Context(), &runpb.ListRevisionsRequest{Parent: apiName, PageSize: 1, PageToken: resp.GetNextPageToken()})
	if err != nil || len(resp2.GetRevisions()) != 1 || resp2.GetNextPageToken() != "" || shortName(resp2.GetRevisions()[0].GetName()) != "api-00001-abc" {
		t.Fatalf("ListRevisions(page 2) = %v, token %q, %v", resp2.GetRevisions(), resp2.GetNextPageToken(), err)
	}
	_, err = raw.ListRevisions(t.Context(), &runpb.ListRevisionsRequest{Parent: loc + "/services/nope"})
	wantCode(t, "ListRevisions(nope)", err, codes.NotFound)
}

// A rollout and a revision's deletion both held: once released, the service
// is no longer reconciling (only a pending rollout shows it so).
func TestHeldRolloutAndDeletion(t *testing.T) {
	e := newEnv(t)
	e.srv.HoldOperations(true)
	if _, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{{Type: typeRevision, Revision: "api-00002-def", Percent: 100}}},
		UpdateMask: mask("traffic"),
	}); err != nil {
		t.Fatalf("UpdateService = %v", err)
	}
	if _, err := e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: apiName + "/revisions/api-00001-abc"}); err != nil {
		t.Fatalf("DeleteRevision = %v", err)
	}
	e.srv.HoldOperations(false)
	e.srv.ReleaseOperations()
	if svc := e.get(t, apiName); svc.GetReconciling() {
		t.Errorf("after release: reconciling %v, generation %d, observed %d; want not reconciling", svc.GetReconciling(), svc.GetGeneration(), svc.GetObservedGeneration())
	}
}
