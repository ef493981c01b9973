package fakerun_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

func TestDefaultWorldRoundTripsThroughJSON(t *testing.T) {
	data, err := json.Marshal(fakerun.DefaultWorld())
	if err != nil {
		t.Fatal(err)
	}
	got, err := fakerun.ParseWorld(data)
	if err != nil {
		t.Fatalf("ParseWorld(DefaultWorld JSON) = %v", err)
	}
	if diff := cmp.Diff(fakerun.DefaultWorld(), got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestLoadWorld(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"services":[{"name":"svc","revisions":[
		{"name":"svc-00007-abc","env":{"APP_VERSION":"7.0.0"}},
		{"name":"svc-blue","image":"img:blue"}],
		"traffic":[{"revision":"svc-00007-abc","percent":100},{"latest":true,"percent":0,"tag":"next"}],
		"labels":{"team":"x"}}]}`)
	w, err := fakerun.LoadWorld(good)
	if err != nil {
		t.Fatalf("LoadWorld(good) = %v", err)
	}
	srv := fakerun.NewTestServer(t)
	if err := srv.Seed(w); err != nil {
		t.Fatalf("Seed(good) = %v", err)
	}
	name := loc + "/services/svc"
	svc := srv.Service(name)
	if svc.GetLabels()["team"] != "x" || svc.GetTemplate().GetContainers()[0].GetImage() != "img:blue" {
		t.Errorf("seeded service: labels %v, template %v", svc.GetLabels(), svc.GetTemplate())
	}
	if got := srv.Revision(name + "/revisions/svc-00007-abc").GetContainers()[0].GetImage(); got != "us-docker.pkg.dev/local-project/app/svc:7.0.0" {
		t.Errorf("default image = %q", got)
	}
	// Revision numbers continue after the highest seeded one, counting every
	// revision created: svc-00007-abc is the 7th, svc-blue the 8th.
	e := &env{srv: srv, svcs: servicesClient(t, srv)}
	got := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: name, Template: template("img:green")}, UpdateMask: mask("template")})
	if rev := shortName(got.GetLatestCreatedRevision()); !strings.HasPrefix(rev, "svc-00009-") {
		t.Errorf("next revision = %q, want svc-00009-…", rev)
	}

	for _, tt := range []struct{ name, body, want string }{
		{"unknown field", `{"services":[{"name":"a","revisions":[{"name":"a-1"}],"color":"red"}]}`, "unknown field"},
		{"trailing data", `{"services":[]} {}`, "after"},
	} {
		if _, err := fakerun.LoadWorld(write(tt.name+".json", tt.body)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadWorld(%s) = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := fakerun.LoadWorld(filepath.Join(dir, "missing.json")); err == nil {
		t.Errorf("LoadWorld(missing) = nil, want an error")
	}
	// A file one byte over the cap is refused before it is parsed.
	big := write("big.json", `{"services":[]}`+strings.Repeat(" ", fakerun.MaxWorldBytes))
	if _, err := fakerun.LoadWorld(big); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("LoadWorld(big) = %v, want an error saying it is too large", err)
	}
}

// TestLoadWorldEndlessFile reads a world from a file that never ends: the
// read stops at the cap.
func TestLoadWorldEndlessFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	_, err := fakerun.LoadWorld("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("LoadWorld(/dev/zero) = %v, want an error saying it is too large", err)
	}
}

func TestSeedErrors(t *testing.T) {
	rev := func(n string) fakerun.SeedRevision { return fakerun.SeedRevision{Name: n} }
	tests := []struct {
		name string
		svc  fakerun.SeedService
		want string
	}{
		{"no revisions", fakerun.SeedService{Name: "a"}, "at least one revision"},
		{"bad service name", fakerun.SeedService{Name: "A", Revisions: []fakerun.SeedRevision{rev("A-1")}}, "invalid service name"},
		{"revision prefix", fakerun.SeedService{Name: "a", Revisions: []fakerun.SeedRevision{rev("b-1")}}, `must start with "a-"`},
		{"duplicate revision", fakerun.SeedService{Name: "a", Revisions: []fakerun.SeedRevision{rev("a-1"), rev("a-1")}}, "twice"},
		{"bad traffic", fakerun.SeedService{Name: "a", Revisions: []fakerun.SeedRevision{rev("a-1")}, Traffic: []fakerun.SeedTarget{{Revision: "a-1", Percent: 50}}}, "sum to 50"},
		{"unknown revision", fakerun.SeedService{Name: "a", Revisions: []fakerun.SeedRevision{rev("a-1")}, Traffic: []fakerun.SeedTarget{{Revision: "a-2", Percent: 100}}}, "not found"},
		{"reserved annotation", fakerun.SeedService{Name: "a", Revisions: []fakerun.SeedRevision{rev("a-1")}, Annotations: map[string]string{"run.googleapis.com/x": "y"}}, "reserved"},
		{"broken revision serving", fakerun.SeedService{Name: "a", Revisions: []fakerun.SeedRevision{{Name: "a-1", Env: map[string]string{"RUNROLLBACK_BREAK": "startup"}}}}, "not ready"},
	}
	srv := fakerun.NewTestServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := srv.Seed(fakerun.World{Services: []fakerun.SeedService{tt.svc}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Seed(%s) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatalf("Seed(DefaultWorld) = %v", err)
	}
	// All or nothing: a world with one new and one existing service adds neither.
	w := fakerun.World{Services: []fakerun.SeedService{
		{Name: "fresh", Revisions: []fakerun.SeedRevision{rev("fresh-1")}},
		{Name: "api", Revisions: []fakerun.SeedRevision{rev("api-1")}},
	}}
	if err := srv.Seed(w); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Seed(existing api) = %v, want already exists", err)
	}
	if srv.Service(loc+"/services/fresh") != nil {
		t.Errorf("Seed added fresh although it failed")
	}
}

func TestRoutesAndFindURL(t *testing.T) {
	e := newEnv(t)
	got, ok := e.srv.Routes(checkoutName, "")
	image := func(version string) (string, string) {
		ref := "us-docker.pkg.dev/local-project/app/checkout:" + version
		img, ok := e.srv.ResolveImage(ref)
		if !ok {
			t.Fatalf("the default world's registry has no %s", ref)
		}
		return ref, img.Digest
	}
	ref2, digest2 := image("2.0.0")
	ref21, digest21 := image("2.1.0")
	want := []fakerun.Route{
		{Revision: "checkout-00002-bbb", Percent: 90, Env: map[string]string{"APP_VERSION": "2.0.0"}, Ready: true, Image: ref2, Digest: digest2},
		{Revision: "checkout-00003-ccc", Percent: 10, Env: map[string]string{"APP_VERSION": "2.1.0"}, Ready: true, Image: ref21, Digest: digest21},
	}
	if diff := cmp.Diff(want, got); !ok || diff != "" {
		t.Errorf("Routes(checkout) ok=%v (-want +got):\n%s", ok, diff)
	}
	got, ok = e.srv.Routes(checkoutName, "canary")
	if diff := cmp.Diff([]fakerun.Route{{Revision: "checkout-00003-ccc", Percent: 100, Env: map[string]string{"APP_VERSION": "2.1.0"}, Ready: true, Image: ref21, Digest: digest21}}, got); !ok || diff != "" {
		t.Errorf("Routes(checkout, canary) ok=%v (-want +got):\n%s", ok, diff)
	}
	if _, ok := e.srv.Routes(checkoutName, "nope"); ok {
		t.Errorf("Routes(checkout, nope) ok = true")
	}
	if _, ok := e.srv.Routes(loc+"/services/nope", ""); ok {
		t.Errorf("Routes(nope) ok = true")
	}

	svc, tag, ok := e.srv.FindURL(e.get(t, apiName).GetUri() + "/api/v1/health/")
	if !ok || svc != apiName || tag != "" {
		t.Errorf("FindURL(api uri) = %q, %q, %v", svc, tag, ok)
	}
	svc, tag, ok = e.srv.FindURL(fakerun.DefaultURL(checkoutName, "canary"))
	if !ok || svc != checkoutName || tag != "canary" {
		t.Errorf("FindURL(canary uri) = %q, %q, %v", svc, tag, ok)
	}
	if _, _, ok := e.srv.FindURL("https://example.com/"); ok {
		t.Errorf("FindURL(example.com) ok = true")
	}
}

func TestURLFunc(t *testing.T) {
	ports := map[string]int{}
	urlFor := func(name, tag string) string {
		key := name + "#" + tag
		if _, ok := ports[key]; !ok {
			ports[key] = 9000 + len(ports)
		}
		return fmt.Sprintf("http://127.0.0.1:%d", ports[key])
	}
	srv := fakerun.NewTestServer(t, fakerun.WithURLFunc(urlFor))
	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
		t.Fatal(err)
	}
	uri := srv.Service(checkoutName).GetUri()
	if name, tag, ok := srv.FindURL(uri); !ok || name != checkoutName || tag != "" {
		t.Errorf("FindURL(%s) = %q, %q, %v", uri, name, tag, ok)
	}
	canary := srv.Service(checkoutName).GetTrafficStatuses()[1].GetUri()
	if name, tag, ok := srv.FindURL(canary); !ok || name != checkoutName || tag != "canary" {
		t.Errorf("FindURL(%s) = %q, %q, %v", canary, name, tag, ok)
	}
	srv.SetURLFunc(func(name, tag string) string { return "http://later.test" })
	e := &env{srv: srv, svcs: servicesClient(t, srv)}
	got := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{tagged("api-00002-def", 100, "now")}}, UpdateMask: mask("traffic")})
	if got.GetTrafficStatuses()[0].GetUri() != "http://later.test" || got.GetUri() != uriOf(srv, apiName) {
		t.Errorf("after SetURLFunc: tag uri %q, service uri %q", got.GetTrafficStatuses()[0].GetUri(), got.GetUri())
	}
}

func uriOf(srv *fakerun.Server, name string) string { return srv.Service(name).GetUri() }

func TestControlHandler(t *testing.T) {
	e := newEnv(t)
	e.svcs.CallOptions.GetService = nil
	ctl := httptest.NewServer(e.srv.ControlHandler())
	t.Cleanup(ctl.Close)
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, ctl.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ctl.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s = %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := do("GET", "/state", "")
	var state struct {
		Services []struct {
			Service         string
			Etag            string
			Generation      int64
			Ready           string
			TrafficStatuses []fakerun.SeedTarget `json:"traffic_statuses"`
			Revisions       []struct {
				Name  string
				Ready bool
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &state); code != 200 || err != nil || len(state.Services) != 3 {
		t.Fatalf("GET /state = %d, %v:\n%s", code, err, body)
	}
	if s := state.Services[0]; s.Service != "checkout" || s.Ready != "SUCCEEDED" || len(s.TrafficStatuses) != 2 || s.TrafficStatuses[1].Tag != "canary" || len(s.Revisions) != 2 {
		t.Errorf("GET /state checkout = %+v", s)
	}

	if code, body := do("POST", "/fail", `{"method":"GetService","n":1,"code":"UNAVAILABLE","message":"from outside"}`); code != 200 {
		t.Fatalf("POST /fail = %d %s", code, body)
	}
	_, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: apiName})
	wantCode(t, "GetService after POST /fail", err, codes.Unavailable, "from outside")

	read := e.get(t, apiName)
	if code, body := do("POST", "/concurrent-write", `{"service":"api","traffic":[{"revision":"api-00001-abc","percent":100}]}`); code != 200 {
		t.Fatalf("POST /concurrent-write = %d %s", code, body)
	}
	// An update of another service does not fire it.
	if _, err := e.setTraffic(t, checkoutName, pin("checkout-00002-bbb", 100)); err != nil {
		t.Fatal(err)
	}
	_, err = e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Etag: read.GetEtag(), Labels: map[string]string{"a": "b"}}, UpdateMask: mask("labels")})
	wantCode(t, "UpdateService after POST /concurrent-write", err, codes.Aborted)

	if code, _ := do("POST", "/hold", `{"hold":true}`); code != 200 {
		t.Fatal("POST /hold failed")
	}
	op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: webName, Labels: map[string]string{"a": "b"}}, UpdateMask: mask("labels")})
	if err != nil || op.Done() {
		t.Fatalf("UpdateService while held: done %v, %v", op != nil && op.Done(), err)
	}
	if code, _ := do("POST", "/release", ""); code != 200 {
		t.Fatal("POST /release failed")
	}
	if _, err := op.Poll(t.Context()); err != nil || !op.Done() {
		t.Errorf("after POST /release: done %v, %v", op.Done(), err)
	}

	if code, _ := do("POST", "/fail-operations", `{"n":1,"code":"internal","message":"op failed"}`); code != 200 {
		t.Fatal("POST /fail-operations failed")
	}
	if code, _ := do("POST", "/hold", `{"hold":false}`); code != 200 {
		t.Fatal("POST /hold false failed")
	}
	_, err = e.setTraffic(t, webName, pin("web-00001-aaa", 100))
	wantCode(t, "UpdateService after POST /fail-operations", err, codes.Internal, "op failed")

	if code, _ := do("POST", "/latency", `{"method":"GetService","ms":1}`); code != 200 {
		t.Fatal("POST /latency failed")
	}
	if code, _ := do("POST", "/lose-reply", `{"method":"DeleteService","n":1,"code":"DEADLINE_EXCEEDED"}`); code != 200 {
		t.Fatal("POST /lose-reply failed")
	}
	if code, _ := do("POST", "/reset-faults", ""); code != 200 {
		t.Fatal("POST /reset-faults failed")
	}
	if _, err := e.svcs.DeleteService(t.Context(), &runpb.DeleteServiceRequest{Name: webName}); err != nil {
		t.Errorf("DeleteService after /reset-faults = %v", err)
	}

	code, body = do("GET", "/calls", "")
	var calls struct {
		Calls  map[string]int
		Writes int
	}
	if err := json.Unmarshal([]byte(body), &calls); code != 200 || err != nil || calls.Calls["GetService"] == 0 || calls.Writes != e.srv.Writes() {
		t.Errorf("GET /calls = %d %v %s", code, err, body)
	}

	for _, tt := range []struct{ path, body string }{
		{"/fail", `{"method":"Nope","code":"UNAVAILABLE"}`},
		{"/fail", `{"method":"GetService","code":"SOMETIMES"}`},
		{"/fail", `{"method":"GetService","code":"UNAVAILABLE","extra":1}`},
		{"/latency", `{"method":"Nope","ms":1}`},
	} {
		if code, body := do("POST", tt.path, tt.body); code != http.StatusBadRequest || !strings.Contains(body, "error") {
			t.Errorf("POST %s %s = %d %s, want 400 with an error", tt.path, tt.body, code, body)
		}
	}
	if code, _ := do("POST", "/concurrent-write", `{"service":"nope"}`); code != http.StatusNotFound {
		t.Errorf("POST /concurrent-write nope = %d, want 404", code)
	}
	if code, _ := do("GET", "/release", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /release = %d, want 405", code)
	}
	if code, body := do("POST", "/seed", `{"services":[{"name":"more","revisions":[{"name":"more-00001-aaa"}]}]}`); code != 200 || e.srv.Service(loc+"/services/more") == nil {
		t.Errorf("POST /seed = %d %s", code, body)
	}
}
