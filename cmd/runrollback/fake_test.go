package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestFakeCommand runs `runrollback fake`, reads the emulator line it prints
// first, and drives the fake with a bare gRPC client (no Google client library,
// no credentials): read the default world, move traffic; then curls the api URL.
func TestFakeCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"runrollback", "fake"}, pw, io.Discard, func(string) string { return "" })
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var out []string
	urls := map[string]string{}
	for len(urls) < 3 && lines.Scan() {
		out = append(out, lines.Text())
		if f := strings.Fields(lines.Text()); len(f) == 2 {
			urls[f[0]] = f[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if len(out) < 2 || !strings.HasPrefix(out[0], "CLOUD_RUN_EMULATOR_HOST=127.0.0.1:") || !strings.HasPrefix(out[1], "RUNROLLBACK_FAKE_CONTROL=http://127.0.0.1:") {
		t.Fatalf("first lines = %q, want the emulator host, then the control endpoint", out)
	}
	if urls["api"] == "" || urls["web"] == "" || urls["checkout"] == "" {
		t.Fatalf("service lines = %q, want one URL per service of the default world", out)
	}

	conn, err := grpc.NewClient(strings.TrimPrefix(out[0], "CLOUD_RUN_EMULATOR_HOST="), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	svcs := runpb.NewServicesClient(conn)
	name := "projects/local-project/locations/us-central1/services/api"
	svc, err := svcs.GetService(ctx, &runpb.GetServiceRequest{Name: name})
	if err != nil {
		t.Fatalf("GetService(%s) = %v", name, err)
	}
	if got := renderTargets(svc.GetTraffic()); got != "api-00002-def=100" {
		t.Errorf("api traffic = %s, want api-00002-def=100", got)
	}
	op, err := svcs.UpdateService(ctx, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: name, Etag: svc.GetEtag(), Traffic: []*runpb.TrafficTarget{pinTarget("api-00001-abc", 100)}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic"}},
	})
	if err != nil {
		t.Fatalf("UpdateService = %v", err)
	}
	// The rollout is asynchronous: users reach the new split once the
	// operation is done.
	ops := longrunningpb.NewOperationsClient(conn)
	for deadline := time.Now().Add(10 * time.Second); !op.GetDone(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("operation %s not done after 10s", op.GetName())
		}
		if op, err = ops.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: op.GetName()}); err != nil {
			t.Fatalf("GetOperation = %v", err)
		}
	}
	resp, err := http.Get(urls["api"] + "/api/v1/health/")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status, Version, Revision string }
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || health.Version != "1.0.0" || health.Revision != "api-00001-abc" {
		t.Errorf("health of api after moving traffic = %+v, %v; want 1.0.0 from api-00001-abc", health, err)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("fake exit code = %d, want 0", code)
	}
}

// TestFakeCommandSeed starts the fake with --seed: the world in the file, not
// the default one; a bad seed file is a usage error.
func TestFakeCommandSeed(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "world.json")
	world := `{"services":[{"project":"p-123456","region":"europe-west4","name":"solo",
		"revisions":[{"name":"solo-00001-aaa","image":"solo:1","env":{"APP_VERSION":"1.0.0"}}]}]}`
	if err := os.WriteFile(seed, []byte(world), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"runrollback", "fake", "--seed", seed}, pw, io.Discard, func(string) string { return "" })
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var out []string
	for len(out) < 3 && lines.Scan() {
		out = append(out, lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if len(out) != 3 || !strings.HasPrefix(out[2], "solo http://127.0.0.1:") {
		t.Errorf("output = %q, want the emulator line, the control line and solo's URL", out)
	}
	cancel()
	<-done

	if err := os.WriteFile(seed, []byte(`{"services": [{"nme": "typo"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	if code := run(t.Context(), []string{"runrollback", "fake", "--seed", seed}, io.Discard, &errb, func(string) string { return "" }); code != exitUsage {
		t.Errorf("fake --seed with a bad file: exit %d, want %d (stderr %q)", code, exitUsage, errb.String())
	}
}

// TestFakeCommandSeedEndless starts the fake with --seed /dev/zero: it stops
// reading at the cap and exits 2 with a clear error, printing nothing.
func TestFakeCommandSeedEndless(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	var out, errb strings.Builder
	code := run(t.Context(), []string{"runrollback", "fake", "--seed", "/dev/zero"}, &out, &errb, func(string) string { return "" })
	if code != exitUsage || !strings.Contains(errb.String(), "--seed /dev/zero") || !strings.Contains(errb.String(), "larger than 8 MiB") || out.Len() != 0 {
		t.Errorf("fake --seed /dev/zero: exit %d, stdout %q, stderr %q; want exit %d, nothing on stdout, and why on stderr", code, out.String(), errb.String(), exitUsage)
	}
}
