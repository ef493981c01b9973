package battery

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// servedVersions requests the service's health endpoint n times and counts
// the answers by "revision version".
func (f *fake) servedVersions(v view, n int) map[string]int {
	f.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	got := map[string]int{}
	for range n {
		resp, err := c.Get(v.uri + "/api/v1/health/")
		if err != nil {
			f.t.Fatalf("serving plane: GET %s: %v", v.uri, err)
		}
		var body struct {
			Version string `json:"version"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		got[resp.Header.Get("X-Served-By")+" "+body.Version]++
	}
	return got
}

// tagMoved: the image tag a service's template names moves to another image
// during the drill, so the template written back builds a revision that runs
// something else than before.
func tagMoved() family {
	fam := family{section: "Images", id: "tag-moved", name: "the template's image tag moves to another image during the drill",
		over:    "a LATEST-tracking service; a pinned one × the tag moved after the deploy; after the shift",
		asserts: "users are answered only with the version they had before: when the template written back runs the moved image, a LATEST-tracking service is pinned back to its revision and the run says so, naming the moved tag and how to follow LATEST again (exit 5); otherwise, and for a pinned service, exit 0"}
	for _, svc := range []string{"shop", "store"} {
		for _, after := range []int{1, 3} {
			name := map[int]string{1: "after-deploy", 3: "after-shift"}[after]
			fam.variants = append(fam.variants, variant{svc + "/" + name, func(t *testing.T) {
				f := startFake(t)
				image := "us-docker.pkg.dev/local-project/app/" + svc + ":stable"
				service := map[string]any{"name": svc, "revisions": []map[string]any{{"name": svc + "-00001-aaa", "image": image}}}
				if svc == "store" {
					service["traffic"] = seedTargets(svc + "-00001-aaa=100")
				}
				f.post("/seed", map[string]any{
					"images":   map[string]any{image: map[string]string{"app_version": "1.0.0"}},
					"services": []any{service},
				})
				f.post("/images", map[string]any{"image": image, "app_version": "2.0.0", "after_writes": after})
				p := f.run(f.machine("a"), nil, drillArgs(svc)...)
				out := p.output()
				served := f.servedVersions(f.read(svc), 20)
				for k, n := range served {
					if !strings.HasSuffix(k, " 1.0.0") {
						t.Errorf("%d of 20 answers from %q after the drill (exit %d), not version 1.0.0\n%s", n, k, p.code, out)
					}
				}
				if svc == "store" || after > 2 {
					// Pinned, or the template was built again before the
					// tag moved: nothing users reach runs the moved image.
					p.expectCode(0)
					return
				}
				p.expectCode(5)
				if !strings.Contains(out, "moved") || !strings.Contains(out, "--to-latest") {
					t.Errorf("exit 5 without naming the moved tag and how to follow LATEST again:\n%s", out)
				}
				if o := f.read(svc).ours(); len(o) > 0 {
					t.Errorf("left of the drill's: %v", o)
				}
			}})
		}
	}
	return fam
}
