package rollback

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSetupHint(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string // a word the hint must hold; "" for none
	}{
		{fmt.Errorf("get api: %w", ErrNotFound), "--service"},
		{fmt.Errorf("get api: %w", ErrPermission), "roles/run.viewer"},
		{fmt.Errorf("get api: %w", ErrUnauthenticated), "application-default login"},
		{fmt.Errorf("get api: %w", ErrUnavailable), ""},
		{errors.New("other"), ""},
	} {
		got := SetupHint(tt.err)
		if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
			t.Errorf("SetupHint(%v) = %q, want it to hold %q", tt.err, got, tt.want)
		}
	}
}

// A run that stopped at the first read of a service it cannot work on, before
// any write, is bad input; a run that read the service fine and then failed
// is not, and neither is one that wrote.
func TestFirstReadsClassify(t *testing.T) {
	m := apiWorld()
	ref := m.Service().Ref
	w := WatchFirstReads(m)
	m.fail["GetService"] = []error{fmt.Errorf("get: %w", ErrNotFound)}
	if _, err := w.GetService(context.Background(), ref); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetService = %v, want not found", err)
	}
	// A later read's error does not replace the first.
	if _, err := w.GetService(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	reportOf := func(result string, writes int64) *Report {
		return &Report{Result: result, Service: ReportService{Project: ref.Project, Region: ref.Region, Name: ref.Name},
			APICalls: APICalls{Writes: writes}}
	}
	stopped, wrote, passed := reportOf(ResultError, 0), reportOf(ResultError, 1), reportOf(ResultPass, 0)
	other := reportOf(ResultError, 0)
	other.Service.Name = "web"
	w.Classify(stopped, wrote, passed, other)
	if !stopped.BadInput || stopped.Result != ResultAborted || !strings.Contains(stopped.Hint, "--service") || !strings.HasSuffix(stopped.Hint, "nothing was changed") {
		t.Errorf("stopped at the first read: %+v, want bad input, aborted, with the hint", stopped)
	}
	for name, r := range map[string]*Report{"wrote": wrote, "passed": passed, "another service": other} {
		if r.BadInput {
			t.Errorf("%s: classified as bad input", name)
		}
	}

	// A first read that worked leaves every report as it is.
	m2 := apiWorld()
	w2 := WatchFirstReads(m2)
	if _, err := w2.GetService(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	r := reportOf(ResultError, 0)
	w2.Classify(r)
	if r.BadInput || r.Result != ResultError {
		t.Errorf("after a good first read: %+v, want it unchanged", r)
	}
}

func TestReaderFailedReadIsBadInput(t *testing.T) {
	m := apiWorld()
	m.fail["GetService"] = []error{fmt.Errorf("get: %w", ErrPermission), fmt.Errorf("get: %w", ErrUnavailable)}
	rd := &Reader{Cloud: m}
	rep, err := rd.Status(context.Background(), m.Service().Ref)
	if !errors.Is(err, ErrPermission) || !rep.BadInput || rep.Result != ResultAborted || !strings.Contains(rep.Hint, "roles/run.viewer") {
		t.Errorf("Status = %+v, %v; want bad input with the permission hint", rep, err)
	}
	rep, _, err = rd.Snapshot(context.Background(), m.Service().Ref)
	if !errors.Is(err, ErrUnavailable) || !rep.BadInput || rep.Hint != "nothing was changed" {
		t.Errorf("Snapshot = %+v, %v; want bad input, nothing changed", rep, err)
	}
}

// fixedProbe answers every wait with res.
type fixedProbe struct{ res ProbeResult }

func (p fixedProbe) WaitHealthy(context.Context, string, Expect) ProbeResult { return p.res }
func (p fixedProbe) WaitFailure(context.Context, string, Expect) ProbeResult { return p.res }

func TestURLCheck(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	res := ProbeResult{OK: true, Version: "1.1.0", Revision: "api-00002-def", Detail: "healthy; 2 of 2",
		URL: "https://x/api/v1/health/", Attempts: 3, Errors: 1, Elapsed: 1500 * time.Millisecond}
	c := &URLCheck{Probe: fixedProbe{res}, Now: func() time.Time { return at }}
	rep := c.Run(context.Background(), "https://x", Expect{})
	want := ProbeSection{URL: "https://x", HealthURL: res.URL, Healthy: true, Attempts: 3, Errors: 1,
		ElapsedMS: 1500, Version: "1.1.0", Revision: "api-00002-def", Last: res.Detail}
	if rep.Probe == nil || *rep.Probe != want {
		t.Errorf("probe section = %+v, want %+v", rep.Probe, want)
	}
	if rep.Result != ResultPass || rep.Error != "" || len(rep.Steps) != 1 || rep.Steps[0].Name != StepProbe ||
		rep.Steps[0].Status != StepPass || rep.Steps[0].DurationMS != 1500 || rep.Timings.Total != 1500 || rep.LastGood == nil {
		t.Errorf("report = %+v", rep)
	}

	res.OK = false
	rep = (&URLCheck{Probe: fixedProbe{res}}).Run(context.Background(), "https://x", Expect{})
	if rep.Result != ResultFail || rep.Steps[0].Status != StepFail || !strings.Contains(rep.Error, "https://x is unhealthy after 3 attempt(s): healthy; 2 of 2") || rep.Hint == "" {
		t.Errorf("unhealthy: report = %+v", rep)
	}
}

type listFunc func(ctx context.Context, project, region string) ([]*Service, error)

func (f listFunc) ListServices(ctx context.Context, project, region string) ([]*Service, error) {
	return f(ctx, project, region)
}

func TestSelectionFileAndLabels(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "services.txt")
	if err := os.WriteFile(file, []byte("api\n# a comment\neurope-west1/web\nother-proj/us-east1/checkout\napi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Selection{Project: "p-123456", Region: "us-central1"}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "no service given") {
		t.Errorf("Check of nothing = %v", err)
	}
	if err := s.AddServicesFile(file); err != nil {
		t.Fatal(err)
	}
	want := []ServiceRef{{"p-123456", "us-central1", "api"}, {"p-123456", "europe-west1", "web"}, {"other-proj", "us-east1", "checkout"}}
	if fmt.Sprint(s.Refs) != fmt.Sprint(want) {
		t.Errorf("refs = %v, want %v", s.Refs, want)
	}
	if err := s.AddServicesFile(filepath.Join(dir, "nosuch")); err == nil || !strings.HasPrefix(err.Error(), "--services-file ") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("Not_A_Name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.AddServicesFile(bad); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("bad name: %v", err)
	}

	// Labels list the services of the project and region, and match all.
	if err := s.AddLabel("env=dev"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLabel("nolabel"); err == nil {
		t.Error("AddLabel without =: no error")
	}
	var listed string
	lister := listFunc(func(_ context.Context, project, region string) ([]*Service, error) {
		listed = project + "/" + region
		return []*Service{
			{Ref: ServiceRef{"p-123456", "us-central1", "api"}, Labels: map[string]string{"env": "dev"}},
			{Ref: ServiceRef{"p-123456", "us-central1", "jobs"}, Labels: map[string]string{"env": "dev"}},
			{Ref: ServiceRef{"p-123456", "us-central1", "prod"}, Labels: map[string]string{"env": "prod"}},
		}, nil
	})
	refs, err := s.ResolveFrom(context.Background(), lister)
	if err != nil {
		t.Fatal(err)
	}
	if listed != "p-123456/us-central1" || len(refs) != 4 || refs[3].Name != "jobs" {
		t.Errorf("ResolveFrom = %v (listed %s), want the file's three and jobs", refs, listed)
	}
	failing := listFunc(func(context.Context, string, string) ([]*Service, error) {
		return nil, fmt.Errorf("list: %w", ErrPermission)
	})
	if _, err := s.ResolveFrom(context.Background(), failing); !errors.Is(err, ErrPermission) {
		t.Errorf("ResolveFrom with a failing list = %v", err)
	}
	noLabels := &Selection{Refs: want[:1]}
	if refs, err := noLabels.ResolveFrom(context.Background(), failing); err != nil || len(refs) != 1 {
		t.Errorf("without labels, ResolveFrom lists nothing: %v, %v", refs, err)
	}
	badRegion := &Selection{Project: "p-123456", Region: "us central"}
	_ = badRegion.AddLabel("env=dev")
	if err := badRegion.Check(); err == nil || !strings.HasPrefix(err.Error(), "--label: ") {
		t.Errorf("labels in a bad region: %v", err)
	}
}

// A snapshot written by Encode reads back as itself; a file that is not a
// snapshot of the service asked for is refused, naming the flag and file.
func TestReadSnapshot(t *testing.T) {
	m := apiWorld()
	snap := TakeSnapshot(m.Service(), time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	b, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if b[len(b)-1] != '\n' {
		t.Error("Encode: no final line break")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "snap.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot("--restore-from", path, snap.Service)
	if err != nil {
		t.Fatal(err)
	}
	if got.Etag != snap.Etag || got.Traffic.String() != snap.Traffic.String() || !got.TakenAt.Equal(snap.TakenAt) {
		t.Errorf("read back %+v, want %+v", got, snap)
	}
	other := snap.Service
	other.Name = "web"
	if _, err := ReadSnapshot("--restore-from", path, other); err == nil || !strings.Contains(err.Error(), "is a snapshot of") {
		t.Errorf("snapshot of another service: %v", err)
	}
	notJSON := filepath.Join(dir, "x.json")
	if err := os.WriteFile(notJSON, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{notJSON, filepath.Join(dir, "nosuch.json")} {
		if _, err := ReadSnapshot("--restore-from", p, snap.Service); err == nil || !strings.HasPrefix(err.Error(), "--restore-from "+p) {
			t.Errorf("ReadSnapshot(%s) = %v, want an error naming the flag and file", p, err)
		}
	}
}
