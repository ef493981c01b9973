package report_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runrollback/runrollback/internal/rollback"
)

var update = flag.Bool("update", false, "update testdata/*.golden files")

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("os.WriteFile(%q) = %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("os.ReadFile(%q) = %v (run go test -update to create it)", path, err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// passReport is a drill that passed: every step ran.
func passReport() *rollback.Report {
	before := rollback.Split{{Revision: "api-00001-abc", Percent: 100}, {Revision: "api-00001-abc", Percent: 0, Tag: "last-good"}}
	return &rollback.Report{
		Schema:   rollback.ReportSchema,
		Command:  "test",
		Result:   rollback.ResultPass,
		ExitCode: 0,
		Service:  rollback.ReportService{Project: "proj", Region: "europe-west1", Name: "api", URI: "https://api-xyz.a.run.app"},
		Mode:     &rollback.ReportMode{Break: "health", TrafficPercent: 100},
		Before: &rollback.ReportState{
			Traffic: before, Version: "v1", Revision: "api-00001-abc", Healthy: true, Etag: `"e1"`, Generation: 3,
		},
		BrokenRevision:   "api-drill-k3x9q2",
		LastGood:         []string{"api-00001-abc"},
		After:            &rollback.ReportState{Traffic: before, Version: "v1", Revision: "api-00001-abc", Healthy: true, Etag: `"e7"`, Generation: 6},
		TrafficRestored:  true,
		TemplateRestored: true,
		RevisionsCreated: []string{"api-drill-k3x9q2", "api-00003-fgh"},
		RevisionsDeleted: []string{"api-drill-k3x9q2"},
		Timings:          rollback.Timings{DetectTag: 200, Detect: 100, Restore: 15, Verify: 30, Total: 1234},
		Exposure:         rollback.Exposure{Percent: 100, MS: 310},
		APICalls:         rollback.APICalls{Reads: 12, Writes: 5},
		Steps: []rollback.StepReport{
			{Name: rollback.StepPreflight, Status: rollback.StepPass, StartedAt: at(0), DurationMS: 120, Detail: "api: ready, traffic api-00001-abc=100, healthy v1 from api-00001-abc"},
			{Name: rollback.StepLease, Status: rollback.StepPass, StartedAt: at(120), DurationMS: 40, Detail: "lease taken"},
			{Name: rollback.StepDeploy, Status: rollback.StepPass, StartedAt: at(160), DurationMS: 300, Detail: "revision api-drill-k3x9q2 deployed at 0% with tag drill-k3x9q2"},
			{Name: rollback.StepDetectTag, Status: rollback.StepPass, StartedAt: at(460), DurationMS: 200, Detail: "detector fired on the tag URL after 2 probe(s)"},
			{Name: rollback.StepShift, Status: rollback.StepPass, StartedAt: at(660), DurationMS: 190, Detail: "100% of traffic sent to api-drill-k3x9q2"},
			{Name: rollback.StepDetect, Status: rollback.StepPass, StartedAt: at(850), DurationMS: 100, Detail: "failure seen | 503 <b>down</b>"},
			{Name: rollback.StepRestore, Status: rollback.StepPass, StartedAt: at(950), DurationMS: 15, Detail: "traffic back"},
			{Name: rollback.StepVerify, Status: rollback.StepPass, StartedAt: at(965), DurationMS: 30, Detail: "healthy v1 3 times"},
			{Name: rollback.StepCleanup, Status: rollback.StepWarn, StartedAt: at(995), DurationMS: 239, Detail: "template restored; could not delete api-drill-k3x9q2"},
		},
		Warnings: []string{"could not delete api-drill-k3x9q2: refused by Cloud Run"},
	}
}

// failReport is a drill whose detector never fired.
func failReport() *rollback.Report {
	r := passReport()
	r.Result = rollback.ResultFail
	r.ExitCode = 1
	r.Timings = rollback.Timings{DetectTag: 5000, Restore: 20, Verify: 40, Total: 6100}
	r.Exposure = rollback.Exposure{}
	r.Warnings = nil
	r.Error = "the broken revision answered healthy on its tag URL after 5 probes (200 OK): the app ignored the break, or the probe is blind"
	r.Hint = "make the app honour RUNROLLBACK_BREAK (see README: 'Make your app drillable')"
	r.Steps = []rollback.StepReport{
		{Name: rollback.StepPreflight, Status: rollback.StepPass, StartedAt: at(0), DurationMS: 120, Detail: "ready"},
		{Name: rollback.StepLease, Status: rollback.StepPass, StartedAt: at(120), DurationMS: 40},
		{Name: rollback.StepDeploy, Status: rollback.StepPass, StartedAt: at(160), DurationMS: 300, Detail: "deployed"},
		{Name: rollback.StepDetectTag, Status: rollback.StepFail, StartedAt: at(460), DurationMS: 5000, Detail: r.Error},
		{Name: rollback.StepShift, Status: rollback.StepSkipped, StartedAt: at(5460), Detail: "not reached"},
		{Name: rollback.StepDetect, Status: rollback.StepSkipped, StartedAt: at(5460), Detail: "not reached"},
		{Name: rollback.StepRestore, Status: rollback.StepPass, StartedAt: at(5460), DurationMS: 20, Detail: "traffic back"},
		{Name: rollback.StepVerify, Status: rollback.StepPass, StartedAt: at(5480), DurationMS: 40, Detail: "healthy"},
		{Name: rollback.StepCleanup, Status: rollback.StepPass, StartedAt: at(5520), DurationMS: 580, Detail: "done"},
	}
	return r
}

// abortedReport refused in preflight: nothing changed.
func abortedReport() *rollback.Report {
	return &rollback.Report{
		Schema:          rollback.ReportSchema,
		Command:         "test",
		Result:          rollback.ResultAborted,
		ExitCode:        3,
		Service:         rollback.ReportService{Project: "proj", Region: "europe-west1", Name: "api"},
		Mode:            &rollback.ReportMode{Break: "health", TrafficPercent: 100},
		Before:          &rollback.ReportState{Traffic: rollback.Split{{Latest: true, Percent: 100}}},
		After:           &rollback.ReportState{Traffic: rollback.Split{{Latest: true, Percent: 100}}},
		Timings:         rollback.Timings{Total: 80},
		TrafficRestored: true,
		Steps: []rollback.StepReport{
			{Name: rollback.StepPreflight, Status: rollback.StepFail, StartedAt: at(0), DurationMS: 80, Detail: `aborted: service "api" is not Ready: revision failed`},
			{Name: rollback.StepLease, Status: rollback.StepSkipped, StartedAt: at(80), Detail: "not reached"},
		},
		Error: `aborted: service "api" is not Ready: revision failed`,
	}
}

// errorReport could not confirm the restore.
func errorReport() *rollback.Report {
	r := passReport()
	r.Result = rollback.ResultError
	r.ExitCode = 4
	r.TrafficRestored = false
	r.After = &rollback.ReportState{Traffic: rollback.Split{{Revision: "api-00001-abc", Percent: 0}, {Revision: "api-drill-k3x9q2", Percent: 100, Tag: "drill-k3x9q2"}}}
	r.Error = "restore not confirmed: unavailable: the Cloud Run API did not answer"
	r.Hint = "run: runrollback recover --project proj --region europe-west1 --service api"
	r.Warnings = nil
	r.Steps[6] = rollback.StepReport{Name: rollback.StepRestore, Status: rollback.StepFail, StartedAt: at(950), DurationMS: 120000, Detail: r.Error}
	r.Steps[7] = rollback.StepReport{Name: rollback.StepVerify, Status: rollback.StepSkipped, StartedAt: at(950), Detail: "restore not confirmed"}
	return r
}
