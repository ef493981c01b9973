package rollback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Recover finishes or undoes a run that stopped without cleaning up (SIGKILL, a
// lost runner): from the journal on the service (annotation) or the local file,
// it puts the snapshot's traffic back, writes the template back, deletes the
// broken revision, and removes our annotations. Every action first looks at the
// service, so running it twice, or after a run that did finish, changes nothing.
type Recover struct {
	Cloud   CloudRun
	Probe   Prober
	Journal FileJournal
	Observe Observer
	Now     func() time.Time
	Calls   func() (reads, writes int64)
	// BeforeStep, when set, runs before each step (see Drill.BeforeStep).
	BeforeStep func(ctx context.Context, step string) error
	// Alive reports whether the process pid runs on this machine; nil
	// means it cannot be told, and a live lease of this machine's own run is
	// taken for a dead run's.
	Alive func(pid int) bool
}

// RecoverOptions name the service and how to probe it afterwards.
type RecoverOptions struct {
	Service       ServiceRef
	URL           string
	ExpectVersion string
	// Owner is who runs recover. A live lease of another owner, with no
	// journal of it on this machine, may belong to a run still in progress:
	// recover leaves it alone unless Force.
	Owner string
	Force bool
	// RestoreTimeout bounds the whole recovery. Default DefaultRestoreTimeout.
	RestoreTimeout time.Duration
}

// errUnhealthy marks a service that was put back but does not answer healthy.
var errUnhealthy = errors.New("unhealthy")

// Recover steps.
const (
	StepJournal   = "journal"
	StepOperation = "operation"
)

type recoverRun struct {
	*runner
	rc          *Recover
	o           RecoverOptions
	j           *Journal
	svc         *Service
	hint        string
	left, fixes []string
}

func (rr *recoverRun) stepDo(ctx context.Context, name string, fn func() (string, error)) error {
	return rr.step(ctx, name, func(context.Context) (string, error) { return fn() })
}

// Run recovers the service and returns the report: result pass when nothing was
// in flight or everything was put back; aborted when another writer's change
// stands in the way (nothing of theirs is overwritten); error when something of
// ours could not be removed.
func (rc *Recover) Run(ctx context.Context, o RecoverOptions) *Report {
	rep := &Report{
		Schema:  ReportSchema,
		Command: "recover",
		Service: ReportService{Project: o.Service.Project, Region: o.Service.Region, Name: o.Service.Name},
	}
	rr := &recoverRun{runner: newRunner(rep, rc.Observe, rc.Now, rc.BeforeStep, FileJournal{}), rc: rc, o: o}
	start := rr.now()
	// Recover puts a service back: its writes go first at the write limiter,
	// and it ends after its budget. A signal may stop it: every action
	// decides from the service as it is, so running it again finishes the job.
	ctx, cancel := context.WithTimeout(Urgent(ctx), cmp.Or(o.RestoreTimeout, DefaultRestoreTimeout))
	defer cancel()
	err := rr.run(ctx)
	result := ResultPass
	switch {
	case err == nil:
	case errors.Is(err, errUnhealthy):
		result = ResultFail
	case errors.Is(err, ErrConflict), errors.Is(err, ErrAborted):
		result = ResultAborted
	default:
		result = ResultError
	}
	var errText string
	if err != nil {
		errText = err.Error()
	}
	result, errText, rr.hint = withLeft(rr.rep, result, errText, rr.hint, rr.left, rr.fixes)
	conclude(rr.rep, result, errText, rr.hint, rc.Calls, rr.now().Sub(start))
	return rr.rep
}

func (rr *recoverRun) run(ctx context.Context) error {
	rc, ref := rr.rc, rr.o.Service
	err := rr.step(ctx, StepJournal, rr.findJournal)
	if err != nil {
		if rr.svc == nil {
			rr.hint = cmp.Or(rr.hint, "nothing was changed; check --project, --region and --service")
		}
		return err
	}
	if rr.j == nil {
		if HasRunAnnotations(rr.svc.Annotations) {
			// Our annotations, unreadable or with no journal, and nothing
			// else of a run on the service: remove them.
			c := &converger{cloud: rc.Cloud, ref: ref, j: &Journal{}, svc: rr.svc, rep: rr.rep, warn: rr.warnCleanup}
			return rr.stepDo(ctx, StepCleanup, func() (string, error) {
				d, err := c.release(ctx, func() error { return rc.Journal.Delete(ref) })
				rr.left, rr.fixes = append(rr.left, c.left...), append(rr.fixes, c.fixes...)
				return d, err
			})
		}
		rr.rep.TrafficRestored = true
		return rr.sweep(ctx)
	}
	if err := rr.resume(ctx); err != nil {
		return err
	}
	c := &converger{cloud: rc.Cloud, ref: ref, j: rr.j, svc: rr.svc, rep: rr.rep, fold: true, warn: rr.warnCleanup}
	err = rr.stepDo(ctx, StepRestore, func() (string, error) { return c.restoreTraffic(ctx) })
	rr.rep.Timings.Restore = rr.lastMS()
	rr.svc = c.svc
	if err != nil {
		rr.hint = "run 'runrollback recover' again; if it keeps failing, check 'runrollback status'"
		return fmt.Errorf("%w: %w", ErrNotRestored, err)
	}
	err = rr.stepDo(ctx, StepCleanup, func() (string, error) {
		d, err := c.cleanup(ctx, func() error { return rc.Journal.Delete(ref) })
		rr.left, rr.fixes = append(rr.left, c.left...), append(rr.fixes, c.fixes...)
		return d, err
	})
	rr.svc = c.svc
	if err != nil {
		rr.hint = "run 'runrollback recover' again"
		return err
	}
	if c.conflict != "" {
		rr.hint = "another writer's traffic change was kept; compare it with the snapshot and decide by hand (runrollback rollback --to REVISION)"
		return fmt.Errorf("%w: %s", ErrConflict, c.conflict)
	}
	err = rr.stepDo(ctx, StepVerify, func() (string, error) { return rr.verify(ctx) })
	rr.rep.Timings.Verify = rr.lastMS()
	rr.rep.After = &ReportState{Traffic: rr.svc.Traffic, Etag: rr.svc.Etag, Generation: rr.svc.Generation, Healthy: err == nil}
	rr.rep.TrafficRestored = rr.svc.Traffic.Equal(rr.j.Snapshot.Traffic)
	rr.rep.TemplateRestored = rr.svc.Template.Hash == rr.j.Snapshot.Template.Hash
	if err != nil {
		rr.hint = "traffic is back as it was before the interrupted run; the service does not answer healthy: check it with 'runrollback status --probe'"
	}
	return err
}

// findJournal reads what the interrupted run left: its journal on the service
// and in the local file, each of which may be missing or unreadable (a
// truncated file, a garbled annotation). It uses the readable copy; with
// neither, it works out the run from the service's own state (the drill's tag
// and revision carry its id), or stops with the commands that finish the job.
// A live lease (a run that may still be going, here or elsewhere) is left
// alone unless --force.
func (rr *recoverRun) findJournal(ctx context.Context) (string, error) {
	rc, ref := rr.rc, rr.o.Service
	svc, err := rc.Cloud.GetService(ctx, ref)
	if err != nil {
		return "", err
	}
	rr.svc = svc
	rr.rep.Service.URI = svc.URI
	lease, lerr := leaseOf(svc)
	onService, jerr := journalOf(svc)
	local, ferr := rc.Journal.Load(ref)
	for _, err := range []error{lerr, jerr, ferr} {
		if err != nil {
			rr.warn(StepJournal, err.Error()+": using the other copies, else the service's own state")
		}
	}
	if local != nil && local.Snapshot.Service != ref {
		local = nil
	}
	force := fmt.Sprintf("runrollback recover --force --project %s --region %s --service %s", ref.Project, ref.Region, ref.Name)
	if local != nil && (lease == nil || local.ID == lease.ID) && local.PID != 0 && local.PID != os.Getpid() && rc.Alive != nil && rc.Alive(local.PID) && !rr.o.Force {
		// This machine's run is still going, its lease expired or not.
		rr.hint = fmt.Sprintf("the run is still going on this machine (process %d): let it finish, or stop it (kill -INT %d), which restores; if it hangs, run: %s", local.PID, local.PID, force)
		return "", fmt.Errorf("%w: %s by %s (process %d on this machine) on %q is still running", ErrAborted, local.Command, local.Owner, local.PID, ref.Name)
	}
	if lease != nil && !lease.Expired(rr.now()) && !rr.o.Force {
		switch {
		case lease.Owner != rr.o.Owner && (local == nil || local.ID != lease.ID):
			rr.hint = "if that run is dead (its runner was killed), run: " + force
			return "", fmt.Errorf("%w: %s by %s holds %q until %s and may still be running", ErrAborted, lease.Command, lease.Owner, ref.Name, lease.Expires.Format(time.RFC3339))
		}
	}
	// Which run: the lease's, when it can be read.
	if lease != nil {
		if onService != nil && onService.ID != lease.ID {
			onService = nil
		}
		if local != nil && local.ID != lease.ID {
			rr.warn(StepJournal, fmt.Sprintf("the local journal is of run %s, the service's lease of run %s: the local one is not used", local.ID, lease.ID))
			local = nil
		}
	}
	if local != nil && onService != nil && local.ID != onService.ID {
		return "", fmt.Errorf("%w: the local journal (run %s) and the service's (run %s) are of different runs", ErrAborted, local.ID, onService.ID)
	}
	where := "the service"
	switch {
	case onService != nil && local != nil:
		// The local file has the step, any operation in flight and the
		// whole template; the service's copy is the same run's.
		rr.j = local
	case onService != nil:
		rr.j = onService
	case local != nil:
		rr.j, where = local, "the local file "+rc.Journal.Path(ref)
	default:
		id := ""
		if lease != nil {
			id = lease.ID
		}
		j, detail, err := rr.infer(ctx, id)
		if err != nil || j == nil {
			return detail, err
		}
		rr.j, where = j, "the service's state ("+detail+")"
	}
	rr.rep.Before = &ReportState{Traffic: svc.Traffic, Etag: svc.Etag, Generation: svc.Generation}
	rr.rep.BrokenRevision = rr.j.BrokenRevision
	rr.rep.LastGood = rr.j.Snapshot.Serving()
	if rr.j.Started.IsZero() {
		return fmt.Sprintf("%s, from %s; traffic before it taken as %s", cmp.Or(rr.j.Command, "?"), where, rr.j.Snapshot.Traffic), nil
	}
	return fmt.Sprintf("%s by %s, started %s, stopped at %s (journal from %s); snapshot traffic %s",
		rr.j.Command, rr.j.Owner, rr.j.Started.Format(time.RFC3339), cmp.Or(rr.j.Step, "?"), where, rr.j.Snapshot.Traffic), nil
}

// sweep deletes drill revisions nothing refers to: a drill that released its
// lease with its restore and was killed before it deleted its revision leaves
// one, and from another machine nothing else says so. A revision any traffic
// names, the latest one, or the revision of a run whose lease is live, stays.
func (rr *recoverRun) sweep(ctx context.Context) error {
	revs, err := rr.rc.Cloud.ListRevisions(ctx, rr.o.Service)
	if err != nil {
		rr.warn(StepCleanup, "could not list revisions to look for a drill's: "+err.Error())
		return nil
	}
	live, _ := leaseOf(rr.svc)
	prefix := rr.o.Service.Name + "-drill-"
	var orphans []string
	for _, r := range revs {
		id, ok := strings.CutPrefix(r.Name, prefix)
		switch {
		case !ok, r.Name == rr.svc.LatestCreatedRevision, live != nil && !live.Expired(rr.now()) && strings.HasPrefix(live.ID, id),
			slices.ContainsFunc(rr.svc.Traffic, func(t Target) bool { return t.Revision == r.Name }),
			slices.ContainsFunc(rr.svc.TrafficStatuses, func(t TargetStatus) bool { return t.Revision == r.Name }):
			continue
		}
		orphans = append(orphans, r.Name)
	}
	if len(orphans) == 0 {
		return nil
	}
	return rr.step(ctx, StepCleanup, func(ctx context.Context) (string, error) {
		var done []string
		for _, name := range orphans {
			c := &converger{cloud: rr.rc.Cloud, ref: rr.o.Service, j: &Journal{BrokenRevision: name}, svc: rr.svc, rep: rr.rep, warn: rr.warnCleanup}
			if d := c.deleteBroken(ctx); d != "" {
				done = append(done, d+" (a drill's, referred to by nothing)")
			}
			rr.left, rr.fixes = append(rr.left, c.left...), append(rr.fixes, c.fixes...)
		}
		return strings.Join(done, "; "), nil
	})
}

// resume waits for an operation the interrupted run left in flight, rather than
// writing again.
func (rr *recoverRun) resume(ctx context.Context) error {
	return rr.stepDo(ctx, StepOperation, func() (string, error) {
		if rr.j.Operation == "" {
			return "", nil
		}
		svc, err := rr.rc.Cloud.ResumeOperation(ctx, rr.j.Operation)
		if err != nil && !errors.Is(err, ErrNotFound) {
			if errors.Is(err, ErrPending) {
				rr.hint = "the operation is still running: run 'runrollback recover' again in a minute"
			}
			return "", fmt.Errorf("%w: operation %s: %w", ErrNotRestored, rr.j.Operation, err)
		}
		if svc != nil {
			rr.svc = svc
		}
		cur, err := rr.rc.Cloud.GetService(ctx, rr.o.Service)
		if err != nil {
			return "", err
		}
		rr.svc = cur
		return "operation " + rr.j.Operation + " finished", nil
	})
}

func (rr *recoverRun) warnCleanup(msg string) { rr.warn(StepCleanup, msg) }

func (rr *recoverRun) verify(ctx context.Context) (string, error) {
	if cmp.Or(rr.o.URL, rr.svc.URI) == "" || rr.rc.Probe == nil {
		return "", nil
	}
	cur, res, err := verifyServing(ctx, rr.rc.Cloud, rr.rc.Probe, rr.o.Service, check{url: rr.o.URL, want: rr.svc.Traffic, version: rr.o.ExpectVersion})
	if cur != nil {
		rr.svc = cur
	}
	if err != nil {
		return "", err
	}
	return DescribeHealthy(res), nil
}
