package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
)

func fakeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "fake",
		Usage: "run the fake Cloud Run (Admin API v2 + serving plane) on loopback until interrupted",
		Description: `Prints CLOUD_RUN_EMULATOR_HOST=127.0.0.1:PORT as its first line, then the control endpoint
and one line per service URL, and serves until SIGINT or SIGTERM. Point runrollback (or any
Cloud Run v2 client, plaintext, no credentials; gRPC, or REST at http://HOST:PORT) at it:

    runrollback fake --addr 127.0.0.1:8681 &        # or copy the first line it prints
    export CLOUD_RUN_EMULATOR_HOST=127.0.0.1:8681
    runrollback status --service api                # project and region default to the fake's

Fault injection and inspection for other processes: see fakes/README.md.

` + exitHelp("fake"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:0", Usage: "listen `HOST:PORT` (loopback) for gRPC and REST"},
			&cli.StringFlag{Name: "control-addr", Value: "127.0.0.1:0", Usage: "control endpoint listen `HOST:PORT` (loopback)"},
			&cli.StringFlag{Name: "seed", Usage: "load the world from a JSON `FILE` instead of the default world"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			for _, flag := range []string{"addr", "control-addr"} {
				if err := loopbackAddr(c.String(flag)); err != nil {
					return usageError{fmt.Errorf("--%s: %w", flag, err)}
				}
			}
			srv, plane, err := startLocalFake(c.String("addr"), c.String("seed"))
			if err != nil {
				return err
			}
			defer srv.Close()
			defer plane.Close()
			ln, err := net.Listen("tcp", c.String("control-addr"))
			if err != nil {
				return fmt.Errorf("listen for the control endpoint: %w", err)
			}
			hs := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = hs.Serve(ln) }()
			defer hs.Close()

			fmt.Fprintf(e.stdout, "CLOUD_RUN_EMULATOR_HOST=%s\n", srv.Addr)
			fmt.Fprintf(e.stdout, "RUNROLLBACK_FAKE_CONTROL=http://%s\n", ln.Addr())
			for _, s := range srv.Services() {
				fmt.Fprintf(e.stdout, "%s %s\n", shortResource(s.GetName()), s.GetUri())
				for _, t := range s.GetTrafficStatuses() {
					if t.GetTag() != "" {
						fmt.Fprintf(e.stdout, "%s tag %s %s\n", shortResource(s.GetName()), t.GetTag(), t.GetUri())
					}
				}
			}
			<-c.Context.Done()
			fmt.Fprintln(e.stderr, "fake: stopping")
			return nil
		},
	}
}

func shortResource(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}

// loopbackAddr accepts HOST:PORT on a loopback address only: the fake has no auth.
func loopbackAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT, e.g. 127.0.0.1:0", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: bad port", addr)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("the fake listens on loopback only (127.0.0.1 or localhost): it has no authentication")
	}
	return nil
}
