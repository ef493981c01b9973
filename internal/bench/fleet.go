package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/protobuf/proto"

	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// FleetWorld is n copies of the default world's api: svc-000, svc-001, …,
// each with two revisions (1.0.0, 1.1.0) and 100% pinned to the newer.
func FleetWorld(n int) fakerun.World {
	var w fakerun.World
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		rev := func(suffix, version string) fakerun.SeedRevision {
			return fakerun.SeedRevision{Name: name + suffix, Env: map[string]string{"APP_VERSION": version}}
		}
		w.Services = append(w.Services, fakerun.SeedService{
			Project: Project, Region: Region, Name: name,
			Revisions: []fakerun.SeedRevision{rev("-00001-abc", "1.0.0"), rev("-00002-def", "1.1.0")},
			Traffic:   []fakerun.SeedTarget{{Revision: name + "-00002-def", Percent: 100}},
		})
	}
	return w
}

// FleetOutcome is one fleet drill.
type FleetOutcome struct {
	Services, Parallel, Rate          int // Rate: --write-rate passed (scaled)
	Code                              int
	Wall                              time.Duration
	Passed, Restored, Clean, QuotaErr int
	Writes, MaxPerMinute, Rejected    int
	Bound                             time.Duration // writes ÷ rate: the least time the quota allows
	RestoreMean, RestoreMax           time.Duration // timings_ms.restore of the drills
	ExposureMax, TotalMax             time.Duration
	MaxRSS                            int64
	User, Sys                         time.Duration
	Problems                          []string
}

// Fleet drills n services with the real command, `runrollback test
// --services-file FILE --parallel P --write-rate R`, R being perMinute,
// against one fake with the scaled round trip on every call and, through a
// Proxy, each operation taking its modelled time; quota > 0 makes the proxy
// refuse writes past quota in any minute. The write quota is not scaled: the
// command's window is a real minute. R is chosen so that the drills want to
// write faster than R allows, and the run spans more than one window: then
// the quota is what bounds it.
func (bn *Bench) Fleet(ctx context.Context, n, parallel int, perMinute float64, quota int, flags ProbeFlags) (FleetOutcome, error) {
	m := bn.Model
	rate := int(math.Round(perMinute))
	o := FleetOutcome{Services: n, Parallel: parallel, Rate: rate}
	w, err := NewWorld(m, FleetWorld(n), false)
	if err != nil {
		return o, err
	}
	defer w.Close()
	templates := map[string]*runpb.RevisionTemplate{}
	for _, s := range w.Srv.Services() {
		templates[s.GetName()] = s.GetTemplate()
	}
	proxy, err := StartProxy(w.Srv.Addr, ProxyConfig{Limit: quota, Window: time.Minute, RTT: m.S(m.RTT), DeployOp: m.S(m.DeployOp), OtherOp: m.S(m.OtherOp)})
	if err != nil {
		return o, err
	}
	defer proxy.Close()
	addr := proxy.Addr
	dir := bn.TempDir()
	var list strings.Builder
	for i := range n {
		fmt.Fprintf(&list, "svc-%03d\n", i)
	}
	file := filepath.Join(dir, "services.txt")
	if err := os.WriteFile(file, []byte(list.String()), 0o600); err != nil {
		return o, err
	}
	args := []string{"test", "--emulator-host", addr, "--project", Project, "--region", Region,
		"--services-file", file, "--parallel", fmt.Sprint(parallel), "--write-rate", fmt.Sprint(rate), "--output", "json"}
	args = append(args, flags.Args(m)...)
	writes0 := w.Srv.Writes()
	r, err := bn.CLI.Run(ctx, Env(addr, filepath.Join(dir, "state")), args...)
	times := proxy.Writes()
	if err != nil {
		return o, err
	}
	o.Code, o.Wall, o.MaxRSS, o.User, o.Sys = r.Code, r.Wall, r.MaxRSS, r.User, r.Sys
	o.Writes = w.Srv.Writes() - writes0
	o.MaxPerMinute = MaxInWindow(times, time.Minute)
	o.Bound = time.Duration(float64(o.Writes) / float64(rate) * float64(time.Minute))
	o.Rejected = proxy.Rejected()
	rep, err := Decode[FleetReport](r)
	if err != nil {
		return o, err
	}
	if len(rep.Reports) != n {
		return o, fmt.Errorf("fleet drill: %d reports, want %d: %s", len(rep.Reports), n, r)
	}
	var restores time.Duration
	for _, rr := range rep.Reports {
		d := ms(rr.Timings.Restore)
		restores += d
		o.RestoreMax = max(o.RestoreMax, d)
		o.ExposureMax = max(o.ExposureMax, ms(rr.Exposure.MS))
		o.TotalMax = max(o.TotalMax, ms(rr.Timings.Total))
		if rr.Result == rollback.ResultPass {
			o.Passed++
		}
		if rr.TrafficRestored {
			o.Restored++
		}
		low := strings.ToLower(rr.Error)
		if strings.Contains(low, "quota") || strings.Contains(low, "resource_exhausted") || strings.Contains(low, "resource exhausted") {
			o.QuotaErr++
		}
		if rr.Result != rollback.ResultPass && len(o.Problems) < 5 {
			o.Problems = append(o.Problems, fmt.Sprintf("%s %s: %s", rr.Service.Name, rr.Result, rr.Error))
		}
	}
	o.RestoreMean = restores / time.Duration(n)
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		var left []string
		svc := w.Srv.Service(FullName(name))
		for k := range svc.GetAnnotations() {
			if strings.HasPrefix(k, "runrollback.dev/") {
				left = append(left, "annotation "+k)
			}
		}
		for _, rv := range w.Srv.Revisions(svc.GetName()) {
			if strings.Contains(short(rv.GetName()), "-drill-") {
				left = append(left, "revision "+short(rv.GetName()))
			}
		}
		want := proto.Clone(templates[svc.GetName()]).(*runpb.RevisionTemplate)
		got := proto.Clone(svc.GetTemplate()).(*runpb.RevisionTemplate)
		want.Revision, got.Revision = "", ""
		if !proto.Equal(want, got) {
			left = append(left, "template differs")
		}
		if got, want := w.Traffic(name), name+"-00002-def=100"; got != want {
			left = append(left, fmt.Sprintf("traffic %s, want %s", got, want))
		}
		if len(left) == 0 {
			o.Clean++
		} else if len(o.Problems) < 8 {
			o.Problems = append(o.Problems, name+": "+strings.Join(left, "; "))
		}
	}
	return o, nil
}
