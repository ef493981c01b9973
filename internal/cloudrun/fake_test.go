package cloudrun_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"cloud.google.com/go/run/apiv2/runpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

var apiRef = rollback.ServiceRef{Project: "local-project", Region: "us-central1", Name: "api"}

// sleeps records the adapter's waits instead of sleeping, and can run a hook at
// each (to release a held operation, say).
type sleeps struct {
	mu     sync.Mutex
	waits  []time.Duration
	onWait func(n int)
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	n := len(s.waits)
	hook := s.onWait
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	// The fake's operations finish on its own clock: let a little real time
	// pass (never the delay asked for), so a poll loop under test neither
	// spins nor waits.
	t := time.NewTimer(min(d, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

type fakeEnv struct {
	contractEnv
	srv    *fakerun.Server
	sleeps *sleeps
}

// transports are the adapter's transports: every test against the fake runs
// on each, as Cloud Run serves both.
var transports = []cloudrun.Transport{cloudrun.GRPC, cloudrun.REST}

// onEachTransport runs test once per transport, as a subtest named after it.
func onEachTransport(t *testing.T, test func(t *testing.T, tr cloudrun.Transport)) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) { test(t, tr) })
	}
}

// newFake is a fake seeded with the default world and an adapter talking to
// it over transport tr.
func newFake(t *testing.T, tr cloudrun.Transport, mod func(*cloudrun.Config)) fakeEnv {
	t.Helper()
	srv := fakerun.NewTestServer(t)
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatalf("Seed() = %v", err)
	}
	sl := &sleeps{}
	cfg := cloudrun.Config{Transport: tr, EmulatorHost: srv.Addr, Sleep: sl.sleep, CallTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cloudrun.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("cloudrun.New() = %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return fakeEnv{contractEnv: contractEnv{client: c, ref: apiRef, older: "api-00001-abc"}, srv: srv, sleeps: sl}
}

func TestContractFake(t *testing.T) {
	onEachTransport(t, func(t *testing.T, tr cloudrun.Transport) {
		testContract(t, func(t *testing.T) contractEnv { return newFake(t, tr, nil).contractEnv })
	})
}

func TestUnavailableTwiceThenOK(t *testing.T) { onEachTransport(t, testUnavailableTwiceThenOK) }

func testUnavailableTwiceThenOK(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	e.srv.FailNext("GetService", 2, codes.Unavailable, "try again")
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatalf("GetService after 2 UNAVAILABLE = %v, want success", err)
	}
	if got := e.srv.Calls()["GetService"]; got != 3 {
		t.Errorf("GetService calls = %d, want 3", got)
	}
	if w := e.sleeps.all(); len(w) != 2 || w[1] < w[0]/2 {
		t.Errorf("backoff waits = %v, want 2 growing waits", w)
	}
	e.srv.FailNext("UpdateService", 2, codes.Unavailable, "try again")
	after, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
	if err != nil {
		t.Fatalf("UpdateTraffic after 2 UNAVAILABLE = %v", err)
	}
	if after.Generation != svc.Generation+1 {
		t.Errorf("generation = %d, want %d (one write applied)", after.Generation, svc.Generation+1)
	}
}

func TestUnavailableTooLong(t *testing.T) { onEachTransport(t, testUnavailableTooLong) }

func testUnavailableTooLong(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	e.srv.FailNext("GetService", 100, codes.Unavailable, "down")
	_, err := e.client.GetService(t.Context(), apiRef)
	if !errors.Is(err, rollback.ErrUnavailable) {
		t.Fatalf("GetService while down = %v, want ErrUnavailable", err)
	}
	if got := e.srv.Calls()["GetService"]; got != 5 {
		t.Errorf("GetService attempts = %d, want 5 (the policy's limit)", got)
	}
}

func TestNonRetryableCodesMap(t *testing.T) { onEachTransport(t, testNonRetryableCodesMap) }

func testNonRetryableCodesMap(t *testing.T, tr cloudrun.Transport) {
	for _, tc := range []struct {
		code codes.Code
		want error
	}{
		{codes.PermissionDenied, rollback.ErrPermission},
		{codes.Unauthenticated, rollback.ErrUnauthenticated},
		{codes.NotFound, rollback.ErrNotFound},
		{codes.Aborted, rollback.ErrConflict},
		{codes.InvalidArgument, rollback.ErrInvalid},
		// Over REST these share an HTTP status with the codes above (400,
		// 409): the adapter must read the code from the error body.
		{codes.FailedPrecondition, rollback.ErrRefused},
		{codes.AlreadyExists, rollback.ErrInvalid},
		{codes.OutOfRange, rollback.ErrInvalid},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			e := newFake(t, tr, nil)
			svc, err := e.client.GetService(t.Context(), apiRef)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.FailNext("UpdateService", 1, tc.code, "injected")
			_, err = e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
			if !errors.Is(err, tc.want) {
				t.Errorf("UpdateTraffic with %s = %v, want %v", tc.code, err, tc.want)
			}
			if got := e.srv.Calls()["UpdateService"]; got != 1 {
				t.Errorf("UpdateService attempts = %d, want 1 (not retried)", got)
			}
			if cur := e.srv.Service(apiRef.FullName()); cur.GetGeneration() != svc.Generation {
				t.Errorf("generation moved to %d after a refused write", cur.GetGeneration())
			}
		})
	}
}

func TestResourceExhaustedWithRetryInfo(t *testing.T) {
	onEachTransport(t, testResourceExhaustedWithRetryInfo)
}

func testResourceExhaustedWithRetryInfo(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	st, err := status.New(codes.ResourceExhausted, "quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.FailNextWithDetails("GetService", 1, st)
	if _, err := e.client.GetService(t.Context(), apiRef); err != nil {
		t.Fatalf("GetService after RESOURCE_EXHAUSTED with RetryInfo = %v", err)
	}
	if w := e.sleeps.all(); len(w) != 1 || w[0] < 3*time.Second {
		t.Errorf("waits = %v, want one wait of at least the 3s the server asked for", w)
	}
}

func TestLostReplyIsNotWrittenTwice(t *testing.T) { onEachTransport(t, testLostReplyIsNotWrittenTwice) }

func testLostReplyIsNotWrittenTwice(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.LoseReply("UpdateService", 1, codes.DeadlineExceeded)
	to := rollback.Split{{Revision: "api-00001-abc", Percent: 100}}
	after, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, to)
	if err != nil {
		t.Fatalf("UpdateTraffic with a lost reply = %v, want success (applied)", err)
	}
	if !after.Traffic.Equal(to) || after.Generation != svc.Generation+1 {
		t.Errorf("after: traffic %s generation %d; want %s at generation %d", after.Traffic, after.Generation, to, svc.Generation+1)
	}
	if got := e.srv.Calls()["UpdateService"]; got != 1 {
		t.Errorf("UpdateService calls = %d, want 1 (settled by a read, not a second write)", got)
	}
}

func TestLostReplyThenRetryFindsOwnWrite(t *testing.T) {
	onEachTransport(t, testLostReplyThenRetryFindsOwnWrite)
}

func testLostReplyThenRetryFindsOwnWrite(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt applies but answers UNAVAILABLE: the retry carries the
	// old etag and is refused, and the adapter must see its own write.
	e.srv.LoseReply("UpdateService", 1, codes.Unavailable)
	to := rollback.Split{{Revision: "api-00001-abc", Percent: 100}}
	after, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, to)
	if err != nil {
		t.Fatalf("UpdateTraffic = %v, want success", err)
	}
	if after.Generation != svc.Generation+1 {
		t.Errorf("generation = %d, want %d (applied once)", after.Generation, svc.Generation+1)
	}
}

func TestOperationPollFailsThenCompletes(t *testing.T) {
	onEachTransport(t, testOperationPollFailsThenCompletes)
}

func testOperationPollFailsThenCompletes(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(true)
	e.srv.FailNext("WaitOperation", 2, codes.Unavailable, "poll failed")
	e.sleeps.onWait = func(n int) {
		if n == 2 { // two failed waits, then let the operation finish
			e.srv.ReleaseOperations()
		}
	}
	to := rollback.Split{{Revision: "api-00001-abc", Percent: 100}}
	after, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, to)
	if err != nil {
		t.Fatalf("UpdateTraffic with failing polls = %v, want success", err)
	}
	if !after.Traffic.Equal(to) {
		t.Errorf("traffic = %s, want %s", after.Traffic, to)
	}
	if got := e.srv.Calls()["UpdateService"]; got != 1 {
		t.Errorf("UpdateService calls = %d, want 1", got)
	}
}

func TestOperationWithoutWaitOperationIsPolled(t *testing.T) {
	onEachTransport(t, testOperationWithoutWaitOperationIsPolled)
}

func testOperationWithoutWaitOperationIsPolled(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(true)
	e.srv.FailNext("WaitOperation", 1, codes.Unimplemented, "not here")
	e.srv.FailNext("GetOperation", 1, codes.Unavailable, "poll failed")
	e.sleeps.onWait = func(n int) {
		if n == 2 {
			e.srv.ReleaseOperations()
		}
	}
	if _, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}}); err != nil {
		t.Fatalf("UpdateTraffic = %v, want success by polling GetOperation", err)
	}
	calls := e.srv.Calls()
	if calls["WaitOperation"] != 1 || calls["GetOperation"] < 2 {
		t.Errorf("calls = WaitOperation %d, GetOperation %d; want 1 and at least 2", calls["WaitOperation"], calls["GetOperation"])
	}
}

func TestOperationNeverFinishesThenResume(t *testing.T) {
	onEachTransport(t, testOperationNeverFinishesThenResume)
}

func testOperationNeverFinishesThenResume(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, func(c *cloudrun.Config) { c.OperationTimeout = time.Second })
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(true)
	// The injected sleep returns at once, so end the wait by cancelling after some polls.
	ctx, cancel := context.WithCancel(t.Context())
	e.sleeps.onWait = func(n int) {
		if n == 5 {
			cancel()
		}
	}
	_, err = e.client.UpdateTraffic(ctx, apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
	if !errors.Is(err, rollback.ErrPending) {
		t.Fatalf("UpdateTraffic with an operation that never ends = %v, want ErrPending", err)
	}
	name := rollback.OperationName(err)
	if name == "" {
		t.Fatalf("error %v carries no operation name", err)
	}
	e.sleeps.onWait = nil
	e.srv.ReleaseOperations()
	got, err := e.client.ResumeOperation(t.Context(), name)
	if err != nil {
		t.Fatalf("ResumeOperation(%s) = %v", name, err)
	}
	if got.Traffic.String() != "api-00001-abc=100" {
		t.Errorf("resumed service traffic = %s", got.Traffic)
	}
}

func TestOperationEndsInError(t *testing.T) { onEachTransport(t, testOperationEndsInError) }

func testOperationEndsInError(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.FailOperations(1, codes.Internal, "rollout failed")
	_, err = e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
	var ce *cloudrun.Error
	if !errors.As(err, &ce) || ce.Code != codes.Internal {
		t.Fatalf("UpdateTraffic whose operation fails = %v, want a *cloudrun.Error with INTERNAL", err)
	}
}

func TestStartupFailureIsNotReady(t *testing.T) { onEachTransport(t, testStartupFailureIsNotReady) }

func testStartupFailureIsNotReady(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	name := "api-drill-bad001"
	_, err = e.client.DeployRevision(t.Context(), apiRef, svc.Etag, rollback.Deploy{
		Revision: name, Env: map[string]string{"RUNROLLBACK_BREAK": "startup"},
		Traffic: rollback.Split{{Revision: "api-00002-def", Percent: 100}, {Revision: name, Tag: "drill-bad001"}},
	})
	if !errors.Is(err, rollback.ErrNotReady) {
		t.Fatalf("DeployRevision of a revision that cannot start = %v, want ErrNotReady", err)
	}
	cur, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	if got := cur.ActualSplit().String(); got != "api-00002-def=100" {
		t.Errorf("actual split after a failed start = %s, want api-00002-def=100", got)
	}
}

func TestConcurrentWriterIsAConflict(t *testing.T) {
	onEachTransport(t, testConcurrentWriterIsAConflict)
}

func testConcurrentWriterIsAConflict(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.BeforeWrite(func(s *runpb.Service) {
		s.Traffic = []*runpb.TrafficTarget{{Type: runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION, Revision: "api-00001-abc", Percent: 100}}
	})
	_, err = e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00002-def", Percent: 50}, {Revision: "api-00001-abc", Percent: 50}})
	if !errors.Is(err, rollback.ErrConflict) {
		t.Fatalf("UpdateTraffic after a concurrent write = %v, want ErrConflict", err)
	}
	cur := e.srv.Service(apiRef.FullName())
	if got := cur.GetTraffic()[0].GetRevision(); got != "api-00001-abc" || len(cur.GetTraffic()) != 1 {
		t.Errorf("the other writer's traffic was overwritten: %v", cur.GetTraffic())
	}
}

func TestOperationsDeniedWatchesTheService(t *testing.T) {
	onEachTransport(t, testOperationsDeniedWatchesTheService)
}

func testOperationsDeniedWatchesTheService(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(true)
	e.srv.FailNext("WaitOperation", 1, codes.PermissionDenied, "run.operations.get denied")
	e.sleeps.onWait = func(n int) { e.srv.ReleaseOperations() }
	to := rollback.Split{{Revision: "api-00001-abc", Percent: 100}}
	after, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, to)
	if err != nil {
		t.Fatalf("UpdateTraffic without run.operations.get = %v, want success by watching the service", err)
	}
	if !after.Traffic.Equal(to) || !after.Converged() {
		t.Errorf("after: traffic %s, converged %v; want %s, converged", after.Traffic, after.Converged(), to)
	}
}

func TestResourceExhaustedTooLongIsQuota(t *testing.T) {
	onEachTransport(t, testResourceExhaustedTooLongIsQuota)
}

func testResourceExhaustedTooLongIsQuota(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.FailNext("UpdateService", 100, codes.ResourceExhausted, "write quota")
	_, err = e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
	if !errors.Is(err, rollback.ErrQuota) {
		t.Fatalf("UpdateTraffic while over quota = %v, want ErrQuota", err)
	}
	if got := e.srv.Calls()["UpdateService"]; got != 5 {
		t.Errorf("UpdateService attempts = %d, want 5 (retried with backoff, then given up)", got)
	}
}

// TestEarlyWaitOperationIsPaced: WaitOperation may answer at once with the
// operation not done (the fake's default); each such answer is followed by
// one backoff pause, never by another call at once.
func TestEarlyWaitOperationIsPaced(t *testing.T) { onEachTransport(t, testEarlyWaitOperationIsPaced) }

func testEarlyWaitOperationIsPaced(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, func(c *cloudrun.Config) { c.PollInterval, c.OperationTimeout = 10*time.Millisecond, 5*time.Second })
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(true)
	e.sleeps.onWait = func(n int) {
		if n == 6 {
			e.srv.ReleaseOperations()
		}
	}
	if _, err := e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}}); err != nil {
		t.Fatalf("UpdateTraffic = %v", err)
	}
	waits, polls := e.sleeps.all(), e.srv.Calls()["WaitOperation"]
	if len(waits) != 6 || polls != len(waits)+1 {
		t.Errorf("WaitOperation calls %d, pauses %d (%v); want 6 pauses and one call more", polls, len(waits), waits)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] {
			t.Errorf("pauses %v shrink; want a backoff", waits)
		}
	}
	if len(waits) > 0 && waits[0] != 10*time.Millisecond {
		t.Errorf("first pause %v, want the poll interval 10ms", waits[0])
	}
}

// TestFailedPollIsOutcomeUnknown: a write accepted by Cloud Run whose
// operation cannot be polled any more (forgotten, credentials expired) has an
// unknown outcome: pending, never one of the kinds a refusal has.
func TestFailedPollIsOutcomeUnknown(t *testing.T) { onEachTransport(t, testFailedPollIsOutcomeUnknown) }

func testFailedPollIsOutcomeUnknown(t *testing.T, tr cloudrun.Transport) {
	for _, code := range []codes.Code{codes.NotFound, codes.Unauthenticated, codes.ResourceExhausted} {
		t.Run(code.String(), func(t *testing.T) {
			e := newFake(t, tr, func(c *cloudrun.Config) { c.OperationTimeout = time.Second })
			svc, err := e.client.GetService(t.Context(), apiRef)
			if err != nil {
				t.Fatal(err)
			}
			e.srv.HoldOperations(true)
			e.srv.FailNext("WaitOperation", 1000, code, "injected")
			_, err = e.client.UpdateTraffic(t.Context(), apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
			if !errors.Is(err, rollback.ErrPending) || !errors.Is(err, cloudrun.ErrOutcomeUnknown) || rollback.OperationName(err) == "" {
				t.Fatalf("UpdateTraffic whose poll fails with %s = %v, want pending with the operation's name, outcome unknown", code, err)
			}
			for _, refusal := range []error{rollback.ErrNotFound, rollback.ErrUnauthenticated, rollback.ErrQuota, rollback.ErrPermission, rollback.ErrInvalid, rollback.ErrConflict, rollback.ErrRefused} {
				if errors.Is(err, refusal) {
					t.Errorf("UpdateTraffic = %v, which is %v: it reads as refused before acting", err, refusal)
				}
			}
			// The write did apply: the service says so.
			if cur := e.srv.Service(apiRef.FullName()); cur.GetTraffic()[0].GetRevision() != "api-00001-abc" {
				t.Errorf("traffic = %v, want the write applied", cur.GetTraffic())
			}
		})
	}
}

// TestResumeForgottenOperation: resuming an operation Cloud Run has
// forgotten is ErrNotFound, so the caller reads the service instead.
func TestResumeForgottenOperation(t *testing.T) { onEachTransport(t, testResumeForgottenOperation) }

func testResumeForgottenOperation(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	svc, err := e.client.GetService(t.Context(), apiRef)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.HoldOperations(true)
	ctx, cancel := context.WithCancel(t.Context())
	e.sleeps.onWait = func(n int) { cancel() }
	_, err = e.client.UpdateTraffic(ctx, apiRef, svc.Etag, rollback.Split{{Revision: "api-00001-abc", Percent: 100}})
	name := rollback.OperationName(err)
	if name == "" {
		t.Fatalf("UpdateTraffic = %v, want pending with an operation name", err)
	}
	e.sleeps.onWait = nil
	e.srv.ReleaseOperations()
	e.srv.ForgetOperations()
	if _, err := e.client.ResumeOperation(t.Context(), name); !errors.Is(err, rollback.ErrNotFound) {
		t.Errorf("ResumeOperation(forgotten) = %v, want ErrNotFound", err)
	}
}

// TestDeleteRevisionPollFails: a delete whose operation cannot be polled has
// an unknown outcome too.
func TestDeleteRevisionPollFails(t *testing.T) { onEachTransport(t, testDeleteRevisionPollFails) }

func testDeleteRevisionPollFails(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, func(c *cloudrun.Config) { c.OperationTimeout = time.Second })
	e.srv.HoldOperations(true)
	e.srv.FailNext("WaitOperation", 1, codes.PermissionDenied, "run.operations.get denied")
	err := e.client.DeleteRevision(t.Context(), apiRef, "api-00001-abc")
	if !errors.Is(err, cloudrun.ErrOutcomeUnknown) || errors.Is(err, rollback.ErrPermission) {
		t.Errorf("DeleteRevision whose poll is denied = %v, want outcome unknown, not ErrPermission", err)
	}
}

// TestServerGoneIsUnavailable: a call that gets no answer at all (connection
// refused) is UNAVAILABLE on either transport, retried as the policy says,
// then ErrUnavailable.
func TestServerGoneIsUnavailable(t *testing.T) { onEachTransport(t, testServerGoneIsUnavailable) }

func testServerGoneIsUnavailable(t *testing.T, tr cloudrun.Transport) {
	e := newFake(t, tr, nil)
	e.srv.Close()
	_, err := e.client.GetService(t.Context(), apiRef)
	var ce *cloudrun.Error
	if !errors.Is(err, rollback.ErrUnavailable) || !errors.As(err, &ce) || ce.Code != codes.Unavailable {
		t.Fatalf("GetService from a closed server = %v, want ErrUnavailable with UNAVAILABLE", err)
	}
	if w := e.sleeps.all(); len(w) != 4 {
		t.Errorf("waits = %v, want 4 (5 attempts, the policy's limit)", w)
	}
}

func TestTransportNames(t *testing.T) {
	for _, s := range []string{"grpc", "rest"} {
		if tr, err := cloudrun.ParseTransport(s); err != nil || string(tr) != s {
			t.Errorf("ParseTransport(%q) = %q, %v", s, tr, err)
		}
	}
	for _, s := range []string{"", "GRPC", "http", "grpc-web"} {
		if _, err := cloudrun.ParseTransport(s); err == nil {
			t.Errorf("ParseTransport(%q) = nil error, want a refusal", s)
		}
	}
	if _, err := cloudrun.New(t.Context(), cloudrun.Config{Transport: "http", EmulatorHost: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "use grpc or rest") {
		t.Errorf("New with transport http = %v, want a refusal naming grpc and rest", err)
	}
}
