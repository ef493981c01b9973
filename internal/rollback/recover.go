package rollback

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
	var local *Journal
	err := rr.stepDo(ctx, StepJournal, func() (string, error) {
		svc, err := rc.Cloud.GetService(ctx, ref)
		if err != nil {
			return "", err
		}
		rr.svc = svc
		rr.rep.Service.URI = svc.URI
		lease, onService, err := LeaseAndJournal(svc)
		if err != nil {
			return "", err
		}
		local, err = rc.Journal.Load(ref)
		if err != nil {
			return "", err
		}
		if lease != nil && !lease.Expired(rr.now()) && lease.Owner != rr.o.Owner && local == nil && !rr.o.Force {
			rr.hint = fmt.Sprintf("if that run is dead (its runner was killed), run: runrollback recover --force --project %s --region %s --service %s", ref.Project, ref.Region, ref.Name)
			return "", fmt.Errorf("%w: %s by %s holds %q until %s and may still be running", ErrAborted, lease.Command, lease.Owner, ref.Name, lease.Expires.Format(time.RFC3339))
		}
		rr.j = cmp.Or(onService, local)
		if rr.j == nil {
			if HasRunAnnotations(svc.Annotations) {
				return "a lease without a journal is on the service: removing it", nil
			}
			return "nothing in flight", nil
		}
		if local != nil && onService != nil && local.ID != onService.ID {
			return "", fmt.Errorf("%w: the local journal (run %s) and the service's (run %s) are of different runs", ErrAborted, local.ID, onService.ID)
		}
		if local != nil {
			// The local file has the step and any operation in flight.
			rr.j.Step, rr.j.Operation, rr.j.Expect = local.Step, local.Operation, local.Expect
		}
		rr.rep.Before = &ReportState{Traffic: svc.Traffic, Etag: svc.Etag, Generation: svc.Generation}
		rr.rep.BrokenRevision = rr.j.BrokenRevision
		rr.rep.LastGood = rr.j.Snapshot.Serving()
		where := "the service"
		if onService == nil {
			where = "the local file " + rc.Journal.Path(ref)
		}
		return fmt.Sprintf("%s by %s, started %s, stopped at %s (journal from %s); snapshot traffic %s",
			rr.j.Command, rr.j.Owner, rr.j.Started.Format(time.RFC3339), cmp.Or(rr.j.Step, "?"), where, rr.j.Snapshot.Traffic), nil
	})
	if err != nil {
		rr.hint = cmp.Or(rr.hint, "nothing was changed; check --project, --region and --service")
		return err
	}
	if rr.j == nil {
		if HasRunAnnotations(rr.svc.Annotations) {
			c := &converger{cloud: rc.Cloud, ref: ref, j: &Journal{}, svc: rr.svc, rep: rr.rep, warn: rr.warnCleanup}
			return rr.stepDo(ctx, StepCleanup, func() (string, error) {
				d, err := c.release(ctx, func() error { return rc.Journal.Delete(ref) })
				rr.left, rr.fixes = append(rr.left, c.left...), append(rr.fixes, c.fixes...)
				return d, err
			})
		}
		rr.rep.TrafficRestored = true
		return nil
	}
	if err := rr.resume(ctx); err != nil {
		return err
	}
	c := &converger{cloud: rc.Cloud, ref: ref, j: rr.j, svc: rr.svc, rep: rr.rep, warn: rr.warnCleanup}
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
	return fmt.Sprintf("healthy %s from %s", res.Version, res.Revision), nil
}
