package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/rollback"
)

// selection wires --service, --services-file and --label to rollback.Selection.
type selection struct{ rollback.Selection }

// parseSelection reads and validates the selection flags; only --label needs
// the API, later, in resolve.
func parseSelection(c *cli.Context, g globalOpts) (selection, error) {
	s := selection{rollback.Selection{Project: g.project, Region: g.region}}
	for _, ref := range g.refs() {
		if err := s.Add(ref); err != nil {
			return s, usageError{fmt.Errorf("--service: %w", err)}
		}
	}
	if path := c.String("services-file"); path != "" {
		b, err := rollback.ReadFileCapped(path, rollback.MaxServicesFile)
		if err != nil {
			return s, usageError{fmt.Errorf("--services-file %s: %w", path, err)}
		}
		refs, err := rollback.ParseServicesFile("--services-file "+path, b, g.project, g.region)
		if err != nil {
			return s, usageError{err}
		}
		for _, r := range refs {
			if err := s.Add(r); err != nil {
				return s, usageError{fmt.Errorf("--services-file %s: %w", path, err)}
			}
		}
	}
	if labels := c.StringSlice("label"); len(labels) > 0 {
		for _, kv := range labels {
			if err := s.AddLabel(kv); err != nil {
				return s, usageError{err}
			}
		}
		if err := rollback.ValidateProjectID(g.project); err != nil {
			return s, usageError{fmt.Errorf("--label: %w", err)}
		}
		if err := rollback.ValidateRegion(g.region); err != nil {
			return s, usageError{fmt.Errorf("--label: %w", err)}
		}
	}
	if s.Empty() {
		return s, usageError{fmt.Errorf("no service given: pass --service NAME, --services-file FILE or --label KEY=VALUE")}
	}
	return s, nil
}

// resolve adds the services --label selects.
func (s selection) resolve(ctx context.Context, be *backend) ([]rollback.ServiceRef, error) {
	if s.Labels == nil {
		return s.Resolve(nil)
	}
	svcs, err := be.cloud.ListServices(ctx, s.Project, s.Region)
	if err != nil {
		return nil, readOnlyError(err)
	}
	refs, err := s.Resolve(svcs)
	if err != nil {
		return nil, usageError{err}
	}
	return refs, nil
}

// readWatch remembers, per service, the error of the first read of the
// service when it says the service is missing or out of reach (not found,
// permission, credentials). A run that stopped there, before any write, was
// given a service it cannot work on: that is bad input (exit 2, with a hint),
// as in status, not a drill that aborted or a recovery not confirmed.
type readWatch struct {
	rollback.CloudRun
	mu    sync.Mutex
	first map[rollback.ServiceRef]error
}

func watchReads(c rollback.CloudRun) *readWatch {
	return &readWatch{CloudRun: c, first: map[rollback.ServiceRef]error{}}
}

func (w *readWatch) GetService(ctx context.Context, ref rollback.ServiceRef) (*rollback.Service, error) {
	svc, err := w.CloudRun.GetService(ctx, ref)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, seen := w.first[ref]; !seen {
		w.first[ref] = nil
		if errors.Is(err, rollback.ErrNotFound) || errors.Is(err, rollback.ErrPermission) || errors.Is(err, rollback.ErrUnauthenticated) {
			w.first[ref] = err
		}
	}
	return svc, err
}

// classify gives a report that stopped at such a first read, with no write,
// the exit code of bad input and the hint for it.
func (w *readWatch) classify(reports ...*rollback.Report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range reports {
		ref := rollback.ServiceRef{Project: r.Service.Project, Region: r.Service.Region, Name: r.Service.Name}
		err := w.first[ref]
		if err == nil || r.Result == rollback.ResultPass || r.APICalls.Writes > 0 {
			continue
		}
		r.Result, r.ExitCode = rollback.ResultAborted, exitUsage
		var se setupError
		if errors.As(readOnlyError(err), &se) && se.hint != "" {
			r.Hint = se.hint + "; nothing was changed"
		}
	}
}
