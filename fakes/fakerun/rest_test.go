package fakerun_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	runapi "google.golang.org/api/run/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

// newRESTEnv is newEnv with Google's REST clients (HTTP/JSON to http://Addr)
// in place of the gRPC ones, their retries off so that each fault is seen.
func newRESTEnv(t *testing.T, opts ...fakerun.Option) *env {
	t.Helper()
	srv := fakerun.NewTestServer(t, opts...)
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatalf("Seed(DefaultWorld()) = %v", err)
	}
	o := restOptions(srv)
	svcs, err := run.NewServicesRESTClient(t.Context(), o...)
	if err != nil {
		t.Fatalf("run.NewServicesRESTClient() = %v", err)
	}
	t.Cleanup(func() { svcs.Close() })
	revs, err := run.NewRevisionsRESTClient(t.Context(), o...)
	if err != nil {
		t.Fatalf("run.NewRevisionsRESTClient() = %v", err)
	}
	t.Cleanup(func() { revs.Close() })
	// The REST clients share their CallOptions by pointer: clear in place.
	*svcs.CallOptions = run.ServicesCallOptions{}
	*revs.CallOptions = run.RevisionsCallOptions{}
	return &env{srv: srv, svcs: svcs, revs: revs}
}

func restOptions(srv *fakerun.Server) []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint("http://" + srv.Addr), option.WithoutAuthentication()}
}

// restErr is what a REST error says: the HTTP status and the JSON body's
// error.status, message and details.
type restErr struct {
	HTTP    int
	Status  string
	Message string
	api     *apierror.APIError
}

// wantREST fails the test unless err is a REST error with HTTP status hs and
// google.rpc.Code name st whose message contains every one of substrs.
func wantREST(t *testing.T, what string, err error, hs int, st string, substrs ...string) restErr {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("%s = %v (%T), want a googleapi.Error", what, err, err)
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if jerr := json.Unmarshal([]byte(ge.Body), &body); jerr != nil {
		t.Fatalf("%s: error body %q is not JSON: %v", what, ge.Body, jerr)
	}
	got := restErr{HTTP: ge.Code, Status: body.Error.Status, Message: body.Error.Message}
	if !errors.As(err, &got.api) {
		t.Fatalf("%s = %v (%T), want an apierror.APIError", what, err, err)
	}
	if got.HTTP != hs || body.Error.Code != hs || got.Status != st {
		t.Fatalf("%s = HTTP %d, body code %d, status %s (%s); want %d %s", what, got.HTTP, body.Error.Code, got.Status, got.Message, hs, st)
	}
	for _, s := range substrs {
		if !strings.Contains(got.Message, s) {
			t.Errorf("%s = %q, want a message containing %q", what, got.Message, s)
		}
	}
	return got
}

func TestRESTReadsWithGoogleClient(t *testing.T) {
	e := newRESTEnv(t)
	ctx := t.Context()
	if diff := diffProto(e.srv.Service(apiName), e.get(t, apiName)); diff != "" {
		t.Errorf("GetService over REST differs from the stored service (-stored +got):\n%s", diff)
	}
	var names []string
	it := e.svcs.ListServices(ctx, &runpb.ListServicesRequest{Parent: loc, PageSize: 1})
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("ListServices over REST = %v", err)
		}
		names = append(names, s.GetName())
	}
	var want []string
	for _, s := range e.srv.Services() {
		want = append(want, s.GetName())
	}
	if diff := diffProto(want, names); diff != "" {
		t.Errorf("ListServices over REST, one a page (-want +got):\n%s", diff)
	}
	var revs []string
	for _, r := range e.srv.Revisions(apiName) {
		revs = append(revs, shortName(r.GetName()))
	}
	if got := e.revisionNames(t, apiName); diffProto(revs, got) != "" {
		t.Errorf("ListRevisions over REST = %v, want %v", got, revs)
	}
	rev, err := e.revs.GetRevision(ctx, &runpb.GetRevisionRequest{Name: apiName + "/revisions/api-00001-abc"})
	if err != nil {
		t.Fatalf("GetRevision over REST = %v", err)
	}
	if diff := diffProto(e.srv.Revision(apiName+"/revisions/api-00001-abc"), rev); diff != "" {
		t.Errorf("GetRevision over REST (-stored +got):\n%s", diff)
	}
}

func TestRESTWritesAndOperationsWithGoogleClient(t *testing.T) {
	e := newRESTEnv(t)
	ctx := t.Context()
	before := e.get(t, apiName)
	after, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100))
	if err != nil {
		t.Fatalf("UpdateService (PATCH traffic) over REST = %v", err)
	}
	if after.GetGeneration() != before.GetGeneration()+1 || len(after.GetTraffic()) != 1 || after.GetTraffic()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("after PATCH: generation %d, traffic %v; want %d, 100%% api-00001-abc", after.GetGeneration(), after.GetTraffic(), before.GetGeneration()+1)
	}

	// validate_only and allow_missing travel as query parameters.
	cur := e.get(t, apiName)
	op, err := e.svcs.UpdateService(ctx, &runpb.UpdateServiceRequest{
		Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00002-def", 100)}}, UpdateMask: mask("traffic"), ValidateOnly: true,
	})
	if err != nil {
		t.Fatalf("validate_only PATCH = %v", err)
	}
	if _, err := waitOp(t, op); err != nil {
		t.Fatalf("validate_only operation = %v", err)
	}
	if got := e.get(t, apiName); got.GetEtag() != cur.GetEtag() {
		t.Errorf("validate_only stored a change: etag %s, was %s", got.GetEtag(), cur.GetEtag())
	}
	newName := loc + "/services/made-by-patch"
	if _, err := e.update(t, &runpb.UpdateServiceRequest{
		Service: &runpb.Service{Name: newName, Template: template("us-docker.pkg.dev/p/app/x:1")}, AllowMissing: true,
	}); err != nil {
		t.Fatalf("allow_missing PATCH = %v", err)
	}
	if e.srv.Service(newName) == nil {
		t.Errorf("allow_missing PATCH did not create %s", newName)
	}

	// CreateService carries service_id as a query parameter; DELETE removes.
	cop, err := e.svcs.CreateService(ctx, &runpb.CreateServiceRequest{Parent: loc, ServiceId: "made-by-post", Service: &runpb.Service{Template: template("us-docker.pkg.dev/p/app/y:1")}})
	if err != nil {
		t.Fatalf("CreateService over REST = %v", err)
	}
	if created, err := waitOp(t, cop); err != nil || created.GetName() != loc+"/services/made-by-post" {
		t.Fatalf("CreateService operation = %v, %v", created.GetName(), err)
	}
	dop, err := e.svcs.DeleteService(ctx, &runpb.DeleteServiceRequest{Name: loc + "/services/made-by-post"})
	if err != nil {
		t.Fatalf("DeleteService over REST = %v", err)
	}
	if _, err := waitOp(t, dop); err != nil {
		t.Fatalf("DeleteService operation = %v", err)
	}
	if e.srv.Service(loc+"/services/made-by-post") != nil {
		t.Errorf("DeleteService over REST left the service")
	}

	// The operations mixin: list, get, wait, delete.
	var ops []*longrunningpb.Operation
	oit := e.svcs.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: loc, PageSize: 2})
	for {
		o, err := oit.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("ListOperations over REST = %v", err)
		}
		ops = append(ops, o)
	}
	if len(ops) < 5 {
		t.Fatalf("ListOperations over REST = %d operations, want the 5 writes' at least", len(ops))
	}
	name := ops[0].GetName()
	got, err := e.svcs.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: name})
	if err != nil || got.GetName() != name {
		t.Fatalf("GetOperation(%s) over REST = %v, %v", name, got, err)
	}
	waited, err := e.svcs.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: name, Timeout: durationpb.New(time.Second)})
	if err != nil || !waited.GetDone() {
		t.Fatalf("WaitOperation(%s) over REST = %v, %v; want done", name, waited, err)
	}
	if err := e.svcs.DeleteOperation(ctx, &longrunningpb.DeleteOperationRequest{Name: name}); err != nil {
		t.Fatalf("DeleteOperation over REST = %v", err)
	}
	_, err = e.svcs.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: name})
	wantREST(t, "GetOperation after DeleteOperation", err, http.StatusNotFound, "NOT_FOUND")
}

// Errors carry Google's JSON error body, with the gRPC code as status and the
// HTTP status that code maps to.
func TestRESTErrorsWithGoogleClient(t *testing.T) {
	e := newRESTEnv(t)
	ctx := t.Context()
	stale := e.get(t, apiName).GetEtag()
	if _, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100)); err != nil {
		t.Fatal(err)
	}
	_, err := e.svcs.UpdateService(ctx, &runpb.UpdateServiceRequest{
		Service: &runpb.Service{Name: apiName, Etag: stale, Traffic: []*runpb.TrafficTarget{pin("api-00002-def", 100)}}, UpdateMask: mask("traffic"),
	})
	wantREST(t, "PATCH with a stale etag", err, http.StatusConflict, "ABORTED", "etag")

	_, err = e.svcs.UpdateService(ctx, &runpb.UpdateServiceRequest{
		Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-99999-zzz", 100)}}, UpdateMask: mask("traffic"),
	})
	bad := wantREST(t, "PATCH to an unknown revision", err, http.StatusBadRequest, "INVALID_ARGUMENT")
	if br := bad.api.Details().BadRequest; br == nil || len(br.GetFieldViolations()) == 0 || br.GetFieldViolations()[0].GetField() != "service.traffic" {
		t.Errorf("details of PATCH to an unknown revision = %v, want a BadRequest on service.traffic", bad.api.Details())
	}

	_, err = e.revs.DeleteRevision(ctx, &runpb.DeleteRevisionRequest{Name: apiName + "/revisions/api-00001-abc"})
	wantREST(t, "DELETE of a serving revision", err, http.StatusBadRequest, "FAILED_PRECONDITION", "cannot be deleted")

	_, err = e.svcs.GetService(ctx, &runpb.GetServiceRequest{Name: loc + "/services/nope"})
	wantREST(t, "GET of a missing service", err, http.StatusNotFound, "NOT_FOUND", "does not exist")

	_, err = e.svcs.CreateService(ctx, &runpb.CreateServiceRequest{Parent: loc, ServiceId: "api", Service: &runpb.Service{}})
	wantREST(t, "POST of an existing service", err, http.StatusConflict, "ALREADY_EXISTS")

	e.srv.FailNext("GetService", 1, codes.Unavailable, "try later")
	_, err = e.svcs.GetService(ctx, &runpb.GetServiceRequest{Name: apiName})
	wantREST(t, "GET under FailNext", err, http.StatusServiceUnavailable, "UNAVAILABLE", "try later")

	e.srv.FailNext("UpdateService", 1, codes.ResourceExhausted, "quota")
	_, err = e.setTraffic(t, apiName, pin("api-00002-def", 100))
	wantREST(t, "PATCH under FailNext", err, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "quota")
}

// REST calls run through the same handlers and interceptor as gRPC calls:
// counts, FailNext, LoseReply, latency and BeforeWrite apply alike.
func TestRESTFaultsApplyAsOnGRPC(t *testing.T) {
	e := newRESTEnv(t)
	ctx := t.Context()
	grpcSvcs := servicesClient(t, e.srv)
	if _, err := grpcSvcs.GetService(ctx, &runpb.GetServiceRequest{Name: apiName}); err != nil {
		t.Fatalf("gRPC GetService on the shared address = %v", err)
	}
	calls := e.srv.Calls()["GetService"]
	e.get(t, apiName)
	if got := e.srv.Calls()["GetService"]; got != calls+1 {
		t.Errorf("Calls()[GetService] after one REST GET = %d, want %d", got, calls+1)
	}

	e.srv.LoseReply("UpdateService", 1, codes.Unavailable)
	_, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100))
	wantREST(t, "PATCH whose reply is lost", err, http.StatusServiceUnavailable, "UNAVAILABLE", "lost")
	if got := e.srv.Service(apiName); got.GetTraffic()[0].GetRevision() != "api-00001-abc" || e.srv.Writes() != 1 {
		t.Errorf("after a lost reply: traffic %v, writes %d; want applied, 1", got.GetTraffic(), e.srv.Writes())
	}

	e.srv.BeforeWrite(func(s *runpb.Service) { s.Annotations = map[string]string{"someone": "else"} })
	_, err = e.setTraffic(t, apiName, pin("api-00002-def", 100))
	wantREST(t, "PATCH after a concurrent write", err, http.StatusConflict, "ABORTED")

	e.srv.SetLatency("GetService", time.Hour)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = e.svcs.GetService(short, &runpb.GetServiceRequest{Name: apiName})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET under an hour's latency = %v, want the caller's deadline", err)
	}
	e.srv.SetLatency("GetService", 0)
	if got := e.get(t, apiName); got.GetAnnotations()["someone"] != "else" {
		t.Errorf("the concurrent write is missing: %v", got.GetAnnotations())
	}
}

// The discovery client, google.golang.org/api/run/v2, speaks the same
// HTTP/JSON with its own JSON structs (enums as names, alt=json).
func TestRESTDiscoveryClient(t *testing.T) {
	srv := fakerun.NewTestServer(t)
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c, err := runapi.NewService(ctx, option.WithEndpoint("http://"+srv.Addr+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("run/v2 NewService() = %v", err)
	}
	svcs := c.Projects.Locations.Services
	api, err := svcs.Get(apiName).Context(ctx).Do()
	if err != nil {
		t.Fatalf("discovery Get(%s) = %v", apiName, err)
	}
	if api.Etag != srv.Service(apiName).GetEtag() || api.TrafficStatuses[0].Type != "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" {
		t.Errorf("discovery Get = etag %s, traffic %+v", api.Etag, api.TrafficStatuses[0])
	}
	op, err := svcs.Patch(apiName, &runapi.GoogleCloudRunV2Service{
		Etag:    api.Etag,
		Traffic: []*runapi.GoogleCloudRunV2TrafficTarget{{Type: "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", Revision: "api-00001-abc", Percent: 100}},
	}).UpdateMask("traffic").Context(ctx).Do()
	if err != nil {
		t.Fatalf("discovery Patch = %v", err)
	}
	waitFor(t, "the discovery client's operation", func() bool {
		op, err = c.Projects.Locations.Operations.Wait(op.Name, &runapi.GoogleLongrunningWaitOperationRequest{Timeout: "1s"}).Context(ctx).Do()
		if err != nil {
			t.Fatalf("discovery Operations.Wait = %v", err)
		}
		return op.Done
	})
	if op.Error != nil {
		t.Fatalf("discovery operation failed: %+v", op.Error)
	}
	if got := srv.Service(apiName); got.GetTraffic()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("after the discovery Patch: traffic %v", got.GetTraffic())
	}
	_, err = svcs.Patch(apiName, &runapi.GoogleCloudRunV2Service{Etag: api.Etag}).UpdateMask("traffic").Context(ctx).Do()
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusConflict || !strings.Contains(ge.Body, `"ABORTED"`) {
		t.Errorf("discovery Patch with a stale etag = %v, want HTTP 409 ABORTED", err)
	}
	revs, err := c.Projects.Locations.Services.Revisions.List(apiName).PageSize(1).Context(ctx).Do()
	if err != nil || len(revs.Revisions) != 1 || revs.NextPageToken == "" {
		t.Fatalf("discovery Revisions.List(pageSize 1) = %+v, %v; want one revision and a next page", revs, err)
	}
}

// rawCall is what curl would see.
func rawCall(t *testing.T, srv *fakerun.Server, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+srv.Addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s = %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, b, err)
	}
	return resp.StatusCode, m, string(b)
}

func wantRawError(t *testing.T, what string, m map[string]any, hs float64, st, substr string) {
	t.Helper()
	e, _ := m["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if e["code"] != hs || e["status"] != st || !strings.Contains(msg, substr) {
		t.Errorf("%s = %v, want {error: {code: %v, status: %s, message: …%s…}}", what, m, hs, st, substr)
	}
}

func TestRESTRawHTTP(t *testing.T) {
	srv := fakerun.NewTestServer(t)
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatal(err)
	}
	p := "/v2/" + apiName

	code, m, raw := rawCall(t, srv, "GET", p, "")
	if code != http.StatusOK || m["latestReadyRevision"] != apiName+"/revisions/api-00002-def" || !strings.Contains(raw, "\n  \"") {
		t.Errorf("GET %s = %d %s, want 200, camelCase fields, pretty-printed", p, code, raw)
	}
	if ts := m["trafficStatuses"].([]any)[0].(map[string]any); ts["type"] != "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION" {
		t.Errorf("GET: traffic status type = %v, want the enum's name", ts["type"])
	}
	_, m, raw = rawCall(t, srv, "GET", p+"?"+url.Values{"$alt": {"json;enum-encoding=int"}, "prettyPrint": {"false"}}.Encode(), "")
	if ts := m["trafficStatuses"].([]any)[0].(map[string]any); ts["type"] != float64(runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION) || strings.Contains(raw, "\n") {
		t.Errorf("GET with enum-encoding=int, prettyPrint=false: %s", raw)
	}

	// Proto field names are accepted as well as JSON names, in the body and
	// in the query (update_mask, and its paths).
	etag := srv.Service(apiName).GetEtag()
	quoted, _ := json.Marshal(etag)
	body := `{"etag":` + string(quoted) + `,"traffic":[{"type":"TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION","revision":"api-00001-abc","percent":100}],"launch_stage":"GA"}`
	code, m, raw = rawCall(t, srv, "PATCH", p+"?update_mask=traffic,launch_stage", body)
	if code != http.StatusOK || !strings.HasPrefix(m["name"].(string), loc+"/operations/") {
		t.Fatalf("PATCH with proto names = %d %s, want 200 and an operation", code, raw)
	}
	waitFor(t, "the PATCH to roll out", func() bool { return !srv.Service(apiName).GetReconciling() })
	if got := srv.Service(apiName); got.GetTraffic()[0].GetRevision() != "api-00001-abc" || got.GetLaunchStage().String() != "GA" {
		t.Errorf("after PATCH: traffic %v, launch stage %v", got.GetTraffic(), got.GetLaunchStage())
	}

	// Refusals: the HTTP status and Google's error body, with the gRPC status.
	for _, tt := range []struct {
		what, method, path, body string
		status                   int
		grpcStatus, message      string
	}{
		{"PATCH with a stale etag", "PATCH", p + "?updateMask=traffic", body, http.StatusConflict, "ABORTED", "etag"},
		{"GET with an unknown query parameter", "GET", p + "?foo=1", "", http.StatusBadRequest, "INVALID_ARGUMENT", `Unknown name "foo"`},
		{"PATCH with an unknown body field", "PATCH", p + "?updateMask=traffic", `{"trafic":[]}`, http.StatusBadRequest, "INVALID_ARGUMENT", "trafic"},
		{"PUT", "PUT", p, "{}", http.StatusNotFound, "NOT_FOUND", "serves no PUT"},
		{"GET of a job", "GET", "/v2/projects/local-project/locations/us-central1/jobs/x", "", http.StatusNotFound, "NOT_FOUND", "serves no GET"},
		{"GET of a worker pool's revision", "GET", "/v2/" + loc + "/workerPools/w/revisions/w-00001-abc", "", http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid revision name"},
		{"GET :getIamPolicy", "GET", "/v2/" + apiName + ":getIamPolicy", "", http.StatusNotImplemented, "UNIMPLEMENTED", "IAM"},
		{"GET with pageSize=-1", "GET", "/v2/" + loc + "/services?pageSize=-1", "", http.StatusBadRequest, "INVALID_ARGUMENT", "page_size"},
	} {
		code, m, _ := rawCall(t, srv, tt.method, tt.path, tt.body)
		if code != tt.status {
			t.Errorf("%s = %d, want %d", tt.what, code, tt.status)
		}
		wantRawError(t, tt.what, m, float64(tt.status), tt.grpcStatus, tt.message)
	}
}

// NewUnstartedServer lets a test register more gRPC services before Start.
func TestUnstartedServer(t *testing.T) {
	srv, err := fakerun.NewUnstartedServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	healthpb.RegisterHealthServer(srv.GRPC, healthgrpc.NewServer())
	srv.Start()
	srv.Start() // a second Start does nothing
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check on the registered service = %v, %v", resp, err)
	}
	if code, _, raw := rawCall(t, srv, "GET", "/v2/"+loc+"/services", ""); code != http.StatusOK {
		t.Errorf("REST list on the started server = %d %s", code, raw)
	}

	never, err := fakerun.NewUnstartedServer()
	if err != nil {
		t.Fatal(err)
	}
	never.Close() // closing a server never started is fine
	never.Start() // and starting it after does nothing
}
