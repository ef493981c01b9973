package battery

import (
	"fmt"
	runapi "google.golang.org/api/run/v2"
	"maps"
	"slices"
	"strings"
	"testing"
)

// atWrite starts a run with start and runs inject just before the run's
// write j (from 1) is applied: before the run starts for j = 1, else while
// write j-1's operation is held pending (then released).
func (f *fake) atWrite(j int, svc string, start func() *proc, inject func()) *proc {
	f.t.Helper()
	if j == 1 {
		inject()
		return start()
	}
	pending := f.holdAt(j - 2)
	p := start()
	pending(svc)
	inject()
	f.release()
	return p
}

// seedTarget is a traffic target of the control endpoint.
type seedTarget struct {
	Revision string `json:"revision,omitempty"`
	Percent  int64  `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	Latest   bool   `json:"latest,omitempty"`
}

func seedTargets(spec ...string) []seedTarget {
	var out []seedTarget
	for _, t := range tt(spec...) {
		out = append(out, seedTarget{Revision: t.Revision, Percent: t.Percent, Tag: t.Tag, Latest: t.Type == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"})
	}
	return out
}

// theirSplit is the split another person sets on each service: only its own
// revisions, different from the split before.
var theirSplit = map[string][]string{
	"api":      {"api-00001-abc=100"},
	"web":      {"web-00001-aaa=100"},
	"checkout": {"checkout-00002-bbb=50", "checkout-00003-ccc=50@canary"},
}

func specOf(traffic []string) []string {
	var out []string
	for _, t := range traffic {
		f := strings.Fields(t)
		typ, rev, pct, tag := f[0], f[1], f[2], f[3]
		if typ == "LATEST" {
			rev = "LATEST"
		}
		s := rev + "=" + pct
		if tag != "-" {
			s += "@" + tag
		}
		out = append(out, s)
	}
	return out
}

const (
	theirAnnotation = "team.example.com/reviewed"
	theirEnv        = "DEPLOYED_BY"
)

func theirImage(svc string) string { return "us-docker.pkg.dev/local-project/app/" + svc + ":9.9.9" }

// concurrentWriter: another writer's change lands just before each write of
// the drill.
func concurrentWriter() family {
	fam := family{section: "Other writers", id: "concurrent", name: "another writer's change just before each write of the drill (traffic, tag, deploy, annotation)",
		over: "api, web, checkout × 4 kinds × writes 1–6", na: "the write is the drill revision's deletion, or there is none",
		found:   "someone who pinned a LATEST-tracking service (web) to its revision during the drill had the pin undone: the restore took the pin, equal to its own restore split, for its own, and cleanup wrote LATEST back over it (writes 2–4); a write refused as stale was taken as applied when the service showed its change. Fixed: a refused call never counts as applied unless an earlier attempt may have landed, and a pin the drill never wrote, made after its last write, is the other writer's (exit 3 with the difference and the command to follow LATEST again).",
		asserts: "their change stands, nothing of the drill's is left; a traffic or tag change is exit 3 with the difference; a deploy that copied the break names the revision and its fix (exit 5), else 0 or 3; no answer from a drill or broken revision unless the run named it"}
	for _, svc := range services {
		for _, kind := range []string{"traffic", "tag", "deploy", "annotation"} {
			for j := 1; j <= maxWrites; j++ {
				fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/%s/write%d", svc, kind, j), func(t *testing.T) {
					sh := drillShape(t, svc)
					if j > sh.updates {
						t.Skip("a delete: no UpdateService to race")
					}
					f := startFake(t)
					before := f.read(svc)
					var updates0 int
					var their []string
					noop := false
					p := f.atWrite(j, svc, func() *proc {
						return f.start(f.machine("a"), nil, drillArgs(svc)...)
					}, func() {
						if kind == "deploy" && j > 1 {
							// While the drill's last write rolls out: a deploy
							// of the template as it is now, by the discovery
							// client (read, change, write with the etag).
							updates0 = f.calls().Calls["UpdateService"]
							f.patchNoWait(svc, func(s *runapi.GoogleCloudRunV2Service) {
								s.Template.Revision = ""
								c := s.Template.Containers[0]
								c.Image = theirImage(svc)
								c.Env = append(c.Env, &runapi.GoogleCloudRunV2EnvVar{Name: theirEnv, Value: "ci"})
							})
							updates0++
							return
						}
						body := map[string]any{"service": svc}
						switch kind {
						case "traffic":
							their = theirSplit[svc]
							body["traffic"] = seedTargets(their...)
							// A split equal to the one there is no change of
							// traffic: nothing tells it from an edit of
							// something else.
							noop = slices.Equal(specOf(f.read(svc).traffic), their)
						case "tag":
							their = append(specOf(f.read(svc).traffic), oldest(before)+"=0@qa")
							body["traffic"] = seedTargets(their...)
						case "deploy":
							body["image"] = theirImage(svc)
							body["env"] = map[string]string{theirEnv: "ci"}
						case "annotation":
							body["annotations"] = map[string]string{theirAnnotation: "yes"}
						}
						updates0 = f.calls().Calls["UpdateService"]
						f.post("/concurrent-write", body)
					})
					p.wait()
					fired := f.calls().Calls["UpdateService"] > updates0
					f.post("/reset-faults", struct{}{})
					if !fired {
						p.expectCode(0)
						f.same(before, "no other writer after all")
						return
					}
					after := f.read(svc)
					out := p.output()
					if o := after.ours(); len(o) > 0 {
						t.Errorf("left of the drill's after exit %d: %v\n%s", p.code, o, out)
					}
					var allowed []string
					switch {
					case kind == "traffic" && noop:
						p.expectCode(0, 3)
					case kind == "traffic":
						p.expectCode(3)
						if got := specOf(after.traffic); !slices.Equal(got, their) {
							t.Errorf("their split %v was not kept: now %v\n%s", their, got, out)
						}
					case kind == "tag":
						p.expectCode(0, 3)
						if !slices.ContainsFunc(after.traffic, func(s string) bool { return strings.HasSuffix(s, " qa") }) {
							t.Errorf("their tag qa is gone: %v\n%s", after.traffic, out)
						}
						want := append(slices.Clone(before.traffic), target("REVISION", oldest(before), 0, "qa"))
						if !slices.Equal(after.traffic, want) && p.code != 3 {
							t.Errorf("traffic %v, not the split before plus their tag (%v), yet exit %d", after.traffic, want, p.code)
						}
					case kind == "deploy":
						p.expectCode(0, 3, 5)
						if !strings.Contains(after.container, theirImage(svc)) || !strings.Contains(after.container, theirEnv+"=ci") {
							t.Errorf("their deploy is not in the template: %s\n%s", after.container, out)
						}
						if !slices.Equal(after.traffic, before.traffic) {
							t.Errorf("traffic %v, was %v (their deploy moved none)", after.traffic, before.traffic)
						}
						for _, b := range after.brokenRevisions() {
							if p.code != 5 || !strings.Contains(out, b) {
								t.Errorf("revision %s carries the break, yet exit %d does not name it:\n%s", b, p.code, out)
							}
							allowed = append(allowed, b)
						}
					case kind == "annotation":
						p.expectCode(0, 3)
						want := maps.Clone(before.annotations)
						want[theirAnnotation] = "yes"
						if !maps.Equal(after.annotations, want) {
							t.Errorf("annotations %v, want %v", after.annotations, want)
						}
						if !slices.Equal(after.traffic, before.traffic) || after.template != before.template {
							t.Errorf("traffic or template changed: %v\n%s", diff(before, after), out)
						}
					}
					f.checkServing(after, allowed...)
				}})
			}
		}
	}
	return fam
}

// oldest is the oldest revision of v by name.
func oldest(v view) string { return slices.Sorted(maps.Keys(v.revisions))[0] }

// lostReply: a write applies but its reply is lost, at each write.
func lostReply() family {
	fam := family{section: "Lost replies", id: "lost-reply", name: "a reply lost after the write applied, at each write (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL)",
		over: "api, web, checkout × writes 1–6 × 3 codes", na: "the drill makes fewer writes",
		found:   "a lost INTERNAL reply on the shift (write 3) aborted the drill (exit 3) although a read showed the shift had landed. Fixed: the shift, like every other write, is settled by a read and the drill goes on.",
		asserts: "settled by a read: exit 0, the service as it was"}
	lostReplyVariants(&fam, nil, "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL")
	return fam
}

// lostReplyVariants adds, for each service, write and code, a drill whose
// write applies but whose reply is lost; the run gets extraEnv.
func lostReplyVariants(fam *family, extraEnv []string, codes ...string) {
	for _, svc := range services {
		for j := 1; j <= maxWrites; j++ {
			for _, code := range codes {
				fam.variants = append(fam.variants, variant{fmt.Sprintf("%s/write%d/%s", svc, j, code), func(t *testing.T) {
					sh := drillShape(t, svc)
					if j > sh.writes {
						t.Skip("the drill makes no such write")
					}
					method := "UpdateService"
					if j > sh.updates {
						method = "DeleteRevision"
					}
					f := startFake(t)
					before := f.read(svc)
					p := f.atWrite(j, svc, func() *proc {
						return f.start(f.machine("a"), extraEnv, drillArgs(svc)...)
					}, func() {
						f.post("/lose-reply", map[string]any{"method": method, "code": code})
					})
					p.wait()
					p.expectCode(0)
					f.same(before, "after the lost reply")
				}})
			}
		}
	}
}
