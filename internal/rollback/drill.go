package rollback

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Drill runs the rollback drill (docs/design.md) against any CloudRun and Prober:
// the same code drives the fake and real Cloud Run.
type Drill struct {
	Cloud   CloudRun
	Probe   Prober
	Journal FileJournal
	// Observe receives progress events; nil drops them.
	Observe Observer
	// Now defaults to time.Now.
	Now func() time.Time
	// NewID makes the drill's id (used in the tag and the revision name).
	NewID func() string
	// Calls reports the Admin API calls made so far (reads, writes).
	Calls func() (reads, writes int64)
	// BeforeStep, when set, runs before each step; an error stops the drill there
	// (tests pause at a step this way, then signal the process).
	BeforeStep func(ctx context.Context, step string) error
}

// DrillOptions are the drill's inputs, validated by the caller.
type DrillOptions struct {
	Service        ServiceRef
	Break          Break
	TrafficPercent int32
	KeepRevision   bool
	// Deadline bounds the whole drill; restore always runs.
	Deadline time.Duration
	// URL overrides the service URL for probes of the service.
	URL           string
	ExpectVersion string
	Owner         string
	Local         bool
	// LeaseTTL is how long the lease holds without renewal. Default 15m.
	LeaseTTL time.Duration
	// RestoreTimeout bounds restore, verify and cleanup once the drill has
	// changed the service. Default DefaultRestoreTimeout.
	RestoreTimeout time.Duration
}

// drillRun is the state of one drill.
type drillRun struct {
	*runner
	d        *Drill
	o        DrillOptions
	brk      breaker
	id       string   // the run's id, in its tag, revision, lease and journal
	svc      *Service // as last read or written
	own      string   // the service's etag after the drill's own last write
	snap     Snapshot
	broken   string // revision name
	tag      string
	baseURL  string
	tagURL   string
	ann      map[string]string // the service's annotations with our lease and journal
	leased   bool              // the service may carry our lease: restore and clean up
	touched  bool              // a write that could change traffic or template was issued
	conflict string
	shiftAt  time.Time
	ticket   *Ticket // the restore's write, reserved before the shift (limiter.go)
	restored bool
	hint     string
	// skipWhy, once set, is why the steps after deploy do not run.
	skipWhy string
	// left lists what of the drill's stays on the service; fixes say how to
	// remove it.
	left, fixes []string
	// freshRevision and freshVersion are what serves a LATEST-tracking
	// service after cleanup, verified.
	freshRevision, freshVersion string
}

func (d *Drill) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// NewDrillID returns 6 random lowercase letters and digits.
func NewDrillID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Run runs the drill and returns its report. It never returns with the
// service changed unless the report says what is left (result "error").
func (d *Drill) Run(ctx context.Context, o DrillOptions) *Report {
	start := d.now()
	o.TrafficPercent = min(max(o.TrafficPercent, 0), 100)
	o.LeaseTTL = cmp.Or(o.LeaseTTL, 15*time.Minute)
	o.RestoreTimeout = cmp.Or(o.RestoreTimeout, DefaultRestoreTimeout)
	id := NewDrillID()
	if d.NewID != nil {
		id = d.NewID()
	}
	rep := &Report{
		Schema:  ReportSchema,
		Command: "test",
		Service: ReportService{Project: o.Service.Project, Region: o.Service.Region, Name: o.Service.Name},
		Mode:    &ReportMode{Break: o.Break.Spec, TrafficPercent: o.TrafficPercent, Local: o.Local},
	}
	tag, broken, id, err := DrillNames(o.Service.Name, id)
	r := &drillRun{
		runner: newRunner(rep, d.Observe, d.Now, d.BeforeStep, d.Journal),
		d:      d,
		o:      o,
		id:     id,
		broken: broken,
		tag:    tag,
		brk:    breakerFor(o.Break),
	}
	if err != nil {
		// No tag fits the service's name: nothing can be drilled, nothing changed.
		r.record(StepPreflight, StepFail, start, 0, err.Error())
		r.finish(start, ResultAborted, fmt.Errorf("%w: %w", ErrAborted, err))
		return r.rep
	}
	if o.Break.Mode == BreakSimulate {
		r.broken = ""
	}
	runCtx := ctx
	if o.Deadline > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, o.Deadline, fmt.Errorf("the drill's --deadline of %s passed", o.Deadline))
		defer cancel()
	}

	err = r.step(runCtx, StepPreflight, r.preflight)
	if err == nil {
		err = r.step(runCtx, StepLease, r.lease)
	}
	if err != nil && !r.leased {
		// Nothing changed.
		r.after(ctx)
		r.finish(start, ResultAborted, err)
		return r.rep
	}
	if err == nil {
		err = r.forward(runCtx)
	}

	// Whatever happened, put traffic back on a context the caller's cancellation
	// (a signal, the deadline) does not reach.
	rctx, cancel := urgentContext(ctx, o.RestoreTimeout)
	defer cancel()
	rctx = WithTicket(rctx, r.ticket)
	defer r.ticket.Release()
	if err != nil {
		r.skipUntil(DrillSteps, StepRestore)
	}
	if err != nil && !errors.Is(err, errDrillFailed) {
		r.emit(LevelWarn, StepRestore, "stopping: "+oneLine(errorText(runCtx, err))+"; restoring the prior split", 0)
	}
	restoreErr := r.restore(rctx)
	var verifyErr error
	if restoreErr == nil {
		verifyErr = r.verify(rctx)
	} else {
		r.skip(StepVerify, "restore not confirmed")
	}
	cleanupErr := r.cleanup(rctx)
	r.after(rctx)

	switch {
	case restoreErr != nil:
		r.finish(start, ResultError, restoreErr)
	case cleanupErr != nil:
		r.finish(start, ResultError, cleanupErr)
	case r.conflict != "":
		r.hint = "another writer's traffic change was kept; compare it with the snapshot and decide by hand (runrollback status; runrollback rollback --to REVISION)"
		r.finish(start, ResultAborted, errors.New(r.conflict))
	case err != nil && errors.Is(err, errDrillFailed):
		r.finish(start, ResultFail, err)
	case verifyErr != nil:
		r.finish(start, ResultFail, verifyErr)
	case err != nil:
		r.finish(start, ResultAborted, errors.New(errorText(runCtx, err)))
	default:
		r.finish(start, ResultPass, nil)
	}
	return r.rep
}

func (r *drillRun) preflight(ctx context.Context) (string, error) {
	svc, err := r.d.Cloud.GetService(ctx, r.o.Service)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			r.hint = fmt.Sprintf("check --project %s --region %s --service %s: no such service there", r.o.Service.Project, r.o.Service.Region, r.o.Service.Name)
		}
		return "", err
	}
	r.svc = svc
	r.rep.Service.URI = svc.URI
	r.baseURL = cmp.Or(r.o.URL, svc.URI)
	r.snap = TakeSnapshot(svc, r.now())
	r.rep.Before = &ReportState{Traffic: svc.Traffic, Etag: svc.Etag, Generation: svc.Generation}
	r.rep.LastGood = r.snap.Serving()
	lease, journal, err := LeaseAndJournal(svc)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrAborted, err)
	}
	switch {
	case svc.Reconciling:
		r.hint = "wait for the rollout in progress to finish, then run the drill again"
		return "", fmt.Errorf("%w: service %q has not converged: a rollout is in progress (generation %d, observed %d)", ErrAborted, svc.Ref.Name, svc.Generation, svc.ObservedGeneration)
	case !svc.Ready:
		r.hint = "wait until the service is Ready (gcloud run services describe), then run the drill again"
		return "", fmt.Errorf("%w: service %q is not Ready: %s", ErrAborted, svc.Ref.Name, cmp.Or(svc.Message, "no message"))
	case !svc.Converged():
		r.hint = "wait for the rollout in progress to finish (desired and actual traffic must match), then run the drill again"
		return "", fmt.Errorf("%w: service %q has not converged: desired traffic %s, actual %s", ErrAborted, svc.Ref.Name, Resolve(svc.Traffic, svc.LatestReadyRevision), svc.ActualSplit())
	case lease != nil && !lease.Expired(r.now()):
		r.hint = fmt.Sprintf("another run (%s by %s, since %s) holds the service until %s; wait for it, or run 'runrollback recover' if it died",
			lease.Command, lease.Owner, lease.Started.Format(time.RFC3339), lease.Expires.Format(time.RFC3339))
		return "", fmt.Errorf("%w: a drill lease is held on %q", ErrAborted, svc.Ref.Name)
	case journal != nil && lease == nil:
		r.hint = "an earlier run was interrupted: run 'runrollback recover' first"
		return "", fmt.Errorf("%w: an interrupted run's journal is on %q", ErrAborted, svc.Ref.Name)
	case lease != nil && shows(svc, lease.ID):
		r.hint = "an earlier run's lease expired with its changes still on the service: run 'runrollback recover' first"
		return "", fmt.Errorf("%w: run %s (%s by %s, expired %s) left its revision or tag on %q", ErrAborted, lease.ID, lease.Command, lease.Owner, lease.Expires.Format(time.RFC3339), svc.Ref.Name)
	case lease != nil:
		r.warn(StepPreflight, fmt.Sprintf("taking over an expired lease of %s (run %s, expired %s)", lease.Owner, lease.ID, lease.Expires.Format(time.RFC3339)))
	}
	if r.baseURL == "" {
		return "", fmt.Errorf("%w: service %q reports no URL to probe; pass --url", ErrAborted, svc.Ref.Name)
	}
	res := r.d.Probe.WaitHealthy(ctx, r.baseURL, Expect{Version: r.o.ExpectVersion, Revisions: r.snap.Serving()})
	r.rep.Before.Healthy = res.OK
	r.rep.Before.Version, r.rep.Before.Revision = res.Version, res.Revision
	if !res.OK {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		r.hint = "the drill proves rollback to a healthy revision; fix the service's health first (runrollback probe --url " + r.baseURL + ")"
		return "", fmt.Errorf("%w: service %q is not healthy now: %s", ErrAborted, svc.Ref.Name, res.Detail)
	}
	r.snap.Version, r.snap.Revision = res.Version, res.Revision
	return fmt.Sprintf("%s: ready, traffic %s, %s", svc.Ref.Name, svc.Traffic, DescribeHealthy(res)), nil
}

// shows reports whether the service carries a drill's own entries: its tag
// or revision in the traffic, or its revision in the template.
func shows(svc *Service, id string) bool {
	tag, broken, _, _ := DrillNames(svc.Ref.Name, id)
	return svc.Template.Revision == broken || slices.ContainsFunc(svc.Traffic, func(t Target) bool { return t.Revision == broken || t.Tag == tag })
}

func (r *drillRun) lease(ctx context.Context) (string, error) {
	now := r.now()
	j := Journal{
		Schema: JournalSchema, ID: r.id, Command: "test", Owner: r.o.Owner, Started: now.UTC(),
		Step: StepLease, Snapshot: r.snap, BrokenRevision: r.broken, Tag: r.tag, KeepRevision: r.o.KeepRevision,
		TemplateChanged: r.broken != "", PID: os.Getpid(),
	}
	if r.broken != "" {
		j.Mark = markOf(r.o.Break, r.snap.Template)
	}
	j.Plan = append(j.Plan, r.brk.deploySplit(r))
	if r.o.TrafficPercent > 0 {
		j.Plan = append(j.Plan, r.brk.shiftSplit(r, r.o.TrafficPercent))
	}
	l := Lease{ID: j.ID, Owner: r.o.Owner, Command: "test", Started: now.UTC(), Expires: now.Add(r.o.LeaseTTL).UTC()}
	ann, err := WithRunAnnotations(r.svc.Annotations, l, j)
	if err != nil {
		return "", err
	}
	// The journal is saved locally now; the lease and journal go on the
	// service in the first write, the deploy's, which carries the etag of the
	// read that found no lease held (docs/design.md, "The write budget").
	if err := r.journal(j); err != nil {
		return "", err
	}
	r.ann = ann
	return fmt.Sprintf("journal saved; lease %s (until %s) goes on the service with the deploy", j.ID, l.Expires.Format(time.RFC3339)), nil
}

// leaseWith sends the drill's first write, which carries the lease and
// journal, and settles its outcome: after it the service may carry the lease,
// unless a read proves the write did not apply (then the local journal goes).
func (r *drillRun) leaseWith(ctx context.Context, write func(etag string, ann map[string]string) (*Service, error)) (*Service, error) {
	r.leased = true
	before := r.svc
	svc, err := write(before.Etag, r.ann)
	if err == nil {
		r.own = svc.Etag
		return svc, nil
	}
	out, cur := settle(ctx, r.d.Cloud, r.o.Service, before, svc, err, func(s *Service) bool {
		l, _ := leaseOf(s)
		return l != nil && l.ID == r.id
	})
	if cur != nil {
		r.svc = cur
	}
	switch out {
	case Applied:
		if cur != nil && !errors.Is(err, ErrNotReady) && !errors.Is(err, ErrPending) {
			r.warn(StepDeploy, fmt.Sprintf("the deploy reported %v, but the service carries it", err))
			r.own = cur.Etag
			return cur, nil
		}
	case NotApplied:
		if errors.Is(err, ErrConflict) {
			r.hint = "someone changed the service while the drill started; run the drill again"
		}
		if errors.Is(err, ErrInvalid) && JournalAnnotationSize(r.j) > 0 {
			r.hint = "if Cloud Run refused the annotations: the service's own annotations leave no room for the drill's lease and journal (256 KiB in all)"
		}
		// A read proves nothing of ours is on the service: forget the local journal.
		if derr := r.forget(r.o.Service); derr == nil {
			r.leased = false
		}
	}
	return nil, err
}

// forward runs deploy, detect-tag, shift and detect; the break strategy decides
// what each does.
func (r *drillRun) forward(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{StepDeploy, r.deploy},
		{StepTemplate, r.untemplate},
		{StepDetectTag, r.detectTag},
		{StepShift, r.shift},
		{StepDetect, r.detect},
	}
	for _, s := range steps {
		var why string
		switch {
		case s.name == StepTemplate && r.brk.templateSplit(r) == nil:
			why = "nothing deployed: the template never changed"
		case s.name == StepTemplate:
		case r.skipWhy != "":
			why = r.skipWhy
		case r.o.TrafficPercent == 0 && (s.name == StepShift || s.name == StepDetect):
			why = "--traffic-percent 0"
		}
		if why != "" {
			r.skip(s.name, why)
			continue
		}
		sctx := ctx
		if Protective(s.name) {
			// Taking the break out of the template is part of putting the
			// service back: a signal does not stop it half-way.
			var cancel context.CancelFunc
			sctx, cancel = urgentContext(ctx, r.o.RestoreTimeout)
			defer cancel()
		}
		if err := r.step(sctx, s.name, s.fn); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (r *drillRun) deploy(ctx context.Context) (string, error) { return r.brk.deploy(ctx, r) }

func (r *drillRun) detectTag(ctx context.Context) (string, error) {
	if r.tagURL == "" {
		return "", fmt.Errorf("no URL reported for tag %s: Cloud Run did not give the tag a URI", r.tag)
	}
	return r.brk.detectTag(ctx, r)
}

func (r *drillRun) shift(ctx context.Context) (string, error) {
	if r.ticket == nil && r.brk.exposes() {
		// Reserve the restore's write before users are shifted: their
		// exposure never waits for write quota.
		t, err := ReserveWrite(ctx, r.d.Cloud)
		if err != nil {
			return "", err
		}
		r.ticket = t
	}
	pct := r.o.TrafficPercent
	split := r.brk.shiftSplit(r, pct)
	if err := r.intend(split); err != nil {
		return "", err
	}
	before := r.svc
	svc, err := r.d.Cloud.UpdateTraffic(ctx, r.o.Service, before.Etag, split)
	if err != nil {
		out, cur := settle(ctx, r.d.Cloud, r.o.Service, before, svc, err, func(s *Service) bool { return s.Traffic.Equal(split) })
		if cur != nil {
			r.svc = cur
		}
		if out == Applied && !errors.Is(err, ErrNotReady) && !errors.Is(err, ErrPending) {
			// A lost reply, or a poll that failed: a read shows the shift
			// landed, so the drill goes on.
			r.warn(StepShift, fmt.Sprintf("the shift reported %v, but the service carries it", err))
			svc, err = cur, nil
		} else {
			if out != NotApplied && r.brk.exposes() {
				// It may have landed: count exposure from now, to be safe.
				r.shiftAt = r.now()
			}
			return "", err
		}
	}
	r.svc = svc
	r.own = svc.Etag
	if !r.brk.exposes() {
		return fmt.Sprintf("simulate: %d%% moved to the drill tag of the serving revision (no user impact): %s", pct, split), nil
	}
	// Users reach the broken revision from here: exposure and time to detect
	// count from the moment the shift has landed.
	r.shiftAt = r.now()
	return fmt.Sprintf("%d%% of traffic sent to %s: %s", pct, r.broken, split), nil
}

func (r *drillRun) detect(ctx context.Context) (string, error) { return r.brk.detect(ctx, r) }

// intend records, in the local journal, the traffic the drill is about to write,
// before it writes it; a restore that finds exactly that knows nobody else wrote.
func (r *drillRun) intend(split Split) error {
	r.touched = true
	r.j.Prior = r.j.Expect
	if r.j.Prior == nil {
		r.j.Prior = r.snap.Traffic
	}
	r.j.Expect = split
	return r.save()
}

// expectVersion is the version a healthy answer must report: --expect-version,
// else what the only serving revision answered before the drill.
func (r *drillRun) expectVersion() string {
	if r.o.ExpectVersion != "" {
		return r.o.ExpectVersion
	}
	if len(r.snap.Serving()) == 1 {
		return r.snap.Version
	}
	return ""
}

// servingRevision is the revision with the largest share before the drill.
func (r *drillRun) servingRevision() string { return servingRevision(r.snap) }

// shiftWithin moves pct of the serving revision's share to a drill-tagged entry of
// the same revision: the writes of a real shift with no change for users.
func shiftWithin(pinned Split, serving, tag string, pct int32) Split {
	out := slices.Clone(pinned)
	moved := int32(0)
	for i := range out {
		if out[i].Revision == serving && out[i].Percent > 0 && moved == 0 {
			moved = min(pct, out[i].Percent)
			out[i].Percent -= moved
		}
	}
	return append(out, Target{Revision: serving, Percent: moved, Tag: tag})
}

func describeBreak(b Break) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(b.Env)) {
		parts = append(parts, k+"="+b.Env[k])
	}
	if b.Image != "" {
		parts = append(parts, "image "+b.Image)
	}
	return strings.Join(parts, ", ")
}

func tagURI(s *Service, tag string) string {
	for _, st := range s.TrafficStatuses {
		if st.Tag == tag {
			return st.URI
		}
	}
	return ""
}

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// converger is the shared restore and cleanup logic, on the drill's journal and
// its latest view of the service.
func (r *drillRun) converger() *converger {
	return &converger{cloud: r.d.Cloud, ref: r.o.Service, j: &r.j, svc: r.svc, own: r.own, rep: r.rep, fold: true,
		warn: func(msg string) { r.warn(StepCleanup, msg) }}
}

// restore puts the snapshot's traffic back, pinned: one traffic-only write, unless
// another writer changed the traffic meanwhile (then only the drill's entries
// are taken out, and the drill ends aborted with the diff).
func (r *drillRun) restore(ctx context.Context) error {
	if !r.leased {
		r.skip(StepRestore, "nothing was changed")
		return nil
	}
	return r.step(ctx, StepRestore, func(ctx context.Context) (string, error) {
		c := r.converger()
		start := r.now()
		detail, err := c.restoreTraffic(ctx)
		done := r.now()
		r.svc, r.own = c.svc, c.own
		if err != nil {
			r.hint = r.recoverHint()
			return "", fmt.Errorf("%w: %w", ErrNotRestored, err)
		}
		r.restored = true
		r.conflict = c.conflict
		if detail == "" {
			return "the traffic is as before the drill: nothing to write", nil
		}
		r.rep.Timings.Restore = ms(done.Sub(start))
		if !r.shiftAt.IsZero() {
			r.rep.Exposure = Exposure{Percent: r.o.TrafficPercent, MS: ms(done.Sub(r.shiftAt))}
		}
		if r.conflict != "" {
			r.warn(StepRestore, r.conflict)
		}
		return fmt.Sprintf("%s (in %s)", detail, done.Sub(start).Round(time.Millisecond)), nil
	})
}

func (r *drillRun) recoverHint() string {
	return RecoverHint(r.o.Service, r.d.Journal, r.j.Operation)
}

// RecoverHint is what to run when a run could not confirm its restore.
func RecoverHint(ref ServiceRef, j FileJournal, operation string) string {
	hint := fmt.Sprintf("run: runrollback recover --project %s --region %s --service %s (journal: %s)",
		ref.Project, ref.Region, ref.Name, j.Path(ref))
	if operation != "" {
		hint += "; operation in flight: " + operation
	}
	return hint
}

func (r *drillRun) verify(ctx context.Context) error {
	if !r.touched || !r.leased {
		r.skip(StepVerify, "nothing was changed")
		return nil
	}
	return r.step(ctx, StepVerify, func(ctx context.Context) (string, error) {
		start := r.now()
		defer func() { r.rep.Timings.Verify = ms(r.now().Sub(start)) }()
		c := check{url: r.baseURL, want: r.snap.Pinned(), version: r.expectVersion(), serving: r.snap.Serving()}
		if r.conflict != "" {
			// Another writer's split stands: check it serves, healthy.
			c = check{url: r.baseURL, version: r.o.ExpectVersion}
		}
		cur, res, err := verifyServing(ctx, r.d.Cloud, r.d.Probe, r.o.Service, c)
		if cur != nil {
			r.svc = cur
		}
		switch {
		case errors.Is(err, ErrConflict):
			// Someone moved traffic after our restore: theirs stands.
			r.conflict = err.Error()
			return "", err
		case errors.Is(err, errUnhealthy) && r.conflict != "":
			return "", fmt.Errorf("the split another writer set does not answer healthy: %s", res.Detail)
		case errors.Is(err, errUnhealthy):
			r.hint = "traffic is back on the revisions that served before the drill, but they do not answer healthy: check them (runrollback status --probe)"
			return "", fmt.Errorf("the service did not answer healthy from a last good revision after the restore: %s", res.Detail)
		case err != nil:
			return "", err
		}
		return fmt.Sprintf("%s, %d probe(s); actual split %s", DescribeHealthy(res), res.Attempts, cur.ActualSplit()), nil
	})
}

// cleanup puts the template back, writes the traffic list verbatim, deletes the
// broken revision and releases the lease.
func (r *drillRun) cleanup(ctx context.Context) error {
	if !r.leased {
		r.skip(StepCleanup, "nothing to clean up")
		return nil
	}
	return r.step(ctx, StepCleanup, func(ctx context.Context) (string, error) {
		if !r.restored {
			return "", fmt.Errorf("%w: the split was not restored, so the journal stays for 'runrollback recover'", ErrNotRestored)
		}
		c := r.converger()
		c.conflict = r.conflict
		detail, err := c.cleanup(ctx, func() error { return r.forget(r.o.Service) })
		r.svc, r.own = c.svc, c.own
		r.left, r.fixes = append(r.left, c.left...), append(r.fixes, c.fixes...)
		if r.conflict == "" && c.conflict != "" {
			r.conflict = c.conflict
			r.warn(StepCleanup, c.conflict)
		}
		if err != nil {
			r.hint = r.recoverHint()
			return "", err
		}
		r.leased = false
		if d := r.verifyServing(ctx, c); d != "" {
			detail += "; " + d
		}
		return detail, nil
	})
}

// verifyServing checks, after cleanup, whatever serves users now. On a
// LATEST-tracking service that is the fresh revision Cloud Run built from the
// restored template, which verify never saw: it must answer healthy with the
// version the service had before the drill. When it does not (the template's
// image tag now resolves to another image, say), users are put back on the
// revision that served before, pinned, and the report says so.
func (r *drillRun) verifyServing(ctx context.Context, c *converger) string {
	if !r.snap.hasLatest() || r.conflict != "" || !c.svc.Traffic.Equal(r.snap.Traffic) {
		return ""
	}
	fresh := Resolve(r.snap.Traffic, c.svc.LatestReadyRevision)
	if SameSplit(fresh, r.snap.Pinned()) {
		return "" // LATEST still resolves to the revision verify saw
	}
	version := r.expectVersion()
	cur, res, err := verifyServing(ctx, r.d.Cloud, r.d.Probe, r.o.Service, check{url: r.baseURL, want: r.snap.Traffic, version: version})
	if cur != nil {
		r.svc, c.svc = cur, cur
	}
	switch {
	case err == nil:
		r.freshRevision, r.freshVersion = res.Revision, res.Version
		return fmt.Sprintf("LATEST now serves %s, built from the restored template: healthy %s", res.Revision, res.Version)
	case errors.Is(err, ErrConflict):
		r.conflict = err.Error()
		return ""
	}
	latest := c.svc.LatestReadyRevision
	why := fmt.Sprintf("%s, built from the restored template, did not answer healthy with version %s: %s", latest, cmpOr(version, "(any)"), res.Detail)
	// The fresh revision and the one that served before were built from the
	// same template. If its image is a tag, Cloud Run resolved the tag anew
	// for the fresh revision: a tag that moved since explains the difference.
	// (The v2 Revision shows no digest to compare, so the answer tells.)
	tag := r.snap.Template.Image
	if strings.Contains(tag, "@") || c.svc.Template.Hash != r.snap.Template.Hash {
		tag = ""
	}
	moved := tag != "" && res.Version != "" && r.snap.Version != "" && res.Version != r.snap.Version
	switch {
	case moved:
		why += fmt.Sprintf("; it answers version %s where %s answered %s, from the same template: its image tag %s now resolves to something else than when %s was built (a tag that moved)",
			res.Version, r.snap.Revision, r.snap.Version, tag, r.snap.Revision)
	case tag != "":
		why += fmt.Sprintf("; both were built from the same template, so its image tag %s may resolve to something else than when %s was built", tag, r.snap.Revision)
	}
	pinned := r.snap.Pinned()
	_, perr := c.restore(ctx, func(s *Service) plan {
		switch {
		case s.Traffic.Equal(pinned):
			return plan{done: true}
		case s.Traffic.Equal(r.snap.Traffic):
			return plan{want: pinned}
		}
		return plan{stop: fmt.Errorf("%w: the traffic of %q changed: now %s", ErrConflict, r.o.Service.Name, s.Traffic)}
	})
	r.svc = c.svc
	if perr != nil {
		r.left = append(r.left, fmt.Sprintf("users on LATEST, which serves %s: %s (and pinning them back failed: %v)", latest, why, perr))
		r.fixes = append(r.fixes, fmt.Sprintf("send users to %s (runrollback rollback --service %s --to %s)", r.snap.Revision, r.o.Service.Name, r.snap.Revision))
		return ""
	}
	r.left = append(r.left, fmt.Sprintf("traffic pinned to %s instead of LATEST: %s", pinned, why))
	if moved {
		r.fixes = append(r.fixes, movedTagFix(r.o.Service, tag, r.snap.Revision, latest))
	} else {
		r.fixes = append(r.fixes, fmt.Sprintf("check %s (runrollback status --probe); to follow LATEST again: gcloud run services update-traffic %s --region %s --to-latest", latest, r.o.Service.Name, r.o.Service.Region))
	}
	return "users kept on " + pinned.String() + ": " + why
}

func cmpOr(s, otherwise string) string { return cmp.Or(s, otherwise) }

// movedTagFix says how to follow LATEST again when the template's image tag
// now builds something else than the revision users are kept on: deploy that
// revision's image by its digest (or move the tag back) before sending users
// to LATEST, which would otherwise serve the tag's new build.
func movedTagFix(ref ServiceRef, tag, kept, fresh string) string {
	repo := tag
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return fmt.Sprintf("the image tag %s moved: %s runs what the tag now points to, %s still runs the digest it was built from. "+
		"Redeploy by digest — gcloud run revisions describe %s --region %s --format 'value(status.imageDigest)' prints it; "+
		"gcloud run deploy %s --region %s --image %s@sha256:… — or move the tag back, and check the new revision (runrollback status --probe); "+
		"then follow LATEST again: gcloud run services update-traffic %s --region %s --to-latest",
		tag, fresh, kept, kept, ref.Region, ref.Name, ref.Region, repo, ref.Name, ref.Region)
}

// after records the service as the run leaves it.
func (r *drillRun) after(ctx context.Context) {
	if r.rep.Before == nil {
		return
	}
	cur, err := r.d.Cloud.GetService(ctx, r.o.Service)
	if err != nil {
		r.warn(StepCleanup, "could not read the service after the drill: "+err.Error())
		return
	}
	r.rep.After = &ReportState{Traffic: cur.Traffic, Etag: cur.Etag, Generation: cur.Generation, Version: r.rep.Before.Version}
	r.rep.TrafficRestored = cur.Traffic.Equal(r.snap.Traffic)
	r.rep.TemplateRestored = cur.Template.Hash == r.snap.Template.Hash
	for _, s := range r.rep.Steps {
		if s.Name == StepVerify && s.Status == StepPass {
			r.rep.After.Healthy = true
			r.rep.After.Revision = r.snap.Revision
		}
	}
	if r.freshRevision != "" {
		// A LATEST-tracking service serves the fresh revision, verified after cleanup.
		r.rep.After.Revision, r.rep.After.Version = r.freshRevision, r.freshVersion
	}
}

func (r *drillRun) finish(start time.Time, result string, err error) {
	r.skipRest(DrillSteps)
	var errText string
	if err != nil {
		errText = err.Error()
		if result == ResultError {
			// Now that the journal names any operation left in flight.
			r.hint = r.recoverHint()
		}
	}
	result, errText, r.hint = withLeft(r.rep, result, errText, r.hint, r.left, r.fixes)
	conclude(r.rep, result, errText, r.hint, r.d.Calls, r.now().Sub(start))
}
