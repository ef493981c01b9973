package fakerun_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

const stable = "us-docker.pkg.dev/local-project/app/shop:stable"

var shopName = loc + "/services/shop"

// registryWorld is one LATEST-tracking service, shop, whose revision runs the
// image the tag shop:stable points to (1.0.0); its env sets no APP_VERSION.
func registryWorld() fakerun.World {
	return fakerun.World{
		Images: map[string]fakerun.Image{stable: {AppVersion: "1.0.0"}},
		Services: []fakerun.SeedService{{Name: "shop", Revisions: []fakerun.SeedRevision{
			{Name: "shop-00001-aaa", Image: stable, Env: map[string]string{"GREETING": "hi"}},
		}}},
	}
}

// transport dials Google's clients one way: gRPC, or REST (HTTP/JSON), so a
// behaviour is checked through both.
type transport struct {
	name string
	dial func(t *testing.T, srv *fakerun.Server) (*run.ServicesClient, *run.RevisionsClient)
}

var transports = []transport{
	{"grpc", func(t *testing.T, srv *fakerun.Server) (*run.ServicesClient, *run.RevisionsClient) {
		return servicesClient(t, srv), revisionsClient(t, srv)
	}},
	{"rest", func(t *testing.T, srv *fakerun.Server) (*run.ServicesClient, *run.RevisionsClient) {
		t.Helper()
		svcs, err := run.NewServicesRESTClient(t.Context(), restOptions(srv)...)
		if err != nil {
			t.Fatalf("run.NewServicesRESTClient() = %v", err)
		}
		t.Cleanup(func() { svcs.Close() })
		revs, err := run.NewRevisionsRESTClient(t.Context(), restOptions(srv)...)
		if err != nil {
			t.Fatalf("run.NewRevisionsRESTClient() = %v", err)
		}
		t.Cleanup(func() { revs.Close() })
		return svcs, revs
	}},
}

// worldEnv is a fake seeded with w and Google's clients dialed to it over tr.
func worldEnv(t *testing.T, tr transport, w fakerun.World, opts ...fakerun.Option) *env {
	t.Helper()
	srv := fakerun.NewTestServer(t, opts...)
	if err := srv.Seed(w); err != nil {
		t.Fatalf("Seed = %v", err)
	}
	svcs, revs := tr.dial(t, srv)
	return &env{srv: srv, svcs: svcs, revs: revs}
}

// redeploy writes the service's template back unchanged, forcing a new
// revision (what cleanup's template write amounts to once the template
// differed in between), and returns the new revision's short name.
func (e *env) redeploy(t *testing.T, name string) string {
	t.Helper()
	cur := e.get(t, name)
	tpl := cur.GetTemplate()
	tpl.Revision = ""
	svc := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: name, Template: tpl}, UpdateMask: mask("template"), ForceNewRevision: true})
	return shortName(svc.GetLatestCreatedRevision())
}

func routeVersion(t *testing.T, e *env, name string) (rev, version, digest string) {
	t.Helper()
	routes, ok := e.srv.Routes(name, "")
	if !ok || len(routes) != 1 {
		t.Fatalf("Routes(%s) = %v, %v; want one route", name, routes, ok)
	}
	return routes[0].Revision, routes[0].Env["APP_VERSION"], routes[0].Digest
}

// TestImageTagResolvedWhenRevisionIsCreated: a revision runs what its image tag
// pointed to when the revision was created; moving the tag changes only the
// revisions created afterwards; deploying by digest runs that digest.
func TestImageTagResolvedWhenRevisionIsCreated(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := worldEnv(t, tr, registryWorld())
			rev1, v1, d1 := routeVersion(t, e, shopName)
			if rev1 != "shop-00001-aaa" || v1 != "1.0.0" || !strings.HasPrefix(d1, "sha256:") {
				t.Fatalf("seeded route = %s %s %s; want shop-00001-aaa running 1.0.0 by digest", rev1, v1, d1)
			}
			if img, ok := e.srv.RevisionImage(shopName + "/revisions/shop-00001-aaa"); !ok || img.Digest != d1 || img.AppVersion != "1.0.0" {
				t.Errorf("RevisionImage(shop-00001-aaa) = %+v, %v", img, ok)
			}

			d2, err := e.srv.PushImage(stable, fakerun.Image{AppVersion: "2.0.0", Env: map[string]string{"GREETING": "ignored", "COLOR": "blue"}})
			if err != nil || d2 == d1 {
				t.Fatalf("PushImage(2.0.0) = %s, %v; want a new digest", d2, err)
			}
			if _, v, d := routeVersion(t, e, shopName); v != "1.0.0" || d != d1 {
				t.Errorf("after the tag moved, the existing revision runs %s (%s); want 1.0.0 (%s): it resolved its tag when it was created", v, d, d1)
			}

			rev2 := e.redeploy(t, shopName)
			gotRev, v2, gotD := routeVersion(t, e, shopName)
			if gotRev != rev2 || v2 != "2.0.0" || gotD != d2 {
				t.Errorf("the template written back serves %s running %s (%s); want %s running 2.0.0 (%s)", gotRev, v2, gotD, rev2, d2)
			}
			routes, _ := e.srv.Routes(shopName, "")
			if env := routes[0].Env; env["GREETING"] != "hi" || env["COLOR"] != "blue" {
				t.Errorf("env of the new revision = %v; want the container's GREETING over the image's, and the image's COLOR", env)
			}
			// What the API shows of the revision: the image as the template gave it
			// (the v2 Revision has no digest field).
			got, err := e.revs.GetRevision(t.Context(), &runpb.GetRevisionRequest{Name: shopName + "/revisions/" + rev2})
			if err != nil || got.GetContainers()[0].GetImage() != stable {
				t.Errorf("GetRevision(%s) image = %q, %v; want %q as given", rev2, got.GetContainers()[0].GetImage(), err, stable)
			}

			// Redeploy by digest: the old image, whatever the tag says.
			byDigest := "us-docker.pkg.dev/local-project/app/shop@" + d1
			e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: shopName, Template: template(byDigest)}, UpdateMask: mask("template")})
			if _, v, d := routeVersion(t, e, shopName); v != "1.0.0" || d != d1 {
				t.Errorf("deployed by digest %s: runs %s (%s); want 1.0.0", d1, v, d)
			}

			// Moving the tag back by digest alone.
			if d, err := e.srv.PushImage(stable, fakerun.Image{Digest: d1}); err != nil || d != d1 {
				t.Errorf("PushImage(stable, digest %s) = %s, %v", d1, d, err)
			}
			if img, ok := e.srv.ResolveImage(stable); !ok || img.AppVersion != "1.0.0" {
				t.Errorf("ResolveImage(stable) after moving it back = %+v, %v", img, ok)
			}
		})
	}
}

// TestImageEnvBreaksStartup: an image whose env carries RUNROLLBACK_BREAK=startup
// builds a revision that never becomes Ready; the container's env can override
// it. An image the registry does not know: the env alone decides.
func TestImageEnvBreaksStartup(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := worldEnv(t, tr, registryWorld())
			if _, err := e.srv.PushImage(stable, fakerun.Image{AppVersion: "3.0.0", Env: map[string]string{"RUNROLLBACK_BREAK": "startup"}}); err != nil {
				t.Fatal(err)
			}
			cur := e.get(t, shopName)
			tpl := cur.GetTemplate()
			tpl.Revision = ""
			_, err := e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: shopName, Template: tpl}, UpdateMask: mask("template"), ForceNewRevision: true})
			wantCode(t, "deploying an image that fails to start", err, codes.FailedPrecondition, "is not ready and cannot serve traffic")
			if rev, v, _ := routeVersion(t, e, shopName); rev != "shop-00001-aaa" || v != "1.0.0" {
				t.Errorf("after the failed deploy users are on %s (%s); want shop-00001-aaa", rev, v)
			}

			// The container's env overrides the image's.
			e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: shopName, Template: template(stable, "RUNROLLBACK_BREAK", "")}, UpdateMask: mask("template")})
			if _, v, _ := routeVersion(t, e, shopName); v != "3.0.0" {
				t.Errorf("with RUNROLLBACK_BREAK overridden the new revision runs %s; want 3.0.0", v)
			}

			// Not in the registry: no digest, the env decides.
			e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: shopName, Template: template("example.com/other:1", "APP_VERSION", "9.9.9")}, UpdateMask: mask("template")})
			if _, v, d := routeVersion(t, e, shopName); v != "9.9.9" || d != "" {
				t.Errorf("an unknown image runs %s (digest %q); want its env's 9.9.9 and no digest", v, d)
			}
		})
	}
}

// TestPushImageAfterWrites: a push waits for the writes it is told to; the
// revision the last of them creates still gets the old image.
func TestPushImageAfterWrites(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := worldEnv(t, tr, registryWorld())
			d2, err := e.srv.PushImageAfterWrites(2, stable, fakerun.Image{AppVersion: "2.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			if img, _ := e.srv.ResolveImage(stable); img.AppVersion != "1.0.0" {
				t.Fatalf("the tag moved before any write: %+v", img)
			}
			e.redeploy(t, shopName) // write 1
			e.redeploy(t, shopName) // write 2: the push follows it
			if _, v, _ := routeVersion(t, e, shopName); v != "1.0.0" {
				t.Errorf("the second write's revision runs %s; want 1.0.0 (the tag moves after it)", v)
			}
			e.redeploy(t, shopName)
			if _, v, d := routeVersion(t, e, shopName); v != "2.0.0" || d != d2 {
				t.Errorf("the third write's revision runs %s (%s); want 2.0.0 (%s)", v, d, d2)
			}
			if _, err := e.srv.PushImageAfterWrites(1, stable+"@sha256:"+strings.Repeat("0", 64), fakerun.Image{}); err == nil {
				t.Errorf("PushImageAfterWrites to a digest reference = nil error; want it refused at once")
			}
		})
	}
}

func TestPushImageRefusesBadInput(t *testing.T) {
	srv := fakerun.NewTestServer(t)
	for _, tt := range []struct {
		ref string
		img fakerun.Image
	}{
		{"", fakerun.Image{AppVersion: "1"}},
		{"repo@sha256:" + strings.Repeat("a", 64), fakerun.Image{AppVersion: "1"}},
		{"repo:bad tag", fakerun.Image{AppVersion: "1"}},
		{"repo:1", fakerun.Image{Digest: "sha256:short"}},
	} {
		if _, err := srv.PushImage(tt.ref, tt.img); err == nil {
			t.Errorf("PushImage(%q, %+v) = nil error", tt.ref, tt.img)
		}
	}
	d, err := srv.PushImage("repo:1", fakerun.Image{AppVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PushImage("repo:2", fakerun.Image{Digest: d, AppVersion: "2"}); err == nil {
		t.Errorf("PushImage with a digest that names another image = nil error")
	}
	if img, ok := srv.ResolveImage("repo"); ok {
		t.Errorf("ResolveImage(repo) = %+v; want nothing (repo means repo:latest)", img)
	}
	if _, err := srv.PushImage("repo", fakerun.Image{AppVersion: "L"}); err != nil {
		t.Fatal(err)
	}
	if img, ok := srv.ResolveImage("repo:latest"); !ok || img.AppVersion != "L" {
		t.Errorf("ResolveImage(repo:latest) = %+v, %v", img, ok)
	}
}

// TestWorldImages: a world's images seed the registry; a bad one fails the
// seed and adds nothing.
func TestWorldImages(t *testing.T) {
	w, err := fakerun.ParseWorld([]byte(`{"images":{"` + stable + `":{"app_version":"1.0.0","env":{"COLOR":"red"}}},
		"services":[{"name":"shop","revisions":[{"name":"shop-00001-aaa","image":"` + stable + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	e := worldEnv(t, transports[0], w)
	routes, _ := e.srv.Routes(shopName, "")
	if len(routes) != 1 || routes[0].Env["APP_VERSION"] != "1.0.0" || routes[0].Env["COLOR"] != "red" {
		t.Errorf("Routes = %+v; want the image's APP_VERSION and env", routes)
	}
	if imgs := e.srv.Images(); imgs[stable].AppVersion != "1.0.0" {
		t.Errorf("Images() = %v", imgs)
	}

	bad := registryWorld()
	bad.Services[0].Name, bad.Services[0].Revisions[0].Name = "other", "other-00001-aaa"
	bad.Images["x@sha256:"+strings.Repeat("b", 64)] = fakerun.Image{AppVersion: "1"}
	if err := e.srv.Seed(bad); err == nil || !strings.Contains(err.Error(), "seed images") {
		t.Errorf("Seed(image by digest) = %v; want an images error", err)
	}
	if e.srv.Service(loc+"/services/other") != nil {
		t.Errorf("the failed seed added a service")
	}
	failing := registryWorld()
	failing.Images = map[string]fakerun.Image{"us-docker.pkg.dev/local-project/app/shop:next": {AppVersion: "5"}}
	failing.Services[0].Name, failing.Services[0].Revisions[0].Name = "shop", "shop-00001-aaa" // already exists
	if err := e.srv.Seed(failing); err == nil {
		t.Fatalf("Seed(existing shop) = nil")
	}
	if _, ok := e.srv.ResolveImage("us-docker.pkg.dev/local-project/app/shop:next"); ok {
		t.Errorf("the failed seed added its images")
	}
}

// TestControlImages: the control endpoint pushes (moves) a tag, now or after
// writes, and lists the registry; /state shows what each revision resolved to.
func TestControlImages(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := worldEnv(t, tr, registryWorld())
			ctl := httptest.NewServer(e.srv.ControlHandler())
			t.Cleanup(ctl.Close)
			post := func(body string) (int, map[string]any) {
				t.Helper()
				resp, err := http.Post(ctl.URL+"/images", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var out map[string]any
				_ = json.Unmarshal(b, &out)
				return resp.StatusCode, out
			}
			for _, body := range []string{`{}`, `{"image":"r@sha256:` + strings.Repeat("c", 64) + `"}`, `{"image":"r:1","digest":"md5:x"}`, `{"image":"r:1","bogus":1}`} {
				if code, out := post(body); code != http.StatusBadRequest || out["error"] == nil {
					t.Errorf("POST /images %s = %d %v; want 400 with an error", body, code, out)
				}
			}
			code, out := post(`{"image":"` + stable + `","app_version":"2.0.0","after_writes":1}`)
			if code != http.StatusOK || out["ok"] != true || !strings.HasPrefix(out["digest"].(string), "sha256:") {
				t.Fatalf("POST /images = %d %v", code, out)
			}
			first := e.redeploy(t, shopName)
			second := e.redeploy(t, shopName)

			resp, err := http.Get(ctl.URL + "/images")
			if err != nil {
				t.Fatal(err)
			}
			var imgs struct {
				Images map[string]fakerun.Image `json:"images"`
			}
			err = json.NewDecoder(resp.Body).Decode(&imgs)
			resp.Body.Close()
			if err != nil || imgs.Images[stable].AppVersion != "2.0.0" || imgs.Images[stable].Digest != out["digest"] {
				t.Errorf("GET /images = %+v, %v; want %s at 2.0.0", imgs, err, stable)
			}

			resp, err = http.Get(ctl.URL + "/state")
			if err != nil {
				t.Fatal(err)
			}
			var state struct {
				Services []struct {
					Revisions []struct {
						Name, Digest string
						AppVersion   string `json:"app_version"`
					}
				}
			}
			err = json.NewDecoder(resp.Body).Decode(&state)
			resp.Body.Close()
			if err != nil || len(state.Services) != 1 {
				t.Fatalf("GET /state = %+v, %v", state, err)
			}
			versions := map[string]string{}
			for _, r := range state.Services[0].Revisions {
				versions[r.Name] = r.AppVersion
				if !strings.HasPrefix(r.Digest, "sha256:") {
					t.Errorf("revision %s digest %q in /state", r.Name, r.Digest)
				}
			}
			if versions[first] != "1.0.0" || versions[second] != "2.0.0" {
				t.Errorf("/state versions = %v; want %s at 1.0.0 (before the push) and %s at 2.0.0", versions, first, second)
			}
		})
	}
}
