package rollback

import (
	"cmp"
	"context"
	"fmt"
	"time"
)

// ServiceStatus is what "status" shows of a service: ready state, desired and
// actual split, any run in flight, and every revision with its share of
// traffic, tags and (when probed) health.
type ServiceStatus struct {
	Ready              bool             `json:"ready"`
	Message            string           `json:"message,omitempty"`
	Converged          bool             `json:"converged"`
	Generation         int64            `json:"generation"`
	ObservedGeneration int64            `json:"observed_generation"`
	Etag               string           `json:"etag"`
	LatestReady        string           `json:"latest_ready_revision"`
	LatestCreated      string           `json:"latest_created_revision"`
	Traffic            Split            `json:"traffic"`
	Actual             []TargetStatus   `json:"actual"`
	InFlight           string           `json:"in_flight,omitempty"`
	Revisions          []RevisionStatus `json:"revisions"`
}

// RevisionStatus is one revision in a status.
type RevisionStatus struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Ready   bool      `json:"ready"`
	Percent int32     `json:"percent"`
	Tags    []string  `json:"tags,omitempty"`
	Version string    `json:"version,omitempty"`
	Image   string    `json:"image,omitempty"`
	// Probe describes the probe of the revision (status --probe), one line.
	Probe   string `json:"probe,omitempty"`
	Healthy *bool  `json:"healthy,omitempty"`
}

// Probed reports whether any revision of the status was probed.
func (s *ServiceStatus) Probed() bool {
	for _, r := range s.Revisions {
		if r.Probe != "" {
			return true
		}
	}
	return false
}

// StatusStep is the name of the one step of a status or snapshot report: the read.
const StatusStep = "read"

// Reader runs the read-only commands, status and snapshot. It never writes.
type Reader struct {
	Cloud CloudRun
	// Probe, when set, checks each serving or tagged revision: on its tag
	// URL, or on the service URL when it serves 100%.
	Probe Prober
	Calls func() (reads, writes int64)
	Now   func() time.Time
}

func (s *Reader) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// step runs fn as the report's one step, StatusStep.
func (s *Reader) step(rep *Report, fn func() (string, error)) error {
	start := s.now()
	detail, err := fn()
	status := StepPass
	if err != nil {
		status, detail = StepFail, err.Error()
	}
	recordStep(rep, nil, StatusStep, status, start, s.now().Sub(start), detail)
	return err
}

// failed concludes a read that failed: result aborted, nothing changed, and a
// service the command cannot read is bad input, with a hint on the set-up
// when the error names one.
func (s *Reader) failed(rep *Report, err error, start time.Time) {
	conclude(rep, ResultAborted, err.Error(), cmp.Or(SetupHint(err), "nothing was changed"), s.Calls, s.now().Sub(start))
	rep.BadInput = true
}

// Status reads one service and returns the report of command "status":
// result pass with the Status section, or result aborted (nothing was
// changed, BadInput) with the error.
func (s *Reader) Status(ctx context.Context, ref ServiceRef) (rep *Report, err error) {
	start := s.now()
	rep = &Report{Schema: ReportSchema, Command: "status",
		Service: ReportService{Project: ref.Project, Region: ref.Region, Name: ref.Name}}
	var st *ServiceStatus
	err = s.step(rep, func() (string, error) {
		var err error
		st, err = s.read(ctx, ref, rep)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d revision(s), traffic %s", len(st.Revisions), st.Traffic), nil
	})
	if err != nil {
		s.failed(rep, err, start)
		return rep, err
	}
	rep.Status = st
	conclude(rep, ResultPass, "", "", s.Calls, s.now().Sub(start))
	return rep, nil
}

func (s *Reader) read(ctx context.Context, ref ServiceRef, rep *Report) (*ServiceStatus, error) {
	svc, err := s.Cloud.GetService(ctx, ref)
	if err != nil {
		return nil, err
	}
	rep.Service.URI = svc.URI
	revs, err := s.Cloud.ListRevisions(ctx, ref)
	if err != nil {
		return nil, err
	}
	st := &ServiceStatus{
		Ready:              svc.Ready,
		Message:            svc.Message,
		Converged:          svc.Converged(),
		Generation:         svc.Generation,
		ObservedGeneration: svc.ObservedGeneration,
		Etag:               svc.Etag,
		LatestReady:        svc.LatestReadyRevision,
		LatestCreated:      svc.LatestCreatedRevision,
		Traffic:            svc.Traffic,
		Actual:             svc.TrafficStatuses,
		InFlight:           inFlight(svc),
		Revisions:          []RevisionStatus{},
	}
	for _, r := range revs {
		rs := RevisionStatus{Name: r.Name, Created: r.CreateTime, Ready: r.Ready, Version: r.Env["APP_VERSION"], Image: r.Image}
		var tagURL string
		for _, t := range svc.TrafficStatuses {
			if t.Revision != r.Name {
				continue
			}
			rs.Percent += t.Percent
			if t.Tag != "" {
				rs.Tags = append(rs.Tags, t.Tag)
				tagURL = cmp.Or(tagURL, t.URI)
			}
		}
		if s.Probe != nil && (rs.Percent > 0 || len(rs.Tags) > 0) {
			s.probe(ctx, &rs, tagURL, svc.URI)
		}
		st.Revisions = append(st.Revisions, rs)
	}
	return st, nil
}

// probe checks one revision on its tag URL, or on the service URL when it
// serves all traffic.
func (s *Reader) probe(ctx context.Context, rs *RevisionStatus, tagURL, serviceURL string) {
	var res ProbeResult
	switch {
	case tagURL != "":
		res = s.Probe.WaitHealthy(ctx, tagURL, Expect{})
		rs.Probe = res.Detail
	case rs.Percent == 100 && serviceURL != "":
		res = s.Probe.WaitHealthy(ctx, serviceURL, Expect{})
		rs.Probe = res.Detail + " (via the service URL)"
	default:
		rs.Probe = "no tag URL: cannot probe this revision alone"
		return
	}
	ok := res.OK
	rs.Healthy = &ok
	if res.Version != "" {
		rs.Version = res.Version
	}
}

// Snapshot reads one service and returns its snapshot and the report of
// command "snapshot" (the Snapshot section's File is the caller's to fill).
func (s *Reader) Snapshot(ctx context.Context, ref ServiceRef) (*Report, Snapshot, error) {
	start := s.now()
	rep := &Report{Schema: ReportSchema, Command: "snapshot",
		Service: ReportService{Project: ref.Project, Region: ref.Region, Name: ref.Name}}
	var snap Snapshot
	err := s.step(rep, func() (string, error) {
		svc, err := s.Cloud.GetService(ctx, ref)
		if err != nil {
			return "", err
		}
		rep.Service.URI = svc.URI
		snap = TakeSnapshot(svc, s.now())
		return fmt.Sprintf("traffic %s, generation %d", svc.Traffic, svc.Generation), nil
	})
	if err != nil {
		s.failed(rep, err, start)
		return rep, snap, err
	}
	rep.Snapshot = &SnapshotSection{TakenAt: snap.TakenAt.Format(time.RFC3339Nano), Traffic: snap.Traffic,
		LatestReady: snap.LatestReady, Etag: snap.Etag, Generation: snap.Generation}
	conclude(rep, ResultPass, "", "", s.Calls, s.now().Sub(start))
	return rep, snap, nil
}

// inFlight describes the run whose lease or journal is on the service, or "".
func inFlight(svc *Service) string {
	lease, journal, err := LeaseAndJournal(svc)
	switch {
	case err != nil:
		return "unreadable runrollback annotation (" + err.Error() + "): run 'runrollback recover'"
	case lease != nil:
		return fmt.Sprintf("%s by %s since %s (lease until %s)", lease.Command, lease.Owner,
			lease.Started.UTC().Format(time.RFC3339), lease.Expires.UTC().Format(time.RFC3339))
	case journal != nil:
		return fmt.Sprintf("interrupted %s by %s: run 'runrollback recover'", journal.Command, journal.Owner)
	}
	return ""
}

// DescribeHealthy says what a healthy answer showed: "healthy 1.1.0 from
// api-00002-def", leaving out what the answer did not name.
func DescribeHealthy(res ProbeResult) string {
	s := "healthy"
	if res.Version != "" {
		s += " " + res.Version
	}
	if res.Revision != "" {
		s += " from " + res.Revision
	}
	return s
}
