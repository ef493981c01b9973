package fakerun

import (
	"fmt"
	"time"
)

// Rollout says how long the fake's long-running operations take, by kind of
// write, and how its Operations service behaves while they run.
//
// Cloud Run rolls out asynchronously: a create or update returns an
// operation that is not done, the service shows reconciling=true, and
// observed_generation, latest_ready_revision and traffic_statuses keep their
// old values until reconciliation ends (the Service.reconciling field comment
// of google/cloud/run/v2/service.proto). Traffic changes are not instant
// either ("traffic routing adjustments are not instantaneous",
// https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration), so
// the fake routes by the new split only when the operation completes, whatever
// the write changed.
type Rollout struct {
	// Create is how long CreateService takes (and UpdateService with
	// allow_missing when it creates the service).
	Create time.Duration
	// Deploy is how long an UpdateService takes that builds a revision.
	Deploy time.Duration
	// Update is how long an UpdateService takes that builds none (traffic,
	// annotations, labels).
	Update time.Duration
	// Delete is how long DeleteService and DeleteRevision take.
	Delete time.Duration
	// WaitMax is the longest WaitOperation waits for an operation to finish.
	// google.longrunning says WaitOperation "may return the latest state
	// before the specified timeout (including immediately), meaning even an
	// immediate response is no guarantee that the operation is done"; with
	// WaitMax 0 it answers at once, the strictest reading. A negative WaitMax
	// waits as long as the request's timeout allows.
	WaitMax time.Duration
	// Retention is how long a finished operation is kept; after that
	// GetOperation and WaitOperation answer NOT_FOUND, as for a name never
	// seen. 0 keeps operations for the life of the Server. (How long Cloud
	// Run keeps them is not documented: the fake assumes not long.)
	Retention time.Duration
	// ReadyDespiteFailedRevision relaxes the service's Ready condition after
	// a revision that failed to start. By default, while the latest created
	// revision is such a revision, terminal_condition stays FAILED (reason
	// REVISION_FAILED) even once a later write that builds no revision has
	// rolled out: the Service.reconciling comment of service.proto says that
	// when reconciliation succeeds latest_ready_revision and
	// latest_created_revision match, which they cannot then. What Cloud Run
	// shows in that case is not verified; this is the stricter reading. Set,
	// such a rollout shows Ready SUCCEEDED.
	ReadyDespiteFailedRevision bool
}

// DefaultRollout is what a Server uses unless told otherwise: every write
// takes a little while, short enough that `runrollback test --local` stays
// fast; WaitOperation answers at once; finished operations are forgotten
// after a minute.
func DefaultRollout() Rollout {
	return Rollout{
		Create:    15 * time.Millisecond,
		Deploy:    15 * time.Millisecond,
		Update:    5 * time.Millisecond,
		Delete:    5 * time.Millisecond,
		WaitMax:   0,
		Retention: time.Minute,
	}
}

// InstantRollout completes every operation before the call that started it
// returns, and WaitOperation honours the request's timeout: for tests that
// are about something else and say so.
func InstantRollout() Rollout { return Rollout{WaitMax: -1} }

// WithRollout sets the Server's Rollout; the default is DefaultRollout().
func WithRollout(r Rollout) Option { return func(c *config) { c.rollout = &r } }

// SetRollout changes the Rollout for operations started from now on.
func (s *Server) SetRollout(r Rollout) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.rollout = r
}

// Rollout returns the Server's current Rollout.
func (s *Server) Rollout() Rollout {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.rollout
}

// SeedRollout is the JSON form of a Rollout, in milliseconds, for world files
// and the control endpoint. Fields left out keep their current value.
type SeedRollout struct {
	CreateMS    *int64 `json:"create_ms,omitempty"`
	DeployMS    *int64 `json:"deploy_ms,omitempty"`
	UpdateMS    *int64 `json:"update_ms,omitempty"`
	DeleteMS    *int64 `json:"delete_ms,omitempty"`
	WaitMaxMS   *int64 `json:"wait_max_ms,omitempty"`
	RetentionMS *int64 `json:"retention_ms,omitempty"`
	// ReadyDespiteFailedRevision is Rollout.ReadyDespiteFailedRevision.
	ReadyDespiteFailedRevision *bool `json:"ready_despite_failed_revision,omitempty"`
}

// apply returns r changed as sr says.
func (sr SeedRollout) apply(r Rollout) (Rollout, error) {
	set := func(name string, v *int64, d *time.Duration, negativeOK bool) error {
		if v == nil {
			return nil
		}
		if *v < 0 && !negativeOK {
			return fmt.Errorf("rollout %s must not be negative; got %d", name, *v)
		}
		*d = time.Duration(*v) * time.Millisecond
		return nil
	}
	for _, f := range []struct {
		name       string
		v          *int64
		d          *time.Duration
		negativeOK bool
	}{
		{"create_ms", sr.CreateMS, &r.Create, false},
		{"deploy_ms", sr.DeployMS, &r.Deploy, false},
		{"update_ms", sr.UpdateMS, &r.Update, false},
		{"delete_ms", sr.DeleteMS, &r.Delete, false},
		{"wait_max_ms", sr.WaitMaxMS, &r.WaitMax, true},
		{"retention_ms", sr.RetentionMS, &r.Retention, false},
	} {
		if err := set(f.name, f.v, f.d, f.negativeOK); err != nil {
			return r, err
		}
	}
	if sr.ReadyDespiteFailedRevision != nil {
		r.ReadyDespiteFailedRevision = *sr.ReadyDespiteFailedRevision
	}
	return r, nil
}

// writeKind is the kind of write an operation belongs to.
type writeKind int

const (
	writeCreate writeKind = iota
	writeDeploy
	writeUpdate
	writeDelete
)

func (r Rollout) delay(k writeKind) time.Duration {
	switch k {
	case writeCreate:
		return r.Create
	case writeDeploy:
		return r.Deploy
	case writeUpdate:
		return r.Update
	}
	return r.Delete
}

// ForgetOperations drops every finished operation now, as Cloud Run does
// after a while: a later GetOperation or WaitOperation of one is NOT_FOUND.
func (s *Server) ForgetOperations() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for name, op := range s.f.ops {
		if op.proto.GetDone() {
			delete(s.f.ops, name)
		}
	}
}
