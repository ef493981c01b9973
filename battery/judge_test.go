package battery

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	runapi "google.golang.org/api/run/v2"
)

// The judge reads the service only with Google's discovery client, over the
// fake's REST surface, and the serving plane only with plain HTTP requests.

// breakEnv is the drill's switch: a revision whose env has it is broken.
const breakEnv = "RUNROLLBACK_BREAK"

// view is a service as the judge reads it.
type view struct {
	name        string
	uri         string
	traffic     []string // "TYPE revision percent tag", in order
	statuses    []string
	latestReady string
	template    string // JSON, output-only fields and the revision name cleared
	container   string // the template's first container: image and env
	annotations map[string]string
	labels      map[string]string
	tags        []string
	revisions   map[string]revision
	etag        string
}

type revision struct {
	name      string
	container string // image and env, as in view.container
	broken    bool   // carries the drill's switch
	created   time.Time
}

// target renders a traffic target as "TYPE revision percent tag", with "-"
// for an empty revision or tag.
func target(typ, rev string, pct int64, tag string) string {
	return fmt.Sprintf("%s %s %d %s", strings.TrimPrefix(typ, "TRAFFIC_TARGET_ALLOCATION_TYPE_"), cmp.Or(rev, "-"), pct, cmp.Or(tag, "-"))
}

func containerOf(cs []*runapi.GoogleCloudRunV2Container) string {
	if len(cs) == 0 {
		return ""
	}
	c := cs[0]
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	sort.Strings(env)
	return c.Image + " " + strings.Join(env, ",")
}

func brokenEnv(cs []*runapi.GoogleCloudRunV2Container) bool {
	for _, c := range cs {
		for _, e := range c.Env {
			if e.Name == breakEnv {
				return true
			}
		}
	}
	return false
}

// read reads svc with the judge.
func (f *fake) read(svc string) view {
	f.t.Helper()
	s, err := f.judge.Projects.Locations.Services.Get(fullName(svc)).Do()
	if err != nil {
		f.t.Fatalf("judge: get %s: %v", svc, err)
	}
	v := view{name: svc, uri: s.Uri, latestReady: s.LatestReadyRevision, annotations: s.Annotations, labels: s.Labels,
		revisions: map[string]revision{}, etag: s.Etag}
	for _, t := range s.Traffic {
		v.traffic = append(v.traffic, target(t.Type, t.Revision, t.Percent, t.Tag))
		if t.Tag != "" {
			v.tags = append(v.tags, t.Tag)
		}
	}
	for _, t := range s.TrafficStatuses {
		v.statuses = append(v.statuses, target(t.Type, t.Revision, t.Percent, t.Tag))
	}
	if s.Template != nil {
		tmpl := *s.Template
		tmpl.Revision = ""
		b, err := json.Marshal(tmpl)
		if err != nil {
			f.t.Fatal(err)
		}
		v.template = string(b)
		v.container = containerOf(tmpl.Containers)
	}
	revs, err := f.judge.Projects.Locations.Services.Revisions.List(fullName(svc)).PageSize(100).Do()
	if err != nil {
		f.t.Fatalf("judge: list revisions of %s: %v", svc, err)
	}
	for _, r := range revs.Revisions {
		short := r.Name[strings.LastIndex(r.Name, "/")+1:]
		created, _ := time.Parse(time.RFC3339Nano, r.CreateTime)
		v.revisions[short] = revision{name: short, container: containerOf(r.Containers), broken: brokenEnv(r.Containers), created: created}
	}
	return v
}

// ours lists what of runrollback's a view carries: its annotations, drill
// tags, drill revisions, and the break in the template.
func (v view) ours() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(v.annotations)) {
		if strings.HasPrefix(k, "runrollback.dev/") {
			out = append(out, "annotation "+k)
		}
	}
	for _, t := range v.traffic {
		if f := strings.Fields(t); strings.Contains(f[1], "-drill-") || strings.HasPrefix(f[3], "drill-") {
			out = append(out, "traffic entry "+t)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(v.revisions)) {
		if strings.Contains(r, "-drill-") {
			out = append(out, "revision "+r)
		}
	}
	if strings.Contains(v.container, breakEnv+"=") {
		out = append(out, "the break in the template: "+v.container)
	}
	return out
}

// diff compares after with before entry for entry: traffic, traffic
// statuses, template, annotations, labels, tags and revisions. A revision
// that is new is allowed only when it is the pre-drill template built again
// (its container equals the template before), and a LATEST status may resolve
// to such a revision.
func diff(before, after view) []string {
	var out []string
	if !slices.Equal(before.traffic, after.traffic) {
		out = append(out, fmt.Sprintf("traffic %q, was %q", after.traffic, before.traffic))
	}
	fresh := func(name string) bool {
		r, ok := after.revisions[name]
		_, old := before.revisions[name]
		return ok && !old && r.container == before.container && !strings.Contains(name, "-drill-")
	}
	if len(before.statuses) != len(after.statuses) {
		out = append(out, fmt.Sprintf("traffic statuses %q, were %q", after.statuses, before.statuses))
	} else {
		for i := range before.statuses {
			b, a := before.statuses[i], after.statuses[i]
			if a == b {
				continue
			}
			bf, af := strings.Fields(b), strings.Fields(a)
			if bf[0] == "LATEST" && len(af) > 1 && af[0] == "LATEST" && fresh(af[1]) && slices.Equal(bf[2:], af[2:]) {
				continue
			}
			out = append(out, fmt.Sprintf("traffic status %q, was %q", a, b))
		}
	}
	if before.template != after.template {
		out = append(out, fmt.Sprintf("template %s, was %s", after.template, before.template))
	}
	if !maps.Equal(before.annotations, after.annotations) {
		out = append(out, fmt.Sprintf("annotations %v, were %v", after.annotations, before.annotations))
	}
	if !maps.Equal(before.labels, after.labels) {
		out = append(out, fmt.Sprintf("labels %v, were %v", after.labels, before.labels))
	}
	if !slices.Equal(before.tags, after.tags) {
		out = append(out, fmt.Sprintf("tags %q, were %q", after.tags, before.tags))
	}
	for name := range before.revisions {
		if _, ok := after.revisions[name]; !ok {
			out = append(out, "revision "+name+" deleted")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(after.revisions)) {
		if _, ok := before.revisions[name]; !ok && !fresh(name) {
			out = append(out, fmt.Sprintf("new revision %s (%s)", name, after.revisions[name].container))
		}
	}
	return out
}

// servedBy requests the service URL n times and returns the revisions that
// answered (X-Served-By), with counts.
func (f *fake) servedBy(v view, n int) map[string]int {
	f.t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	got := map[string]int{}
	for range n {
		resp, err := c.Get(v.uri + "/")
		if err != nil {
			f.t.Fatalf("serving plane: GET %s: %v", v.uri, err)
		}
		resp.Body.Close()
		got[resp.Header.Get("X-Served-By")]++
	}
	return got
}

// checkServing fails unless every answer of the service URL comes from a
// revision that is neither a drill's nor carries the break, except those
// allowed (revisions the run named as left behind).
func (f *fake) checkServing(v view, allowed ...string) {
	f.t.Helper()
	for rev, n := range f.servedBy(v, 20) {
		r := v.revisions[rev]
		if slices.Contains(allowed, rev) {
			continue
		}
		if rev == "" || strings.Contains(rev, "-drill-") || r.broken {
			f.t.Errorf("serving plane: %d of 20 answers of %s from %q (a drill's or broken revision)", n, v.name, rev)
		}
	}
}

// same fails unless after equals before (see diff) and the serving plane
// answers from no drill or broken revision.
func (f *fake) same(before view, why string) view {
	f.t.Helper()
	after := f.read(before.name)
	if d := diff(before, after); len(d) > 0 {
		f.t.Errorf("%s: %s is not as it was:\n  %s", why, before.name, strings.Join(d, "\n  "))
	}
	f.checkServing(after)
	return after
}

// brokenRevisions lists the revisions of v, other than a drill's own, that
// carry the break.
func (v view) brokenRevisions() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(v.revisions)) {
		if v.revisions[name].broken && !strings.Contains(name, "-drill-") {
			out = append(out, name)
		}
	}
	return out
}
