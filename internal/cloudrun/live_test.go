//go:build live

package cloudrun_test

import (
	"os"
	"testing"

	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// TestContractLive runs the contract suite against real Cloud Run:
//
//	RUNROLLBACK_LIVE_PROJECT=p RUNROLLBACK_LIVE_REGION=us-central1 \
//	RUNROLLBACK_LIVE_SERVICE=rr-contract RUNROLLBACK_LIVE_OLDER=rr-contract-00001-abc \
//	go test -tags live -run TestContractLive ./internal/cloudrun/
//
// The service must have two ready revisions, the newer serving 100%, and
// Application Default Credentials must allow roles/run.developer on it. The
// suite moves its traffic and puts it back.
func TestContractLive(t *testing.T) {
	ref := rollback.ServiceRef{
		Project: os.Getenv("RUNROLLBACK_LIVE_PROJECT"),
		Region:  os.Getenv("RUNROLLBACK_LIVE_REGION"),
		Name:    os.Getenv("RUNROLLBACK_LIVE_SERVICE"),
	}
	older := os.Getenv("RUNROLLBACK_LIVE_OLDER")
	if ref.Project == "" || ref.Region == "" || ref.Name == "" || older == "" {
		t.Skip("set RUNROLLBACK_LIVE_PROJECT, _REGION, _SERVICE and _OLDER to run against real Cloud Run")
	}
	testContract(t, func(t *testing.T) contractEnv {
		c, err := cloudrun.New(t.Context(), cloudrun.Config{})
		if err != nil {
			t.Fatalf("cloudrun.New() = %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return contractEnv{client: c, ref: ref, older: older}
	})
}
