package rollback

import (
	"context"
	"errors"
	"sync"
)

// SetupHint says what to set up when err, from reading a service, is about
// the set-up rather than the service: a name that does not exist, a missing
// permission, no credentials. It is "" for other errors.
func SetupHint(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "check --project, --region and --service ('gcloud run services list' shows what exists)"
	case errors.Is(err, ErrPermission):
		return "the account needs roles/run.viewer on the service (see docs/permissions.md)"
	case errors.Is(err, ErrUnauthenticated):
		return "set up Application Default Credentials ('gcloud auth application-default login'), or use --local"
	}
	return ""
}

// unworkable reports whether err, from the first read of a service, says the
// service cannot be worked on at all: it does not exist, or is out of reach
// (permission, credentials).
func unworkable(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermission) || errors.Is(err, ErrUnauthenticated)
}

// FirstReads is a CloudRun that remembers, per service, the error of the
// first read of the service when it says the service is missing or out of
// reach. A run that stopped there, before any write, was given a service it
// cannot work on: that is bad input (Report.BadInput), as in status, not a
// run that aborted or a recovery not confirmed.
type FirstReads struct {
	CloudRun
	mu    sync.Mutex
	first map[ServiceRef]error
}

// WatchFirstReads wraps c.
func WatchFirstReads(c CloudRun) *FirstReads {
	return &FirstReads{CloudRun: c, first: map[ServiceRef]error{}}
}

// GetService implements CloudRun.
func (w *FirstReads) GetService(ctx context.Context, ref ServiceRef) (*Service, error) {
	svc, err := w.CloudRun.GetService(ctx, ref)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.first[ref]; !seen {
		w.first[ref] = nil
		if unworkable(err) {
			w.first[ref] = err
		}
	}
	return svc, err
}

// Classify marks each report that stopped at such a first read, with no
// write, as bad input: result aborted, BadInput, and the hint for it.
func (w *FirstReads) Classify(reports ...*Report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range reports {
		ref := ServiceRef{Project: r.Service.Project, Region: r.Service.Region, Name: r.Service.Name}
		err := w.first[ref]
		if err == nil || r.Result == ResultPass || r.APICalls.Writes > 0 {
			continue
		}
		r.Result, r.BadInput = ResultAborted, true
		if hint := SetupHint(err); hint != "" {
			r.Hint = hint + "; nothing was changed"
		}
	}
}
