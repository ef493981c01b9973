package rollback

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// runner is the one step runner of every command (test, guard, rollback,
// recover). Before each step it calls BeforeStep (the tests' pause point),
// stops if the context is done, and, once the run has a journal, saves it with
// the step's name, so an interrupted run is always resumable from the step it
// was in. It emits the step's start and end, times it and records it in the
// report. A step's function returns a one-line detail; "" with no error means
// there was nothing to do, and the step is recorded as skipped.
type runner struct {
	rep        *Report
	observe    Observer
	now        func() time.Time
	beforeStep func(ctx context.Context, step string) error
	files      FileJournal
	// j is the run's journal; it is saved before every step (and by journal)
	// while journaled is set.
	j         Journal
	journaled bool
}

func newRunner(rep *Report, observe Observer, now func() time.Time, before func(context.Context, string) error, files FileJournal) *runner {
	if now == nil {
		now = time.Now
	}
	return &runner{rep: rep, observe: observe, now: now, beforeStep: before, files: files}
}

// failure is a step that ran and proved something wrong (the detector never
// fired, a revision that should not start did): the step fails with msg, and
// the run goes on to restore.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

// Is makes errors.Is(err, errDrillFailed) true.
func (f *failure) Is(target error) bool { return target == errDrillFailed }

// errDrillFailed marks a run that proved a failure; see failure.
var errDrillFailed = errors.New("drill failed")

// failed returns a failure with msg.
func failed(msg string) error { return &failure{msg: msg} }

// step runs fn as the step called name.
func (r *runner) step(ctx context.Context, name string, fn func(ctx context.Context) (string, error)) error {
	if r.beforeStep != nil {
		if err := r.beforeStep(ctx, name); err != nil {
			r.record(name, StepFail, r.now(), 0, "stopped before this step: "+errorText(ctx, err))
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		r.record(name, StepFail, r.now(), 0, "stopped before this step: "+errorText(ctx, err))
		return err
	}
	if r.journaled {
		r.j.Step = name
		if err := r.save(); err != nil {
			r.record(name, StepFail, r.now(), 0, err.Error())
			return err
		}
	}
	start := r.now()
	r.emit(LevelRun, name, "", 0)
	detail, err := fn(ctx)
	dur := r.now().Sub(start)
	if op := OperationName(err); op != "" && r.journaled {
		// A write was accepted but not seen to finish: recover resumes it by name.
		r.j.Operation = op
		if serr := r.save(); serr != nil {
			r.warn(name, serr.Error())
		}
	}
	status := StepPass
	var f *failure
	switch {
	case errors.As(err, &f):
		status, detail = StepFail, f.msg
	case err != nil:
		status, detail = StepFail, errorText(ctx, err)
	case detail == "":
		status, detail = StepSkipped, "nothing to do"
	}
	r.record(name, status, start, dur, detail)
	return err
}

// save writes the journal to the local file.
func (r *runner) save() error { return r.files.Save(r.j) }

// journal starts the run's journal j: it is saved now, and before every later
// step, until forget.
func (r *runner) journal(j Journal) error {
	r.j = j
	if err := r.save(); err != nil {
		return err
	}
	r.journaled = true
	return nil
}

// forget deletes the local journal once nothing of the run is left to recover.
func (r *runner) forget(ref ServiceRef) error {
	if err := r.files.Delete(ref); err != nil {
		return err
	}
	r.journaled = false
	return nil
}

func (r *runner) record(name, status string, start time.Time, dur time.Duration, detail string) {
	recordStep(r.rep, r.observe, name, status, start, dur, detail)
}

func (r *runner) emit(level Level, step, msg string, dur time.Duration) {
	if r.observe != nil {
		r.observe(Event{Time: r.now(), Level: level, Step: step, Message: msg, Duration: dur})
	}
}

func (r *runner) warn(step, msg string) {
	r.rep.Warnings = append(r.rep.Warnings, msg)
	r.emit(LevelWarn, step, msg, 0)
}

func (r *runner) skip(name, why string) { r.record(name, StepSkipped, r.now(), 0, why) }

func (r *runner) done(name string) bool {
	return slices.ContainsFunc(r.rep.Steps, func(x StepReport) bool { return x.Name == name })
}

// skipUntil records the steps of steps before until that did not run as
// skipped, so the report lists them in order.
func (r *runner) skipUntil(steps []string, until string) {
	for _, s := range steps {
		if s == until {
			return
		}
		if !r.done(s) {
			r.skip(s, "not reached")
		}
	}
}

// skipRest records every step of steps not yet in the report as skipped.
func (r *runner) skipRest(steps []string) {
	for _, s := range steps {
		if !r.done(s) {
			r.skip(s, "not reached")
		}
	}
}

// lastMS is the duration of the last step recorded.
func (r *runner) lastMS() int64 {
	if len(r.rep.Steps) == 0 {
		return 0
	}
	return r.rep.Steps[len(r.rep.Steps)-1].DurationMS
}

// errorText prefers the context's cause (which names the signal or deadline).
func errorText(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); c != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, c)) {
			return "interrupted: " + c.Error()
		}
	}
	return err.Error()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// urgentContext is the context every command restores on: the caller's
// cancellation (a signal, --deadline) does not reach it, the write limiter
// serves it first, and it ends after budget.
func urgentContext(ctx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(Urgent(context.WithoutCancel(ctx)), budget)
}

// DefaultRestoreTimeout is the budget for putting a service back (restore,
// verify, cleanup) once a run has changed it: long enough for a cleanup that
// builds a revision on real Cloud Run and for an API outage of a few minutes.
const DefaultRestoreTimeout = 10 * time.Minute
