package rollback

import (
	"context"
	"sync"
)

// Fleet drills many services at once: at most Parallel at a time, with one
// WriteLimiter per project and region shared by every drill there, restores
// first, and each restore's write reserved before its drill shifts traffic.
// Each drill is independent: one that fails or hangs never holds up another's
// restore.
//
// A fleet too large for one worker is split with Shard.Select (--shard I/N):
// each part owns whole (project, region) groups, so one Fleet's limiter per
// region has that region's whole budget, and the parts together never make
// more writes in a region than one limiter allows.
type Fleet struct {
	// Drill is the template every service's drill is made from.
	Drill Drill
	// Parallel is how many drills run at once (default 4).
	Parallel int
	// WritesPerMinute sets each region's write limiter: at most that many
	// writes in any minute. 0 means no limit (a fake has no quota).
	WritesPerMinute int
}

// Run drills every service in opts and returns their reports, in order.
func (f *Fleet) Run(ctx context.Context, opts []DrillOptions) []*Report {
	parallel := max(f.Parallel, 1)
	if f.Parallel == 0 {
		parallel = 4
	}
	perMinute := f.WritesPerMinute
	limiters := map[[2]string]*WriteLimiter{}
	for _, o := range opts {
		k := [2]string{o.Service.Project, o.Service.Region}
		if limiters[k] == nil && perMinute > 0 {
			limiters[k] = NewWriteLimiter(perMinute)
		}
	}
	reports := make([]*Report, len(opts))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				reports[i] = notStarted(o, ctx)
				return
			}
			defer func() { <-sem }()
			d := f.Drill
			m := &Metered{CloudRun: f.Drill.Cloud, Limiter: limiters[[2]string{o.Service.Project, o.Service.Region}]}
			d.Cloud = m
			d.Calls = m.Calls
			if obs := f.Drill.Observe; obs != nil && len(opts) > 1 {
				name := o.Service.Name
				d.Observe = func(ev Event) {
					ev.Step = name + ": " + ev.Step
					obs(ev)
				}
			}
			reports[i] = d.Run(ctx, o)
		}()
	}
	wg.Wait()
	return reports
}

// notStarted is the report of a drill the run stopped before it began.
func notStarted(o DrillOptions, ctx context.Context) *Report {
	return &Report{
		Schema: ReportSchema, Command: "test", Result: ResultAborted,
		Service:  ReportService{Project: o.Service.Project, Region: o.Service.Region, Name: o.Service.Name},
		Mode:     &ReportMode{Break: o.Break.Spec, TrafficPercent: o.TrafficPercent, Local: o.Local},
		Error:    "not started: " + context.Cause(ctx).Error(),
		LastGood: []string{}, RevisionsCreated: []string{}, RevisionsDeleted: []string{},
	}
}

// OverallResult sums up several reports: error if any restore is not
// confirmed, else fail if any failed, else aborted if any stopped, else pass.
func OverallResult(reports []*Report) string {
	worst := ResultPass
	rank := map[string]int{ResultPass: 0, ResultAborted: 1, ResultFail: 2, ResultError: 3}
	for _, r := range reports {
		if rank[r.Result] > rank[worst] {
			worst = r.Result
		}
	}
	return worst
}
