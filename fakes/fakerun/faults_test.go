package fakerun_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

func TestFailNext(t *testing.T) {
	e := newEnv(t)
	// The generated client retries GetService on UNAVAILABLE after 1 s; turn
	// that off so the test sees each failure.
	e.svcs.CallOptions.GetService = []gax.CallOption{}
	e.srv.FailNext("GetService", 2, codes.Unavailable, "try later")
	for range 2 {
		_, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName})
		wantCode(t, "GetService (failing)", err, codes.Unavailable, "try later")
	}
	if _, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName}); err != nil {
		t.Errorf("third GetService = %v, want success", err)
	}
	if got := e.srv.Calls()["GetService"]; got != 3 {
		t.Errorf("Calls()[GetService] = %d, want 3", got)
	}

	e.srv.FailNext("UpdateService", 1, codes.Aborted, "conflict")
	_, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100))
	wantCode(t, "UpdateService (failing)", err, codes.Aborted, "conflict")
	if got := e.get(t, apiName); got.GetGeneration() != 1 || e.srv.Writes() != 0 {
		t.Errorf("after a failed call: generation %d, writes %d; want 1, 0", got.GetGeneration(), e.srv.Writes())
	}
}

func TestFailNextWithRetryInfo(t *testing.T) {
	e := newEnv(t)
	st, err := status.New(codes.ResourceExhausted, "quota exceeded").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.FailNextWithDetails("UpdateService", 1, st)
	_, err = e.setTraffic(t, apiName, pin("api-00001-abc", 100))
	got := wantCode(t, "UpdateService", err, codes.ResourceExhausted, "quota exceeded")
	var delay time.Duration
	for _, d := range got.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 2*time.Second {
		t.Errorf("RetryInfo delay = %v, want 2s (details %v)", delay, got.Details())
	}
}

func TestLoseReply(t *testing.T) {
	e := newEnv(t)
	e.srv.LoseReply("UpdateService", 1, codes.Unavailable)
	_, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100))
	wantCode(t, "UpdateService (reply lost)", err, codes.Unavailable)
	got := e.settled(t, apiName)
	if got.GetGeneration() != 2 || got.GetTrafficStatuses()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("after a lost reply: generation %d, statuses %v; want the change applied", got.GetGeneration(), got.GetTrafficStatuses())
	}
	if e.srv.Writes() != 1 || e.srv.Calls()["UpdateService"] != 1 {
		t.Errorf("writes, UpdateService calls = %d, %d; want 1, 1", e.srv.Writes(), e.srv.Calls()["UpdateService"])
	}
}

func TestLatency(t *testing.T) {
	e := newEnv(t)
	// A small latency delays, then answers.
	e.srv.SetLatency("GetService", time.Millisecond)
	if _, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName}); err != nil {
		t.Fatalf("GetService with 1ms latency = %v", err)
	}

	// A long latency holds the call until the caller gives up, while other
	// methods answer.
	e.srv.SetLatency("GetService", time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	slow := make(chan error, 1)
	go func() {
		_, err := e.svcs.GetService(ctx, &runpb.GetServiceRequest{Name: apiName})
		slow <- err
	}()
	waitFor(t, "the slow GetService to arrive", func() bool { return e.srv.Calls()["GetService"] == 2 })
	if _, err := e.revs.GetRevision(t.Context(), &runpb.GetRevisionRequest{Name: apiName + "/revisions/api-00001-abc"}); err != nil {
		t.Fatalf("GetRevision = %v", err)
	}
	select {
	case err := <-slow:
		t.Fatalf("slow GetService returned before its latency or cancellation: %v", err)
	default:
	}
	cancel()
	wantCode(t, "GetService cancelled during latency", <-slow, codes.Canceled)

	tctx, tcancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer tcancel()
	_, err := e.svcs.GetService(tctx, &runpb.GetServiceRequest{Name: apiName})
	wantCode(t, "GetService past its deadline", err, codes.DeadlineExceeded)

	e.srv.SetLatency("GetService", 0)
	if _, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName}); err != nil {
		t.Errorf("GetService after removing latency = %v", err)
	}
}

func TestFailOperations(t *testing.T) {
	e := newEnv(t)
	e.srv.FailOperations(1, codes.Internal, "rollout broke")
	_, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Template: template("api:9"), Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}},
		UpdateMask: mask("template", "traffic"),
	})
	wantCode(t, "operation made to fail", err, codes.Internal, "rollout broke")
	got := e.get(t, apiName)
	if got.GetGeneration() != 1 || len(e.srv.Revisions(apiName)) != 2 || got.GetTraffic()[0].GetRevision() != "api-00002-def" {
		t.Errorf("after a failed operation: generation %d, %d revisions, traffic %v; want nothing applied", got.GetGeneration(), len(e.srv.Revisions(apiName)), got.GetTraffic())
	}
	if e.srv.Writes() != 1 {
		t.Errorf("Writes() = %d, want 1 (the call was accepted)", e.srv.Writes())
	}
	if _, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100)); err != nil {
		t.Errorf("the next update = %v, want success", err)
	}
}

func TestBeforeWriteMakesStaleEtag(t *testing.T) {
	e := newEnv(t)
	read := e.get(t, apiName)
	calls := 0
	e.srv.BeforeWrite(func(svc *runpb.Service) {
		calls++
		svc.Traffic = []*runpb.TrafficTarget{pin("api-00001-abc", 50), pin("api-00002-def", 50)}
		svc.Template.Containers[0].Env[0].Values = &runpb.EnvVar_Value{Value: "1.1.1"}
	})
	_, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Etag: read.GetEtag(), Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}},
		UpdateMask: mask("traffic"),
	})
	wantCode(t, "UpdateService after a concurrent write", err, codes.Aborted, "does not match")
	got := e.get(t, apiName)
	if got.GetGeneration() != 2 || got.GetEtag() == read.GetEtag() || calls != 1 {
		t.Errorf("after the concurrent write: generation %d, etag changed %v, calls %d; want 2, true, 1", got.GetGeneration(), got.GetEtag() != read.GetEtag(), calls)
	}
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeRevision, "api-00001-abc", 50, "", ""), statusOf(typeRevision, "api-00002-def", 50, "", "")}, got.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses after the concurrent write (-want +got):\n%s", diff)
	}
	if n := len(e.srv.Revisions(apiName)); n != 3 {
		t.Errorf("revisions = %d, want 3 (the other writer changed the template)", n)
	}
	// The hook fired once: a fresh read and write now succeed.
	if _, err := e.setTraffic(t, apiName, pin("api-00002-def", 100)); err != nil || calls != 1 {
		t.Errorf("update after re-reading = %v (hook calls %d), want success and 1", err, calls)
	}
	if e.srv.Writes() != 1 {
		t.Errorf("Writes() = %d, want 1 (the other writer's change is not a call)", e.srv.Writes())
	}
}

func TestResetFaults(t *testing.T) {
	e := newEnv(t)
	e.srv.FailNext("GetService", 5, codes.Internal, "x")
	e.srv.HoldOperations(true)
	e.srv.ResetFaults()
	if _, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName}); err != nil {
		t.Errorf("GetService after ResetFaults = %v", err)
	}
	op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00001-abc", 100)}}, UpdateMask: mask("traffic")})
	if err != nil {
		t.Fatalf("UpdateService after ResetFaults = %v", err)
	}
	if _, err := waitOp(t, op); err != nil {
		t.Errorf("operation after ResetFaults = %v, want it to finish on its own", err)
	}
}

func TestHoldOperationsAfter(t *testing.T) {
	// Operations that are not held finish before the call returns, so that
	// "done" and "held" are told apart without timing.
	e := newEnv(t, fakerun.WithRollout(fakerun.InstantRollout()))
	ctx := t.Context()
	e.srv.HoldOperationsAfter(1)
	update := func(rev string) interface {
		Done() bool
		Poll(context.Context, ...gax.CallOption) (*runpb.Service, error)
	} {
		t.Helper()
		cur := e.get(t, apiName)
		op, err := e.svcs.UpdateService(ctx, &runpb.UpdateServiceRequest{
			Service:    &runpb.Service{Name: apiName, Etag: cur.GetEtag(), Traffic: []*runpb.TrafficTarget{pin(rev, 100)}},
			UpdateMask: mask("traffic"),
		})
		if err != nil {
			t.Fatalf("UpdateService(%s) = %v", rev, err)
		}
		return op
	}
	if op := update("api-00001-abc"); !op.Done() {
		t.Errorf("the first write's operation is pending, want done")
	}
	op := update("api-00002-def")
	if op.Done() {
		t.Fatalf("the second write's operation is done, want it held")
	}
	e.srv.ReleaseOperations()
	if _, err := op.Poll(ctx); err != nil || !op.Done() {
		t.Errorf("after ReleaseOperations: Poll() = %v, done %v; want done", err, op.Done())
	}
}

func TestFailAfter(t *testing.T) {
	e := newEnv(t)
	e.srv.FailAfter("GetService", 2, 1, codes.PermissionDenied, "no")
	for i := range 2 {
		if _, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName}); err != nil {
			t.Fatalf("GetService #%d = %v, want it let through", i+1, err)
		}
	}
	_, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName})
	wantCode(t, "GetService #3", err, codes.PermissionDenied, "no")
	if _, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName}); err != nil {
		t.Errorf("GetService #4 = %v, want success", err)
	}
}
