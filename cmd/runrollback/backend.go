package main

import (
	"context"
	"fmt"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// backend is the Cloud Run a command talks to, and what to close after.
type backend struct {
	cloud *cloudrun.Client
	close func()
	local bool
}

// metered wraps the client to count one command's calls for its report.
func (b *backend) metered() *rollback.Metered { return &rollback.Metered{CloudRun: b.cloud} }

// openBackend dials real Cloud Run (Application Default Credentials), the fake at
// --emulator-host, or, with --local, an in-process fake seeded with the default world.
func openBackend(ctx context.Context, g globalOpts) (*backend, error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	cfg := cloudrun.Config{Transport: g.transport, EmulatorHost: g.emulatorHost, OperationTimeout: g.opTimeout}
	if g.local || g.emulatorHost != "" {
		// A fake answers in microseconds and its operations take a few
		// milliseconds (fakerun.DefaultRollout): poll often.
		cfg.CallTimeout = 10 * time.Second
		cfg.PollInterval = 5 * time.Millisecond
		cfg.Retry = cloudrun.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	}
	if g.local {
		srv, plane, err := startLocalFake("127.0.0.1:0", "")
		if err != nil {
			return nil, err
		}
		closers = append(closers, srv.Close, plane.Close)
		cfg.EmulatorHost = srv.Addr
	}
	c, err := cloudrun.New(ctx, cfg)
	if err != nil {
		closeAll()
		return nil, setupError{err, "set up Application Default Credentials ('gcloud auth application-default login', or a service account in CI), or use --local to try the fake"}
	}
	closers = append(closers, func() { _ = c.Close() })
	return &backend{cloud: c, close: closeAll, local: g.local}, nil
}

// startLocalFake starts the fake Admin API and its serving plane, seeded with the
// world in seedFile, or the default world.
func startLocalFake(addr, seedFile string) (*fakerun.Server, *fakeapp.Plane, error) {
	world := fakerun.DefaultWorld()
	if seedFile != "" {
		w, err := fakerun.LoadWorld(seedFile)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("--seed %s: %w", seedFile, err)}
		}
		world = w
	}
	srv, err := fakerun.NewServer(fakerun.WithAddr(addr))
	if err != nil {
		return nil, nil, fmt.Errorf("start the fake Cloud Run: %w", err)
	}
	plane := fakeapp.New(srv)
	if err := srv.Seed(world); err != nil {
		plane.Close()
		srv.Close()
		if seedFile != "" { // the world file is bad input: exit 2
			return nil, nil, usageError{fmt.Errorf("--seed %s: %w", seedFile, err)}
		}
		return nil, nil, fmt.Errorf("seed the fake Cloud Run: %w", err)
	}
	return srv, plane, nil
}
