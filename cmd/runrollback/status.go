package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show revisions, traffic percent, tags, ready state, and desired vs actual split",
		Flags: withGlobal(append(probeFlags(),
			&cli.BoolFlag{Name: "probe", Usage: "also probe the health and version of every serving or tagged revision"},
		)...),
		Action: func(c *cli.Context) error {
			g, po, err := parseServiceFlags(c)
			if err != nil {
				return err
			}
			be, err := openBackend(c.Context, g)
			if err != nil {
				return err
			}
			defer be.close()
			var all []statusReport
			for _, ref := range g.refs() {
				st, err := readStatus(c, be, ref, po, po.checker(e, g), c.Bool("probe"))
				if err != nil {
					return readOnlyError(err)
				}
				all = append(all, st)
			}
			if g.output == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if len(all) == 1 {
					return enc.Encode(all[0])
				}
				return enc.Encode(all)
			}
			for i, st := range all {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				if err := printStatus(e, st); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

type statusReport struct {
	Schema             string                  `json:"schema"`
	Service            rollback.ReportService  `json:"service"`
	Ready              bool                    `json:"ready"`
	Message            string                  `json:"message,omitempty"`
	Converged          bool                    `json:"converged"`
	Generation         int64                   `json:"generation"`
	ObservedGeneration int64                   `json:"observed_generation"`
	Etag               string                  `json:"etag"`
	LatestReady        string                  `json:"latest_ready_revision"`
	LatestCreated      string                  `json:"latest_created_revision"`
	Traffic            rollback.Split          `json:"traffic"`
	Actual             []rollback.TargetStatus `json:"actual"`
	InFlight           string                  `json:"in_flight,omitempty"`
	Revisions          []revisionStatus        `json:"revisions"`
}

type revisionStatus struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Ready   bool      `json:"ready"`
	Percent int32     `json:"percent"`
	Tags    []string  `json:"tags,omitempty"`
	Version string    `json:"version,omitempty"`
	Image   string    `json:"image,omitempty"`
	Probe   string    `json:"probe,omitempty"`
	Healthy *bool     `json:"healthy,omitempty"`
}

func readStatus(c *cli.Context, be *backend, ref rollback.ServiceRef, po probeOpts, checker *probe.Checker, doProbe bool) (statusReport, error) {
	svc, err := be.cloud.GetService(c.Context, ref)
	if err != nil {
		return statusReport{}, err
	}
	revs, err := be.cloud.ListRevisions(c.Context, ref)
	if err != nil {
		return statusReport{}, err
	}
	st := statusReport{
		Schema:             "runrollback.status/v1",
		Service:            rollback.ReportService{Project: ref.Project, Region: ref.Region, Name: ref.Name, URI: svc.URI},
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
	}
	if lease, journal, err := rollback.LeaseAndJournal(svc); err == nil && (lease != nil || journal != nil) {
		switch {
		case lease != nil:
			st.InFlight = fmt.Sprintf("%s by %s since %s (lease until %s)", lease.Command, lease.Owner, lease.Started.Format(time.RFC3339), lease.Expires.Format(time.RFC3339))
		default:
			st.InFlight = fmt.Sprintf("interrupted %s by %s: run 'runrollback recover'", journal.Command, journal.Owner)
		}
	}
	for _, r := range revs {
		rs := revisionStatus{Name: r.Name, Created: r.CreateTime, Ready: r.Ready, Version: r.Env["APP_VERSION"], Image: r.Image}
		var tagURL string
		for _, t := range svc.TrafficStatuses {
			if t.Revision == r.Name {
				rs.Percent += t.Percent
				if t.Tag != "" {
					rs.Tags = append(rs.Tags, t.Tag)
					tagURL = t.URI
				}
			}
		}
		if doProbe && (rs.Percent > 0 || len(rs.Tags) > 0) {
			switch {
			case tagURL != "":
				v := checker.WaitHealthy(c.Context, tagURL, probe.Expect{}, po.policy())
				rs.Probe = describeAttempt(v.Last)
				rs.Healthy = &v.Healthy
				if v.Last.Version != "" {
					rs.Version = v.Last.Version
				}
			case rs.Percent == 100 && svc.URI != "":
				v := checker.WaitHealthy(c.Context, svc.URI, probe.Expect{}, po.policy())
				rs.Probe = describeAttempt(v.Last) + " (via the service URL)"
				rs.Healthy = &v.Healthy
				if v.Last.Version != "" {
					rs.Version = v.Last.Version
				}
			default:
				rs.Probe = "no tag URL: cannot probe this revision alone"
			}
		}
		st.Revisions = append(st.Revisions, rs)
	}
	return st, nil
}

func printStatus(e *env, st statusReport) error {
	w := e.stdout
	ready := "yes"
	if !st.Ready {
		ready = "NO: " + st.Message
	}
	fmt.Fprintf(w, "service   %s (project %s, region %s)\n", st.Service.Name, st.Service.Project, st.Service.Region)
	fmt.Fprintf(w, "url       %s\n", st.Service.URI)
	fmt.Fprintf(w, "ready     %s; generation %d, observed %d\n", ready, st.Generation, st.ObservedGeneration)
	fmt.Fprintf(w, "desired   %s\n", st.Traffic)
	var actual []string
	for _, t := range st.Actual {
		s := t.Target.String()
		if t.URI != "" && t.Tag != "" {
			s += " (" + t.URI + ")"
		}
		actual = append(actual, s)
	}
	conv := "converged"
	if !st.Converged {
		conv = "NOT converged: desired and actual differ"
	}
	fmt.Fprintf(w, "actual    %s  [%s]\n", strings.Join(actual, ", "), conv)
	if st.InFlight != "" {
		fmt.Fprintf(w, "in flight %s\n", st.InFlight)
	}
	fmt.Fprintln(w)
	header := []string{"REVISION", "CREATED", "READY", "TRAFFIC", "TAGS", "VERSION", "IMAGE"}
	probed := slices.ContainsFunc(st.Revisions, func(r revisionStatus) bool { return r.Probe != "" })
	if probed {
		header = append(header, "PROBE")
	}
	var rows [][]string
	for _, r := range st.Revisions {
		readyCol := "yes"
		if !r.Ready {
			readyCol = "no"
		}
		row := []string{r.Name, r.Created.UTC().Format("2006-01-02 15:04:05"), readyCol, fmt.Sprintf("%d%%", r.Percent),
			strings.Join(r.Tags, ","), r.Version, r.Image}
		if probed {
			row = append(row, report.Sanitize(r.Probe, 80))
		}
		rows = append(rows, row)
	}
	return report.Table(w, header, rows)
}
