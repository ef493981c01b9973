package rollback

import (
	"context"
	"fmt"
	"time"
)

// URLCheck runs command "probe": one URL's health and version with the probe
// policy, no Cloud Run involved (a deploy workflow's smoke check).
type URLCheck struct {
	Probe Prober
	Now   func() time.Time
}

// Run probes url until the answers prove it healthy or broken, or the policy
// gives up, and returns the report: one step, and the Probe section.
func (c *URLCheck) Run(ctx context.Context, url string, exp Expect) *Report {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	start := now()
	res := c.Probe.WaitHealthy(ctx, url, exp)
	rep := &Report{Schema: ReportSchema, Command: "probe"}
	rep.Probe = &ProbeSection{URL: url, HealthURL: res.URL, Healthy: res.OK, Attempts: res.Attempts,
		Errors: res.Errors, Unhealthy: res.Unhealthy, NotConverged: res.NotConverged,
		ElapsedMS: ms(res.Elapsed), Version: res.Version, Revision: res.Revision, Last: res.Detail}
	status, result, errText, hint := StepPass, ResultPass, "", ""
	if !res.OK {
		status, result = StepFail, ResultFail
		errText = fmt.Sprintf("%s is unhealthy after %d attempt(s): %s", url, res.Attempts, res.Detail)
		hint = "the service is not healthy: check its logs and the health endpoint"
	}
	recordStep(rep, nil, StepProbe, status, start, res.Elapsed, res.Detail)
	conclude(rep, result, errText, hint, nil, res.Elapsed)
	return rep
}
