package fakeapp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
)

const (
	apiName      = "projects/local-project/locations/us-central1/services/api"
	webName      = "projects/local-project/locations/us-central1/services/web"
	checkoutName = "projects/local-project/locations/us-central1/services/checkout"
	drillName    = "projects/local-project/locations/us-central1/services/drill"
)

// world starts a fake Admin API with a plane over it and seeds w.
func world(t *testing.T, w fakerun.World, opts ...fakeapp.Option) (*fakerun.Server, *fakeapp.Plane) {
	t.Helper()
	s := fakerun.NewTestServer(t)
	p := fakeapp.NewTestPlane(t, s, opts...)
	if err := s.Seed(w); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	return s, p
}

// serviceURL is the URL the fake Admin API reports for a service (tag "") or
// one of its tags.
func serviceURL(t *testing.T, s *fakerun.Server, p *fakeapp.Plane, name, tag string) string {
	t.Helper()
	svc := s.Service(name)
	if svc == nil {
		t.Fatalf("no service %s", name)
	}
	u := svc.GetUri()
	if tag != "" {
		u = ""
		for _, ts := range svc.GetTrafficStatuses() {
			if ts.GetTag() == tag {
				u = ts.GetUri()
			}
		}
	}
	if got, ok := p.URL(name, tag); !ok || got != u || u == "" {
		t.Fatalf("%s tag %q: API reports %q, plane has %q (%v)", name, tag, u, got, ok)
	}
	return u
}

func TestDefaultWorldHealth(t *testing.T) {
	s, p := world(t, fakerun.DefaultWorld())
	a := get(t, serviceURL(t, s, p, apiName, "")+"/api/v1/health/")
	if a.status != 200 || a.ctype != "application/json" || a.servedBy != "api-00002-def" ||
		a.body != `{"status":"healthy","version":"1.1.0","revision":"api-00002-def"}` {
		t.Fatalf("api health: %d %q served-by %q body %q", a.status, a.ctype, a.servedBy, a.body)
	}
	a = get(t, serviceURL(t, s, p, webName, "")+"/")
	if a.status != 200 || a.servedBy != "web-00001-aaa" || a.body != "hello from web-00001-aaa\n" {
		t.Fatalf("web (LATEST): %d served-by %q body %q", a.status, a.servedBy, a.body)
	}
}

func TestDefaultWorldCheckoutSplit(t *testing.T) {
	const n = 400
	run := func() map[string]int {
		s, p := world(t, fakerun.DefaultWorld(), fakeapp.WithSeed(2024))
		got := split(t, serviceURL(t, s, p, checkoutName, ""), n)
		if c := p.Counts(checkoutName); c.Total != n || c.ByStatus[200] != n ||
			c.ByRevision["checkout-00002-bbb"] != got["checkout-00002-bbb"] || c.ByRevision["checkout-00003-ccc"] != got["checkout-00003-ccc"] {
			t.Fatalf("counts %+v vs answers %v", c, got)
		}
		return got
	}
	first, second := run(), run()
	if len(first) != 2 || first["checkout-00002-bbb"]+first["checkout-00003-ccc"] != n {
		t.Fatalf("split %v", first)
	}
	if canary := first["checkout-00003-ccc"]; canary < n*5/100 || canary > n*15/100 {
		t.Fatalf("split %v, want about 90/10", first)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatalf("same seed, different splits: %v vs %v", first, second)
	}
}

func TestDefaultWorldCanaryTag(t *testing.T) {
	s, p := world(t, fakerun.DefaultWorld())
	u := serviceURL(t, s, p, checkoutName, "canary")
	if u == serviceURL(t, s, p, checkoutName, "") {
		t.Fatal("tag URL equals service URL")
	}
	for range 30 {
		a := get(t, u+"/api/v1/health/")
		if a.status != 200 || a.servedBy != "checkout-00003-ccc" || a.health.Version != "2.1.0" {
			t.Fatalf("canary: %d served-by %q body %q", a.status, a.servedBy, a.body)
		}
	}
	if c := p.Counts(checkoutName); c.Total != 30 || c.ByRevision["checkout-00003-ccc"] != 30 {
		t.Fatalf("tag requests not counted for the service: %+v", c)
	}
	p.ResetCounts()
	if c := p.Counts(checkoutName); c.Total != 0 {
		t.Fatalf("after ResetCounts: %+v", c)
	}
}

// drillWorld has a healthy serving revision and one tagged revision per break
// mode, each at 0%.
func drillWorld() fakerun.World {
	rev := func(name, brk string) fakerun.SeedRevision {
		env := map[string]string{"APP_VERSION": "3.0.0"}
		if brk != "" {
			env["RUNROLLBACK_BREAK"] = brk
		}
		return fakerun.SeedRevision{Name: name, Env: env}
	}
	return fakerun.World{Services: []fakerun.SeedService{{
		Name: "drill",
		Revisions: []fakerun.SeedRevision{
			rev("drill-00001-aaa", ""),
			rev("drill-00002-hea", "health"),
			rev("drill-00003-ver", "version"),
			rev("drill-00004-fla", "flaky:100"),
			rev("drill-00005-slo", "slow:50ms"),
		},
		Traffic: []fakerun.SeedTarget{
			{Revision: "drill-00001-aaa", Percent: 100},
			{Revision: "drill-00002-hea", Tag: "health"},
			{Revision: "drill-00003-ver", Tag: "version"},
			{Revision: "drill-00004-fla", Tag: "flaky"},
			{Revision: "drill-00005-slo", Tag: "slow"},
		},
	}}}
}

func TestSeededBreakModes(t *testing.T) {
	s, p := world(t, drillWorld())
	cases := []struct {
		tag, rev           string
		status             int
		state, version     string
		rootStatus         int
		slowerThanMillisec int
	}{
		{"", "drill-00001-aaa", 200, "healthy", "3.0.0", 200, 0},
		{"health", "drill-00002-hea", 503, "unhealthy", "3.0.0", 503, 0},
		{"version", "drill-00003-ver", 200, "healthy", "3.0.0-broken", 200, 0},
		{"flaky", "drill-00004-fla", 500, "unhealthy", "3.0.0", 500, 0},
		{"slow", "drill-00005-slo", 200, "healthy", "3.0.0", 200, 50},
	}
	for _, tc := range cases {
		t.Run("tag="+tc.tag, func(t *testing.T) {
			u := serviceURL(t, s, p, drillName, tc.tag)
			start := time.Now()
			a := get(t, u+"/api/v1/health/")
			if a.status != tc.status || a.servedBy != tc.rev || a.health.Status != tc.state ||
				a.health.Version != tc.version || a.health.Revision != tc.rev {
				t.Fatalf("health: %d served-by %q body %q", a.status, a.servedBy, a.body)
			}
			if d := time.Since(start); d < time.Duration(tc.slowerThanMillisec)*time.Millisecond {
				t.Fatalf("answered after %v, want at least %dms", d, tc.slowerThanMillisec)
			}
			if a := get(t, u+"/"); a.status != tc.rootStatus || a.servedBy != tc.rev {
				t.Fatalf("root: %d served-by %q", a.status, a.servedBy)
			}
		})
	}
	c := p.Counts(drillName)
	if c.Total != 10 || c.ByStatus[200] != 6 || c.ByStatus[503] != 2 || c.ByStatus[500] != 2 || len(c.ByRevision) != 5 {
		t.Fatalf("counts %+v", c)
	}
}

func TestSeededRequireToken(t *testing.T) {
	s, p := world(t, fakerun.DefaultWorld(), fakeapp.WithRequireToken(checkoutName, "tok"))
	for _, tag := range []string{"", "canary"} {
		u := serviceURL(t, s, p, checkoutName, tag) + "/api/v1/health/"
		if a := get(t, u); a.status != 401 || a.servedBy != "" {
			t.Fatalf("tag %q without token: %d served-by %q", tag, a.status, a.servedBy)
		}
		if a := get(t, u, "Authorization", "Bearer tok"); a.status != 200 || a.servedBy == "" {
			t.Fatalf("tag %q with token: %d", tag, a.status)
		}
	}
	if a := get(t, serviceURL(t, s, p, apiName, "")+"/"); a.status != 200 {
		t.Fatalf("api needs no token, got %d", a.status)
	}
	if c := p.Counts(checkoutName); c.Total != 4 || c.ByStatus[401] != 2 || c.ByStatus[200] != 2 {
		t.Fatalf("counts %+v", c)
	}
}

// TestImageBehaviour: a revision answers as the image its tag resolved to when
// it was created (APP_VERSION and the break from the image's env), the
// container's env overriding the image's; moving the tag later changes
// nothing for it.
func TestImageBehaviour(t *testing.T) {
	const (
		good   = "us-docker.pkg.dev/local-project/app/shop:good"
		broken = "us-docker.pkg.dev/local-project/app/shop:broken"
		shop   = "projects/local-project/locations/us-central1/services/shop"
	)
	s, p := world(t, fakerun.World{
		Images: map[string]fakerun.Image{
			good:   {AppVersion: "1.0.0"},
			broken: {AppVersion: "1.1.0", Env: map[string]string{fakeapp.EnvBreak: "health"}},
		},
		Services: []fakerun.SeedService{{Name: "shop", Revisions: []fakerun.SeedRevision{
			{Name: "shop-00001-aaa", Image: good},
			{Name: "shop-00002-bbb", Image: broken},
			{Name: "shop-00003-ccc", Image: broken, Env: map[string]string{fakeapp.EnvBreak: "", fakeapp.EnvVersion: "1.1.1"}},
		}, Traffic: []fakerun.SeedTarget{
			{Revision: "shop-00001-aaa", Percent: 100},
			{Revision: "shop-00002-bbb", Tag: "b"},
			{Revision: "shop-00003-ccc", Tag: "c"},
		}}},
	})
	if _, err := s.PushImage(good, fakerun.Image{AppVersion: "9.9.9"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		tag, body string
		status    int
	}{
		{"", `{"status":"healthy","version":"1.0.0","revision":"shop-00001-aaa"}`, 200},
		{"b", `{"status":"unhealthy","version":"1.1.0","revision":"shop-00002-bbb"}`, 503},
		{"c", `{"status":"healthy","version":"1.1.1","revision":"shop-00003-ccc"}`, 200},
	} {
		a := get(t, serviceURL(t, s, p, shop, tt.tag)+"/api/v1/health/")
		if a.status != tt.status || a.body != tt.body {
			t.Errorf("tag %q: %d %q; want %d %q", tt.tag, a.status, a.body, tt.status, tt.body)
		}
	}
}
