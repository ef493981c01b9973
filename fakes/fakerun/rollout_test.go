package fakerun_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

// slowRollout makes every operation last far longer than any test, so that
// what a test sees before it releases them is the state mid-rollout.
func slowRollout() fakerun.Rollout {
	r := fakerun.DefaultRollout()
	r.Create, r.Deploy, r.Update, r.Delete = time.Hour, time.Hour, time.Hour, time.Hour
	return r
}

// TestTrafficChangeIsAsynchronous: a traffic-only write is accepted at once,
// and the service routes by it only when its operation completes.
func TestTrafficChangeIsAsynchronous(t *testing.T) {
	e := newEnv(t, fakerun.WithRollout(slowRollout()))
	before := e.get(t, apiName)
	op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Etag: before.GetEtag(), Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}},
		UpdateMask: mask("traffic"),
	})
	if err != nil {
		t.Fatalf("UpdateService = %v", err)
	}
	if op.Done() {
		t.Fatalf("a traffic change's operation is done when returned; want it pending")
	}
	mid := e.get(t, apiName)
	if !mid.GetReconciling() || mid.GetGeneration() != 2 || mid.GetObservedGeneration() != 1 || mid.GetTraffic()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("mid-rollout: reconciling %v, generation %d, observed %d, traffic %v; want true, 2, 1, the new traffic", mid.GetReconciling(), mid.GetGeneration(), mid.GetObservedGeneration(), mid.GetTraffic())
	}
	if got := mid.GetTrafficStatuses()[0].GetRevision(); got != "api-00002-def" {
		t.Errorf("traffic_statuses mid-rollout name %s, want the old api-00002-def", got)
	}
	if routes, _ := e.srv.Routes(apiName, ""); len(routes) != 1 || routes[0].Revision != "api-00002-def" {
		t.Errorf("Routes mid-rollout = %v, want the old split", routes)
	}
	e.srv.ReleaseOperations()
	got, err := waitOp(t, op)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetReconciling() || got.GetObservedGeneration() != 2 || got.GetTrafficStatuses()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("after the rollout: reconciling %v, observed %d, statuses %v", got.GetReconciling(), got.GetObservedGeneration(), got.GetTrafficStatuses())
	}
	if routes, _ := e.srv.Routes(apiName, ""); len(routes) != 1 || routes[0].Revision != "api-00001-abc" {
		t.Errorf("Routes after the rollout = %v, want api-00001-abc", routes)
	}
}

// TestDefaultRolloutFinishesOnItsOwn: with the default Rollout every kind of
// write returns a pending operation that finishes without help.
func TestDefaultRolloutFinishesOnItsOwn(t *testing.T) {
	e := newEnv(t)
	deploy, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: webName, Template: template("web:2", "APP_VERSION", "2.0.0")},
		UpdateMask: mask("template"),
	})
	if err != nil || deploy.Done() {
		t.Fatalf("UpdateService(template) = done %v, %v; want a pending operation", deploy != nil && deploy.Done(), err)
	}
	// The operation's metadata is the service as the write left it: a read
	// could come after the (short) default rollout has finished.
	mid, err := deploy.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	newRev := mid.GetLatestCreatedRevision()
	if !mid.GetReconciling() || mid.GetLatestReadyRevision() == newRev {
		t.Errorf("mid-deploy: reconciling %v, latest ready %s (new %s)", mid.GetReconciling(), mid.GetLatestReadyRevision(), newRev)
	}
	got, err := waitOp(t, deploy)
	if err != nil || got.GetLatestReadyRevision() != newRev || got.GetTrafficStatuses()[0].GetRevision() != shortName(newRev) {
		t.Errorf("after the deploy: %v, latest ready %s, statuses %v; want %s serving", err, got.GetLatestReadyRevision(), got.GetTrafficStatuses(), newRev)
	}
	del, err := e.revs.DeleteRevision(t.Context(), &runpb.DeleteRevisionRequest{Name: apiName + "/revisions/api-00001-abc"})
	if err != nil || del.Done() {
		t.Fatalf("DeleteRevision = done %v, %v; want a pending operation", del != nil && del.Done(), err)
	}
	if _, err := waitOp(t, del); err != nil {
		t.Errorf("DeleteRevision's operation = %v", err)
	}
}

// TestWaitOperationReturnsEarly: by default WaitOperation answers at once
// with the operation not done, whatever timeout it is asked for; WaitMax
// caps the wait.
func TestWaitOperationReturnsEarly(t *testing.T) {
	for _, tt := range []struct {
		name    string
		waitMax time.Duration
	}{{"default: at once", 0}, {"capped at 5ms", 5 * time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			r := slowRollout()
			r.WaitMax = tt.waitMax
			e := newEnv(t, fakerun.WithRollout(r))
			op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}}, UpdateMask: mask("traffic")})
			if err != nil {
				t.Fatal(err)
			}
			// The operation lasts an hour: the call returns only because the
			// fake answers before the minute asked for.
			got, err := e.svcs.WaitOperation(t.Context(), &longrunningpb.WaitOperationRequest{Name: op.Name(), Timeout: durationpb.New(time.Minute)})
			if err != nil || got.GetDone() {
				t.Fatalf("WaitOperation(1m) = done %v, %v; want the pending operation", got.GetDone(), err)
			}
		})
	}
}

// TestOperationsAreForgotten: a finished operation is forgotten after
// Retention, or at once on ForgetOperations; polling it is then NOT_FOUND.
func TestOperationsAreForgotten(t *testing.T) {
	r := fakerun.DefaultRollout()
	r.Retention = time.Millisecond
	e := newEnv(t, fakerun.WithRollout(r))
	op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}}, UpdateMask: mask("traffic")})
	if err != nil {
		t.Fatal(err)
	}
	// Polling the operation to its end would race the 1ms retention: the
	// service settling says the operation finished without looking at it.
	if got := e.settled(t, apiName); len(got.GetTrafficStatuses()) != 1 || got.GetTrafficStatuses()[0].GetRevision() != "api-00001-abc" {
		t.Fatalf("traffic after the update = %v; want 100%% on api-00001-abc", got.GetTrafficStatuses())
	}
	waitFor(t, "the operation to be forgotten", func() bool {
		_, err := e.svcs.GetOperation(t.Context(), &longrunningpb.GetOperationRequest{Name: op.Name()})
		return err != nil
	})
	_, err = e.svcs.GetOperation(t.Context(), &longrunningpb.GetOperationRequest{Name: op.Name()})
	wantCode(t, "GetOperation(forgotten)", err, codes.NotFound)
	_, err = e.svcs.WaitOperation(t.Context(), &longrunningpb.WaitOperationRequest{Name: op.Name()})
	wantCode(t, "WaitOperation(forgotten)", err, codes.NotFound)

	e2 := newEnv(t, fakerun.WithRollout(fakerun.InstantRollout()))
	op2, err := e2.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}}, UpdateMask: mask("traffic")})
	if err != nil {
		t.Fatal(err)
	}
	e2.srv.ForgetOperations()
	_, err = e2.svcs.GetOperation(t.Context(), &longrunningpb.GetOperationRequest{Name: op2.Name()})
	wantCode(t, "GetOperation after ForgetOperations", err, codes.NotFound)
}

// TestRolloutFromWorldAndControl sets the delays from a world file and from
// the control endpoint.
func TestRolloutFromWorldAndControl(t *testing.T) {
	w, err := fakerun.ParseWorld([]byte(`{"services":[],"rollout":{"deploy_ms":250,"wait_max_ms":-1}}`))
	if err != nil {
		t.Fatal(err)
	}
	srv := fakerun.NewTestServer(t)
	if err := srv.Seed(w); err != nil {
		t.Fatal(err)
	}
	want := fakerun.DefaultRollout()
	want.Deploy, want.WaitMax = 250*time.Millisecond, -time.Millisecond
	if got := srv.Rollout(); got != want {
		t.Errorf("Rollout() after seeding = %+v, want %+v", got, want)
	}
	if err := srv.Seed(fakerun.World{Rollout: &fakerun.SeedRollout{UpdateMS: ptr(int64(-1))}}); err == nil || !strings.Contains(err.Error(), "update_ms must not be negative") {
		t.Errorf("Seed(update_ms -1) = %v, want an error", err)
	}

	ctl := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(ctl.Close)
	resp, err := http.Post(ctl.URL+"/rollout", "application/json", strings.NewReader(`{"update_ms":0,"retention_ms":0,"ready_despite_failed_revision":true}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /rollout = %v, %v", resp.Status, err)
	}
	resp.Body.Close()
	resp, err = http.Get(ctl.URL + "/rollout")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	if all["ready_despite_failed_revision"] != true || !srv.Rollout().ReadyDespiteFailedRevision {
		t.Errorf("GET /rollout ready_despite_failed_revision = %v; want true as posted", all["ready_despite_failed_revision"])
	}
	got := map[string]int64{}
	for k, v := range all {
		if n, ok := v.(float64); ok {
			got[k] = int64(n)
		}
	}
	def := fakerun.DefaultRollout()
	wantJSON := map[string]int64{"create_ms": def.Create.Milliseconds(), "deploy_ms": 250, "update_ms": 0, "delete_ms": def.Delete.Milliseconds(), "wait_max_ms": -1, "retention_ms": 0}
	for k, v := range wantJSON {
		if got[k] != v {
			t.Errorf("GET /rollout %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }
