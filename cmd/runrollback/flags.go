package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/rollback"
)

// Global flags, accepted by every command (DESIGN.md §2).
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "project", Usage: "Google Cloud project `ID`", EnvVars: []string{"GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"}},
		&cli.StringFlag{Name: "region", Usage: "Cloud Run `REGION`, e.g. us-central1", EnvVars: []string{"CLOUDSDK_RUN_REGION"}},
		&cli.StringSliceFlag{Name: "service", Usage: "Cloud Run service `NAME`"},
		&cli.BoolFlag{Name: "local", Usage: "use an in-process fake Cloud Run seeded with the default world (no account needed)"},
		&cli.StringFlag{Name: "emulator-host", Usage: "talk plaintext gRPC without credentials to a fake at `HOST:PORT` (see 'runrollback fake'); --project and --region then default to the fake's local-project and us-central1", EnvVars: []string{"CLOUD_RUN_EMULATOR_HOST"}},
		&cli.StringFlag{Name: "output", Value: "text", Usage: "output format: text or json"},
		&cli.StringFlag{Name: "report", Usage: "write the JSON report to `FILE`"},
		&cli.StringFlag{Name: "junit", Usage: "write a JUnit XML report to `FILE`"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print when each step starts, with a UTC timestamp on every line"},
		&cli.BoolFlag{Name: "no-color", Usage: "no ANSI colours in text output", EnvVars: []string{"NO_COLOR"}},
		&cli.StringFlag{Name: "operation-timeout", Value: "5m", Usage: "how long to wait for one Cloud Run operation (`DURATION`) before reporting it pending"},
	}
}

// globalOpts are the parsed global flags.
type globalOpts struct {
	project      string
	region       string
	services     []string
	local        bool
	emulatorHost string
	output       string
	reportFile   string
	junitFile    string
	verbose      bool
	noColor      bool
	opTimeout    time.Duration
}

// parseGlobal reads and validates the global flags. needService says whether the
// command works on a service (every command except probe and fake).
func parseGlobal(c *cli.Context, needService bool) (globalOpts, error) {
	g := globalOpts{
		project:      c.String("project"),
		region:       c.String("region"),
		services:     c.StringSlice("service"),
		local:        c.Bool("local"),
		emulatorHost: c.String("emulator-host"),
		output:       c.String("output"),
		reportFile:   c.String("report"),
		junitFile:    c.String("junit"),
		verbose:      c.Bool("verbose"),
		noColor:      c.Bool("no-color"),
	}
	if err := noArgs(c); err != nil {
		return g, err
	}
	d, err := probe.ParseDuration(c.String("operation-timeout"))
	if err != nil || d <= 0 {
		return g, usageError{fmt.Errorf("--operation-timeout %q: use a positive duration such as 5m", c.String("operation-timeout"))}
	}
	g.opTimeout = d
	if !slices.Contains([]string{"text", "json"}, g.output) {
		return g, usageError{fmt.Errorf("--output %q is not valid: use text or json", g.output)}
	}
	if g.local {
		// The in-process fake holds the default world, in one project and region,
		// whatever the environment names for real Cloud Run.
		g.emulatorHost = ""
		g.project, g.region = localProject, localRegion
	}
	if g.emulatorHost != "" {
		// The fake's default world lives in one project and region.
		g.project = cmp.Or(g.project, localProject)
		g.region = cmp.Or(g.region, localRegion)
	}
	if !needService {
		return g, nil
	}
	if err := rollback.ValidateProjectID(g.project); err != nil {
		return g, usageError{err}
	}
	if err := rollback.ValidateRegion(g.region); err != nil {
		return g, usageError{err}
	}
	if len(g.services) == 0 {
		if g.local {
			g.services = []string{"api"}
		} else {
			return g, usageError{fmt.Errorf("no service given: pass --service NAME")}
		}
	}
	for _, s := range g.services {
		if err := rollback.ValidateServiceName(s); err != nil {
			return g, usageError{err}
		}
	}
	return g, nil
}

const (
	localProject = "local-project"
	localRegion  = "us-central1"
)
