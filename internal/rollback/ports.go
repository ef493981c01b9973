package rollback

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CloudRun is what the state machines need from the Cloud Run Admin API. Package
// cloudrun implements it; every write carries the etag of the read it is based on,
// and returns the service as Cloud Run left it.
type CloudRun interface {
	GetService(ctx context.Context, ref ServiceRef) (*Service, error)
	ListRevisions(ctx context.Context, ref ServiceRef) ([]Revision, error)
	// UpdateTraffic is a traffic-only write (update mask "traffic").
	UpdateTraffic(ctx context.Context, ref ServiceRef, etag string, traffic Split) (*Service, error)
	// UpdateTrafficAnnotated writes traffic and replaces the annotations in one
	// write (update mask "traffic,annotations"): a restore that takes its lease
	// and journal with it, so users are not kept waiting for a separate write.
	UpdateTrafficAnnotated(ctx context.Context, ref ServiceRef, etag string, traffic Split, annotations map[string]string) (*Service, error)
	// DeployRevision writes the service's current template with the changes in d,
	// creating a revision named d.Revision, and d.Traffic in the same write.
	DeployRevision(ctx context.Context, ref ServiceRef, etag string, d Deploy) (*Service, error)
	// ReplaceTemplate writes t (from an earlier read) back as the template, with traffic.
	ReplaceTemplate(ctx context.Context, ref ServiceRef, etag string, t Template, traffic Split) (*Service, error)
	// SetAnnotations replaces the service's annotations (update mask "annotations").
	SetAnnotations(ctx context.Context, ref ServiceRef, etag string, annotations map[string]string) (*Service, error)
	DeleteRevision(ctx context.Context, ref ServiceRef, revision string) error
	// ResumeOperation waits for a long-running operation started earlier, by name.
	ResumeOperation(ctx context.Context, name string) (*Service, error)
}

// Deploy describes the revision a drill creates.
type Deploy struct {
	// Revision is the short name of the new revision (it must start with the
	// service name and a hyphen), so that Traffic can tag it in the same write;
	// "" lets Cloud Run name it.
	Revision string
	// Env is set (added or replaced) in the first container.
	Env map[string]string
	// Unset names env variables removed from the first container.
	Unset []string
	// Image replaces the first container's image when not empty.
	Image string
	// Traffic is written with the template.
	Traffic Split
	// Annotations, when not nil, replace the service's annotations in the same
	// write (a drill takes its lease and journal with its deploy).
	Annotations map[string]string
}

// PendingError says a write was accepted but its long-running operation had not
// finished when we stopped waiting. Operation is the name to resume.
type PendingError struct {
	Op        string
	Operation string
	Err       error
}

func (e *PendingError) Error() string {
	msg := fmt.Sprintf("%s: operation %s did not finish", e.Op, e.Operation)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrPending) true.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

func (e *PendingError) Unwrap() error { return e.Err }

// OperationName returns the name of a pending operation inside err, or "".
func OperationName(err error) string {
	var pe *PendingError
	if errors.As(err, &pe) {
		return pe.Operation
	}
	return ""
}

// Expect is what a healthy answer must show.
type Expect struct {
	// Version is the version the health endpoint must report ("" = any).
	Version string
	// Revisions are the revisions allowed to answer (nil = any); an answer from
	// another revision means the split has not converged.
	Revisions []string
}

// ProbeResult is the outcome of probing a URL until a condition holds or the
// policy gives up.
type ProbeResult struct {
	// OK: WaitHealthy saw enough healthy answers in a row; WaitFailure saw the failure.
	OK       bool
	Version  string // of the last answer
	Revision string // that gave the last answer
	Detail   string // one line on the last answer, safe to print
	// URL is the URL requested (the health path appended to the base URL).
	URL      string
	Attempts int
	// Errors, Unhealthy and NotConverged count the attempts that got no
	// answer, a failing answer (unhealthy, wrong version), and an answer from
	// another revision.
	Errors, Unhealthy, NotConverged int
	Elapsed                         time.Duration
}

// Prober checks a service's health endpoint, with its own retry policy.
type Prober interface {
	// WaitHealthy probes baseURL until it answers healthy as exp says, enough
	// times in a row, or gives up.
	WaitHealthy(ctx context.Context, baseURL string, exp Expect) ProbeResult
	// WaitFailure probes baseURL until an answer proves breakage (unhealthy,
	// wrong version, timeout), or gives up (it kept answering healthy).
	WaitFailure(ctx context.Context, baseURL string, exp Expect) ProbeResult
}
