package fakerun_test

import (
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

// breakStartup deploys, to web, a revision that never becomes Ready.
func breakStartup(t *testing.T, e *env) string {
	t.Helper()
	_, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: webName, Template: template("us-docker.pkg.dev/local-project/app/web:1.0.0", "APP_VERSION", "1.0.0", "RUNROLLBACK_BREAK", "startup")},
		UpdateMask: mask("template"),
	})
	wantCode(t, "deploy of a revision that fails to start", err, codes.FailedPrecondition, notReady)
	return e.get(t, webName).GetLatestCreatedRevision()
}

func latestStatus(t *testing.T, svc *runpb.Service) string {
	t.Helper()
	for _, ts := range svc.GetTrafficStatuses() {
		if ts.GetType() == typeLatest {
			return ts.GetRevision()
		}
	}
	t.Fatalf("no LATEST entry in traffic_statuses %v", svc.GetTrafficStatuses())
	return ""
}

// TestLatestIsTheLatestReadyRevision: a LATEST target resolves to the latest
// revision that is Ready — not a revision that failed to start, nor one whose
// rollout has not finished ("Allocates instances to the Service's latest
// ready Revision", TrafficTargetAllocationType in traffic_target.proto).
func TestLatestIsTheLatestReadyRevision(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Run("after a revision that fails to start", func(t *testing.T) {
				e := worldEnv(t, tr, fakerun.DefaultWorld())
				broken := breakStartup(t, e)
				svc := e.get(t, webName)
				if got := latestStatus(t, svc); got != "web-00001-aaa" {
					t.Errorf("LATEST resolves to %s; want web-00001-aaa, the latest ready", got)
				}
				if svc.GetLatestReadyRevision() != webName+"/revisions/web-00001-aaa" || svc.GetLatestCreatedRevision() != broken {
					t.Errorf("latest ready %s, created %s", svc.GetLatestReadyRevision(), svc.GetLatestCreatedRevision())
				}
				// A later write with LATEST (here: adding a tag) rolls out, to the ready one.
				got, err := e.setTraffic(t, webName, latest(100), tagged("web-00001-aaa", 0, "stable"))
				if err != nil {
					t.Fatalf("traffic write after the failure = %v", err)
				}
				if latestStatus(t, got) != "web-00001-aaa" || got.GetObservedGeneration() != got.GetGeneration() {
					t.Errorf("after the write: statuses %v, observed %d of %d", got.GetTrafficStatuses(), got.GetObservedGeneration(), got.GetGeneration())
				}
				if r, ok := e.srv.Routes(webName, ""); !ok || len(r) != 1 || r[0].Revision != "web-00001-aaa" {
					t.Errorf("Routes(web) = %v; want web-00001-aaa", r)
				}
			})
			t.Run("while a rollout is in progress", func(t *testing.T) {
				e := worldEnv(t, tr, fakerun.DefaultWorld(), fakerun.WithRollout(slowRollout()))
				op, err := e.svcs.UpdateService(t.Context(), &runpb.UpdateServiceRequest{
					Service:    &runpb.Service{Name: webName, Template: template("us-docker.pkg.dev/local-project/app/web:1.0.0", "APP_VERSION", "1.0.1")},
					UpdateMask: mask("template"),
				})
				if err != nil {
					t.Fatal(err)
				}
				mid := e.get(t, webName)
				newRev := mid.GetLatestCreatedRevision()
				if got := latestStatus(t, mid); got != "web-00001-aaa" || shortName(newRev) == "web-00001-aaa" {
					t.Errorf("mid-rollout LATEST resolves to %s (latest created %s); want web-00001-aaa", got, newRev)
				}
				if r, _ := e.srv.Routes(webName, ""); len(r) != 1 || r[0].Revision != "web-00001-aaa" {
					t.Errorf("Routes mid-rollout = %v", r)
				}
				e.srv.ReleaseOperations()
				done, err := waitOp(t, op)
				if err != nil || latestStatus(t, done) != shortName(newRev) {
					t.Errorf("after the rollout: %v, LATEST %v; want %s", err, done.GetTrafficStatuses(), newRev)
				}
			})
		})
	}
}

// TestReadyAfterFailedRevision: while the latest created revision is one
// that failed to start, the service is not Ready, even once a later write
// that builds no revision has rolled out — the v2 Service.reconciling comment
// says a successful reconciliation leaves latest_ready_revision equal to
// latest_created_revision. Whether Cloud Run keeps Ready False then is not
// verified: the stricter reading, relaxed by Rollout.ReadyDespiteFailedRevision.
func TestReadyAfterFailedRevision(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			for _, relaxed := range []bool{false, true} {
				name := map[bool]string{false: "default", true: "ReadyDespiteFailedRevision"}[relaxed]
				t.Run(name, func(t *testing.T) {
					ro := fakerun.DefaultRollout()
					ro.ReadyDespiteFailedRevision = relaxed
					e := worldEnv(t, tr, fakerun.DefaultWorld(), fakerun.WithRollout(ro))
					broken := breakStartup(t, e)
					svc := e.get(t, webName)
					tc := svc.GetTerminalCondition()
					if tc.GetState() != runpb.Condition_CONDITION_FAILED || tc.GetReason() != runpb.Condition_REVISION_FAILED {
						t.Errorf("terminal_condition after the failure = %v; want FAILED, REVISION_FAILED", tc)
					}
					got, err := e.setTraffic(t, webName, latest(100), tagged("web-00001-aaa", 0, "stable"))
					if err != nil {
						t.Fatalf("traffic write = %v", err)
					}
					want := runpb.Condition_CONDITION_FAILED
					if relaxed {
						want = runpb.Condition_CONDITION_SUCCEEDED
					}
					if tc := got.GetTerminalCondition(); tc.GetState() != want {
						t.Errorf("terminal_condition after a traffic write = %v; want %v (latest created is still %s)", tc, want, shortName(broken))
					}
					var configs *runpb.Condition
					for _, c := range got.GetConditions() {
						if c.GetType() == "ConfigurationsReady" {
							configs = c
						}
					}
					if configs.GetState() != runpb.Condition_CONDITION_FAILED {
						t.Errorf("ConfigurationsReady = %v; want FAILED while the latest created revision failed", configs)
					}
					// A revision that starts makes the service Ready again.
					fresh := e.mustUpdate(t, &runpb.UpdateServiceRequest{
						Service:    &runpb.Service{Name: webName, Template: template("us-docker.pkg.dev/local-project/app/web:1.0.0", "APP_VERSION", "1.0.0")},
						UpdateMask: mask("template"),
					})
					if fresh.GetTerminalCondition().GetState() != runpb.Condition_CONDITION_SUCCEEDED || fresh.GetLatestReadyRevision() != fresh.GetLatestCreatedRevision() {
						t.Errorf("after a good revision: terminal %v, latest ready %s, created %s", fresh.GetTerminalCondition(), fresh.GetLatestReadyRevision(), fresh.GetLatestCreatedRevision())
					}
				})
			}
		})
	}
}
