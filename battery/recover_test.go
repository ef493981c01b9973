package battery

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	runapi "google.golang.org/api/run/v2"
)

// killAt starts a drill on machine a, paused before step, and kills it
// there (SIGKILL).
func (f *fake) killAt(svc, step string) machine {
	f.t.Helper()
	a := f.machine("a")
	p := f.start(a, []string{"RUNROLLBACK_PAUSE_AT=" + step}, drillArgs(svc)...)
	p.waitPaused(step)
	p.signal(syscall.SIGKILL)
	p.wait()
	return a
}

// drillEntries are the traffic entries of a drill in v: "rev=pct@tag".
func drillEntries(v view) (rev, tag string) {
	for _, t := range v.traffic {
		f := strings.Fields(t)
		if strings.Contains(f[1], "-drill-") {
			rev = f[1]
		}
		if strings.HasPrefix(f[3], "drill-") {
			tag = f[3]
		}
	}
	return rev, tag
}

// recoverAfterPerson: a drill is killed with users on its broken revision,
// then a person changes the service; recover runs from another machine.
func recoverAfterPerson() family {
	fam := family{section: "Recover", id: "recover-person", name: "a drill killed with users on its revision, then a person's change, then recover from another machine",
		found:   "on web (LATEST-tracking), a person who pinned the service to its revision after the kill had the pin replaced by LATEST: recover took the pin for the drill's own restore. Fixed: the drill's restore notes in the journal annotation the generation its write makes, and recover takes a pin on a service past that generation for someone else's (exit 3, with the command that follows LATEST again).",
		over:    "api, web, checkout × their own split; their split keeping the drill's revision; an annotation of theirs",
		asserts: "their split stands (exit 3 with the difference); a split that keeps the drill's revision loses only the drill's share, to the last good revision (exit 3); their annotation stays and the rest is put back (exit 0); nothing of the drill's is left"}
	for _, svc := range services {
		for _, kind := range []string{"split", "split-with-drill", "annotation"} {
			fam.variants = append(fam.variants, variant{svc + "/" + kind, func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				f.killAt(svc, "detect")
				killed := f.read(svc)
				rev, tag := drillEntries(killed)
				var their []string
				switch kind {
				case "split":
					their = theirSplit[svc]
					f.setTraffic(svc, their...)
				case "split-with-drill":
					// They halve the drill's share, keeping its tag.
					their = append(specOf(before.traffic), rev+"=0@"+tag)
					their = halveInto(their, rev)
					f.setTraffic(svc, their...)
				case "annotation":
					f.setAnnotation(svc, theirAnnotation, "yes")
				}
				m := f.machine("b")
				p := f.run(m, nil, recoverArgs(svc)...)
				if p.code == 3 && strings.Contains(p.output(), "--force") {
					p = f.run(m, nil, recoverArgs(svc, "--force")...)
				}
				after := f.read(svc)
				if o := after.ours(); len(o) > 0 {
					t.Errorf("left of the drill's after recover (exit %d): %v\n%s", p.code, o, p.output())
				}
				switch kind {
				case "split":
					p.expectCode(3)
					if got := specOf(after.traffic); !slices.Equal(got, their) {
						t.Errorf("their split %v was not kept: now %v\n%s", their, got, p.output())
					}
				case "split-with-drill":
					p.expectCode(3)
					for _, s := range specOf(after.traffic) {
						rv, _, _ := strings.Cut(s, "=")
						if rv != "LATEST" && !slices.ContainsFunc(before.statuses, func(b string) bool { return strings.Fields(b)[1] == rv }) {
							t.Errorf("traffic %v names %s, which did not serve before", after.traffic, rv)
						}
					}
				case "annotation":
					p.expectCode(0)
					want := maps.Clone(before.annotations)
					want[theirAnnotation] = "yes"
					if !maps.Equal(after.annotations, want) {
						t.Errorf("annotations %v, want %v", after.annotations, want)
					}
					if d := diff(before, after); len(d) != 1 {
						t.Errorf("more than their annotation differs: %v", d)
					}
				}
				f.checkServing(after)
			}})
		}
	}
	return fam
}

// halveInto moves half of the share of the entry with the most traffic to
// the entry of rev.
func halveInto(spec []string, rev string) []string {
	out := slices.Clone(spec)
	best, bestPct := -1, 0
	for i, s := range out {
		_, rest, _ := strings.Cut(s, "=")
		pct, _, _ := strings.Cut(rest, "@")
		var n int
		fmt.Sscan(pct, &n)
		if n > bestPct {
			best, bestPct = i, n
		}
	}
	half := bestPct / 2
	name, rest, _ := strings.Cut(out[best], "=")
	_, tag, hasTag := strings.Cut(rest, "@")
	out[best] = fmt.Sprintf("%s=%d", name, bestPct-half)
	if hasTag {
		out[best] += "@" + tag
	}
	for i, s := range out {
		if strings.HasPrefix(s, rev+"=") {
			_, tag, _ := strings.Cut(s, "@")
			out[i] = fmt.Sprintf("%s=%d@%s", rev, half, tag)
		}
	}
	return out
}

// corruptJournals: after a kill with users on the broken revision, the local
// journal, the service's journal or lease annotation, or both journals are
// truncated or garbled; recover runs where the local journal is (or from
// another machine when only the service's copies are damaged).
func corruptJournals() family {
	fam := family{section: "Recover", id: "corrupt-journal", name: "a killed drill's journals truncated or garbled, then recover",
		found:   "on web, with the service's journal garbled and recover on another machine, recover worked the drill out from the service's state, put users back pinned and passed (exit 0), the service no longer following LATEST. Fixed: when the revision users go back to was the newest Ready one when the drill began, recover says the service may have followed LATEST (left_behind, exit 5) and gives the command for it.",
		over:    "api, web, checkout × local journal truncated; service journal garbled (another machine); lease garbled (another machine); both journals",
		asserts: "the other copy, then the service's own state, is used: exit 0 and the service as it was; where that cannot be known, exit 4 with the commands that finish the job, never \"nothing was changed\" while users are on a drill revision"}
	for _, svc := range services {
		for _, kind := range []string{"local-truncated", "service-journal", "lease", "both"} {
			fam.variants = append(fam.variants, variant{svc + "/" + kind, func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				a := f.killAt(svc, "detect")
				local := filepath.Join(a.dir, "state", fmt.Sprintf("journal-%s-%s-%s.json", project, region, svc))
				truncate := func() {
					b, err := os.ReadFile(local)
					if err != nil {
						t.Fatalf("the killed drill left no local journal: %v", err)
					}
					if err := os.WriteFile(local, b[:len(b)/2], 0o600); err != nil {
						t.Fatal(err)
					}
				}
				garble := func(key string) {
					f.patch(svc, func(s *runapi.GoogleCloudRunV2Service) {
						s.Annotations[key] = s.Annotations[key][:len(s.Annotations[key])/2]
					})
				}
				m := a
				switch kind {
				case "local-truncated":
					truncate()
				case "service-journal":
					garble("runrollback.dev/journal")
					m = f.machine("b")
				case "lease":
					garble("runrollback.dev/lease")
					m = f.machine("b")
				case "both":
					truncate()
					garble("runrollback.dev/journal")
				}
				p := f.run(m, nil, recoverArgs(svc)...)
				if p.code == 3 && strings.Contains(p.output(), "--force") {
					p = f.run(m, nil, recoverArgs(svc, "--force")...)
				}
				p.expectCode(0, 4, 5)
				if p.code == 5 {
					// Users are back; whether the service followed LATEST
					// could not be known: the run says so and how to fix it.
					if !strings.Contains(p.output(), "--to-latest") {
						t.Errorf("exit 5 without the command that follows LATEST again:\n%s", p.output())
					}
					if slices.ContainsFunc(before.traffic, func(s string) bool { return strings.HasPrefix(s, "LATEST ") }) {
						f.setTraffic(svc, specOf(before.traffic)...)
					}
				}
				if p.code == 4 {
					out := p.output()
					if strings.Contains(out, "nothing was changed") {
						t.Errorf("exit 4 says nothing was changed while users are on the drill's revision:\n%s", out)
					}
					if !strings.Contains(out, "runrollback rollback") && !strings.Contains(out, "gcloud run") {
						t.Errorf("exit 4 without the commands that finish the job:\n%s", out)
					}
					return
				}
				f.same(before, "after recover")
			}})
		}
	}
	return fam
}

// guardRace: a real bad deploy, then guard; another writer's change lands
// just before each of the guard's writes.
func guardRace() family {
	fam := family{section: "Guard", id: "guard", name: "guard after a bad deploy, alone and with another writer racing each of its writes",
		over:    "api, web, checkout × alone; their split before write 1, 2; their deploy before write 1",
		asserts: "alone: rolled back to the snapshot (exit 1), no answer from the bad revision, nothing of the guard's left; raced: their change stands (exit 3 with the difference), or the rollback went in first and theirs came after it (exit 1 or 3); never their change overwritten"}
	for _, svc := range services {
		for _, race := range []string{"alone", "split/write1", "split/write2", "deploy/write1"} {
			fam.variants = append(fam.variants, variant{svc + "/" + race, func(t *testing.T) {
				f := startFake(t)
				before := f.read(svc)
				a := f.machine("a")
				snap := filepath.Join(a.dir, "snapshot.json")
				f.run(a, nil, "snapshot", "--service", svc, "--out", snap).expectCode(0)
				f.badDeploy(svc)
				kind, at, _ := strings.Cut(race, "/")
				var j int
				fmt.Sscanf(at, "write%d", &j)
				start := func() *proc {
					return f.start(a, nil, "guard", "--service", svc, "--restore-from", snap, "--retry-delay", "20ms")
				}
				var p *proc
				var updates0 int
				switch kind {
				case "alone":
					p = start()
				case "split":
					p = f.atWrite(j, svc, start, func() {
						updates0 = f.calls().Calls["UpdateService"]
						f.post("/concurrent-write", map[string]any{"service": svc, "traffic": seedTargets(theirSplit[svc]...)})
					})
				case "deploy":
					p = f.atWrite(j, svc, start, func() {
						updates0 = f.calls().Calls["UpdateService"]
						f.post("/concurrent-write", map[string]any{"service": svc, "image": theirImage(svc), "env": map[string]string{theirEnv: "ci"}})
					})
				}
				p.wait()
				fired := kind != "alone" && f.calls().Calls["UpdateService"] > updates0
				f.post("/reset-faults", struct{}{})
				after := f.read(svc)
				for _, o := range after.ours() {
					if !strings.HasPrefix(o, "the break in the template") { // the bad deploy's, not the guard's
						t.Errorf("left of the guard's (exit %d): %s\n%s", p.code, o, p.output())
					}
				}
				switch {
				case kind == "alone" || !fired:
					p.expectCode(1)
					if got, want := specOf(after.traffic), snapshotSplit(before); !slices.Equal(got, want) {
						t.Errorf("traffic %v after the rollback, want the snapshot's %v\n%s", got, want, p.output())
					}
					f.checkServing(after)
				case kind == "split":
					p.expectCode(1, 3)
					if got := specOf(after.traffic); !slices.Equal(got, theirSplit[svc]) {
						t.Errorf("their split %v was overwritten: now %v (exit %d)\n%s", theirSplit[svc], got, p.code, p.output())
					}
					f.checkServing(after)
				case kind == "deploy":
					p.expectCode(1, 3)
					if !strings.Contains(after.container, theirImage(svc)) {
						t.Errorf("their deploy is gone from the template: %s", after.container)
					}
				}
			}})
		}
	}
	return fam
}

// badDeploy is a deploy whose revision answers unhealthy (the fake's app
// honours RUNROLLBACK_BREAK=health), all traffic to it.
func (f *fake) badDeploy(svc string) {
	f.patch(svc, func(s *runapi.GoogleCloudRunV2Service) {
		s.Template.Revision = ""
		c := s.Template.Containers[0]
		c.Image = "us-docker.pkg.dev/local-project/app/" + svc + ":6.6.6"
		c.Env = append(c.Env, &runapi.GoogleCloudRunV2EnvVar{Name: breakEnv, Value: "health"})
		s.Traffic = tt("LATEST=100")
	})
}

// snapshotSplit is what a guard restores from a snapshot of v: its traffic,
// with LATEST pinned to the revision it resolved to then.
func snapshotSplit(v view) []string {
	var out []string
	for i, s := range specOf(v.traffic) {
		if strings.HasPrefix(s, "LATEST=") {
			rev := strings.Fields(v.statuses[i])[1]
			s = rev + strings.TrimPrefix(s, "LATEST")
		}
		out = append(out, s)
	}
	return out
}
