package fakerun_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/google/go-cmp/cmp"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

const (
	loc          = "projects/local-project/locations/us-central1"
	apiName      = loc + "/services/api"
	webName      = loc + "/services/web"
	checkoutName = loc + "/services/checkout"
)

// env is a fake seeded with the default world and the official clients
// dialed to it.
type env struct {
	srv  *fakerun.Server
	svcs *run.ServicesClient
	revs *run.RevisionsClient
}

func newEnv(t *testing.T, opts ...fakerun.Option) *env {
	t.Helper()
	srv := fakerun.NewTestServer(t, opts...)
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatalf("Seed(DefaultWorld()) = %v", err)
	}
	return &env{srv: srv, svcs: servicesClient(t, srv), revs: revisionsClient(t, srv)}
}

func clientOptions(srv *fakerun.Server) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func servicesClient(t *testing.T, srv *fakerun.Server) *run.ServicesClient {
	t.Helper()
	c, err := run.NewServicesClient(context.Background(), clientOptions(srv)...)
	if err != nil {
		t.Fatalf("run.NewServicesClient() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func revisionsClient(t *testing.T, srv *fakerun.Server) *run.RevisionsClient {
	t.Helper()
	c, err := run.NewRevisionsClient(context.Background(), clientOptions(srv)...)
	if err != nil {
		t.Fatalf("run.NewRevisionsClient() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClients are the generated gRPC stub, for what the official client hides
// (page tokens).
func rawClients(t *testing.T, srv *fakerun.Server) (runpb.ServicesClient, runpb.RevisionsClient) {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s) = %v", srv.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return runpb.NewServicesClient(conn), runpb.NewRevisionsClient(conn)
}

func (e *env) get(t *testing.T, name string) *runpb.Service {
	t.Helper()
	svc, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: name})
	if err != nil {
		t.Fatalf("GetService(%s) = %v", name, err)
	}
	return svc
}

// update sends req and waits for its operation.
func (e *env) update(t *testing.T, req *runpb.UpdateServiceRequest) (*runpb.Service, error) {
	t.Helper()
	op, err := e.svcs.UpdateService(t.Context(), req)
	if err != nil {
		return nil, err
	}
	return waitOp(t, op)
}

// operation is what the generated operation types have in common.
type operation[T any] interface {
	Done() bool
	Poll(ctx context.Context, opts ...gax.CallOption) (T, error)
}

// waitOp polls op until it is done. The generated Wait backs off by a second
// or more between polls; operations of the fake take milliseconds.
func waitOp[T any](t *testing.T, op operation[T]) (T, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := op.Poll(t.Context())
		if err != nil || op.Done() {
			return got, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation not done after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// settled waits until no operation of the service is pending and returns it.
func (e *env) settled(t *testing.T, name string) *runpb.Service {
	t.Helper()
	var svc *runpb.Service
	waitFor(t, name+" to finish reconciling", func() bool {
		svc = e.get(t, name)
		return !svc.GetReconciling()
	})
	return svc
}

// mustUpdate is update that fails the test on error.
func (e *env) mustUpdate(t *testing.T, req *runpb.UpdateServiceRequest) *runpb.Service {
	t.Helper()
	svc, err := e.update(t, req)
	if err != nil {
		t.Fatalf("UpdateService(%s) = %v", req.GetService().GetName(), err)
	}
	return svc
}

// setTraffic is a traffic-only update carrying the service's current etag.
func (e *env) setTraffic(t *testing.T, name string, traffic ...*runpb.TrafficTarget) (*runpb.Service, error) {
	t.Helper()
	cur := e.get(t, name)
	return e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: name, Etag: cur.GetEtag(), Traffic: traffic},
		UpdateMask: mask("traffic"),
	})
}

func (e *env) revisionNames(t *testing.T, parent string) []string {
	t.Helper()
	var names []string
	it := e.revs.ListRevisions(t.Context(), &runpb.ListRevisionsRequest{Parent: parent})
	for {
		r, err := it.Next()
		if err != nil {
			if errors.Is(err, iterator.Done) {
				return names
			}
			t.Fatalf("ListRevisions(%s) = %v", parent, err)
		}
		names = append(names, shortName(r.GetName()))
	}
}

func mask(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

func pin(rev string, percent int32) *runpb.TrafficTarget {
	return &runpb.TrafficTarget{Type: runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION, Revision: rev, Percent: percent}
}

func tagged(rev string, percent int32, tag string) *runpb.TrafficTarget {
	t := pin(rev, percent)
	t.Tag = tag
	return t
}

func latest(percent int32) *runpb.TrafficTarget {
	return &runpb.TrafficTarget{Type: runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, Percent: percent}
}

func statusOf(typ runpb.TrafficTargetAllocationType, rev string, percent int32, tag, uri string) *runpb.TrafficTargetStatus {
	return &runpb.TrafficTargetStatus{Type: typ, Revision: rev, Percent: percent, Tag: tag, Uri: uri}
}

const (
	typeRevision = runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
	typeLatest   = runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
)

// template is a one-container template with plain env values.
func template(image string, kv ...string) *runpb.RevisionTemplate {
	c := &runpb.Container{Image: image}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Env = append(c.Env, &runpb.EnvVar{Name: kv[i], Values: &runpb.EnvVar_Value{Value: kv[i+1]}})
	}
	return &runpb.RevisionTemplate{Containers: []*runpb.Container{c}}
}

func shortName(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// wantCode fails the test unless err has the code and its message contains
// every one of substrs.
func wantCode(t *testing.T, what string, err error, code codes.Code, substrs ...string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code {
		t.Fatalf("%s = %v, want code %v", what, err, code)
	}
	for _, s := range substrs {
		if !strings.Contains(st.Message(), s) {
			t.Errorf("%s = %q, want a message containing %q", what, st.Message(), s)
		}
	}
	return st
}

// fieldViolations returns the BadRequest field violations of a status.
func fieldViolations(st *status.Status) []*errdetails.BadRequest_FieldViolation {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br.GetFieldViolations()
		}
	}
	return nil
}

// waitFor polls cond until it holds; it is for conditions reached by another
// goroutine, not for timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func diffProto(want, got any) string { return cmp.Diff(want, got, protocmp.Transform()) }
