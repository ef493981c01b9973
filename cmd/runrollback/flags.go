package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/rollback"
)

// Global flags, accepted by every command but fake. The environment
// variables they fall back to are read in parseGlobal, not by urfave/cli, so
// that a flag given on the command line can be told from one set by the
// environment.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "project", Usage: "Google Cloud project `ID` (env GOOGLE_CLOUD_PROJECT, then CLOUDSDK_CORE_PROJECT)"},
		&cli.StringFlag{Name: "region", Usage: "Cloud Run `REGION`, e.g. us-central1 (env CLOUDSDK_RUN_REGION)"},
		&cli.StringSliceFlag{Name: "service", Usage: "Cloud Run service `NAME`"},
		&cli.BoolFlag{Name: "local", Usage: "use an in-process fake Cloud Run seeded with the default world (project local-project, region us-central1; no account needed)"},
		&cli.StringFlag{Name: "emulator-host", Usage: "talk plaintext gRPC without credentials to a fake at `HOST:PORT` (see 'runrollback fake'); --project and --region then default to the fake's local-project and us-central1 (env CLOUD_RUN_EMULATOR_HOST)"},
		&cli.StringFlag{Name: "output", Value: "text", Usage: "what stdout gets: text, or json (the report)"},
		&cli.StringFlag{Name: "report", Usage: "write the JSON report (runrollback.report/v1) to `FILE`"},
		&cli.StringFlag{Name: "junit", Usage: "write a JUnit XML report to `FILE`"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also print when each step starts, with a UTC timestamp on every line"},
		&cli.BoolFlag{Name: "no-color", Usage: "no ANSI colours (also when NO_COLOR is set to anything)"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "progress as text lines on stdout, or json: one structured log object a line on stderr, for Cloud Logging"},
		&cli.StringFlag{Name: "transport", Value: "grpc", Usage: "how to talk to the Admin API: grpc, or rest (HTTP/JSON, for networks that pass HTTPS but not gRPC; with --emulator-host, plain http) (env RUNROLLBACK_TRANSPORT)"},
		&cli.StringFlag{Name: "operation-timeout", Value: "5m", Usage: "how long to wait for one Cloud Run operation (`DURATION`) before reporting it pending"},
	}
}

// globalOpts are the parsed global flags.
type globalOpts struct {
	command      string
	project      string
	region       string
	services     []string
	local        bool
	emulatorHost string
	output       string
	reportFile   string
	junitFile    string
	verbose      bool
	color        bool // ANSI colours on stdout
	logJSON      bool
	opTimeout    time.Duration
	transport    cloudrun.Transport

	shard        *shardOpts             // test: --shard or a Cloud Run Jobs task's part
	shardSection *rollback.ShardSection // the part drilled, once the selection is known
	notify       *notifyOpts            // test, guard: --notify-url
}

// parseGlobal reads and validates the global flags, and checks that the
// report files can be written, all before any API call. needService says
// whether the command works on a service (every command except probe).
func (e *env) parseGlobal(c *cli.Context, needService bool) (globalOpts, error) {
	g := globalOpts{
		command:      c.Command.Name,
		project:      cmp.Or(c.String("project"), e.getenv("GOOGLE_CLOUD_PROJECT"), e.getenv("CLOUDSDK_CORE_PROJECT")),
		region:       cmp.Or(c.String("region"), e.getenv("CLOUDSDK_RUN_REGION")),
		services:     c.StringSlice("service"),
		local:        c.Bool("local"),
		emulatorHost: cmp.Or(c.String("emulator-host"), e.getenv("CLOUD_RUN_EMULATOR_HOST")),
		output:       c.String("output"),
		reportFile:   c.String("report"),
		junitFile:    c.String("junit"),
		verbose:      c.Bool("verbose"),
	}
	if err := noArgs(c); err != nil {
		return g, err
	}
	g.color = e.colorOn(c.Bool("no-color"))
	d, err := probe.ParseDuration(c.String("operation-timeout"))
	if err != nil || d <= 0 {
		return g, usageError{fmt.Errorf("--operation-timeout %q: use a positive duration such as 5m", c.String("operation-timeout"))}
	}
	g.opTimeout = d
	tr, from := c.String("transport"), "--transport"
	if v := e.getenv("RUNROLLBACK_TRANSPORT"); !c.IsSet("transport") && v != "" {
		tr, from = v, "RUNROLLBACK_TRANSPORT"
	}
	if g.transport, err = cloudrun.ParseTransport(tr); err != nil {
		return g, usageError{fmt.Errorf("%s %q is not valid: use grpc or rest", from, tr)}
	}
	if !slices.Contains([]string{"text", "json"}, g.output) {
		return g, usageError{fmt.Errorf("--output %q is not valid: use text or json", g.output)}
	}
	switch lf := c.String("log-format"); lf {
	case "text":
	case "json":
		g.logJSON = true
	default:
		return g, usageError{fmt.Errorf("--log-format %q is not valid: use text or json", lf)}
	}
	for _, f := range []struct{ flag, path string }{{"--report", g.reportFile}, {"--junit", g.junitFile}} {
		if err := checkWritable(f.flag, f.path); err != nil {
			return g, err
		}
	}
	if g.reportFile != "" && g.reportFile == g.junitFile {
		return g, usageError{fmt.Errorf("--report and --junit both name %s: give each its own file", g.reportFile)}
	}
	if g.local {
		if err := localFlags(c, &g); err != nil {
			return g, err
		}
	} else if g.emulatorHost != "" {
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

// localFlags settles --local: the in-process fake holds the default world in
// project local-project and region us-central1. A --project or --region given
// on the command line must name those (anything else would be drilled as if it
// were the fake), and --emulator-host, which names another fake, cannot be
// given with it. The same settings from the environment (meant for real Cloud
// Run, or for another fake) are set aside.
func localFlags(c *cli.Context, g *globalOpts) error {
	if c.IsSet("emulator-host") {
		return usageError{fmt.Errorf("--local and --emulator-host both given: --local starts a fake of its own; to use the fake at %s, drop --local", c.String("emulator-host"))}
	}
	g.emulatorHost = ""
	for _, f := range []struct{ flag, want string }{{"project", localProject}, {"region", localRegion}} {
		if !c.IsSet(f.flag) {
			continue
		}
		v := c.String(f.flag)
		var err error
		if f.flag == "project" {
			err = rollback.ValidateProjectID(v)
		} else {
			err = rollback.ValidateRegion(v)
		}
		if err != nil {
			return usageError{err}
		}
		if v != f.want {
			return usageError{fmt.Errorf("--%s %s with --local: the built-in fake holds only %s %s; drop --%s to use it, or drop --local to work on real Cloud Run", f.flag, v, f.flag, f.want, f.flag)}
		}
	}
	g.project, g.region = localProject, localRegion
	return nil
}

const (
	localProject = "local-project"
	localRegion  = "us-central1"
)

// colorOn decides whether stdout gets ANSI colours. In order: --no-color
// turns them off; NO_COLOR set to anything turns them off (no-color.org);
// FORCE_COLOR set to anything but 0 or false turns them on (force-color.org);
// GitHub Actions logs, which show ANSI colours but are not terminals, get them
// (GITHUB_ACTIONS=true); otherwise a terminal gets them, unless TERM is dumb.
// See docs/design.md.
func (e *env) colorOn(noColor bool) bool {
	switch {
	case noColor, e.getenv("NO_COLOR") != "":
		return false
	case e.getenv("FORCE_COLOR") != "":
		v := strings.ToLower(e.getenv("FORCE_COLOR"))
		return v != "0" && v != "false"
	case e.getenv("GITHUB_ACTIONS") == "true":
		return true
	}
	return isTerminal(e.stdout) && e.getenv("TERM") != "dumb"
}

// checkWritable checks, before anything is done, that the report file path
// can be written: its folder exists, the path is not a folder, and the file
// (or, when it does not exist yet, a file in the folder) can be opened for
// writing. It changes nothing: an existing file is opened without truncating,
// a probe file in the folder is removed at once.
func checkWritable(flag, path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return usageError{fmt.Errorf("%s %s is a folder: name a file in it, e.g. %s", flag, path, filepath.Join(path, "report"+extFor(flag)))}
	case err == nil:
		// Non-blocking: a FIFO nobody reads would hold the open forever.
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if errors.Is(err, syscall.ENXIO) {
			return usageError{fmt.Errorf("%s %s cannot be written: it is a FIFO that no process has open for reading", flag, path)}
		}
		if err != nil {
			return usageError{fmt.Errorf("%s %s cannot be written: %w", flag, path, errors.Unwrap(err))}
		}
		return f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return usageError{fmt.Errorf("%s %s: %w", flag, path, err)}
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageError{fmt.Errorf("%s %s: the folder %s does not exist: create it first (mkdir -p %s)", flag, path, dir, dir)}
	}
	f, err := os.CreateTemp(dir, ".runrollback-check-*")
	if err != nil {
		return usageError{fmt.Errorf("%s %s: cannot create files in %s: %w", flag, path, dir, errors.Unwrap(err))}
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

func extFor(flag string) string {
	if flag == "--junit" {
		return ".xml"
	}
	return ".json"
}
