package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

// probeOpts are the parsed probe flags.
type probeOpts struct {
	url           string
	healthPath    string
	expectVersion string
	versionField  string
	timeout       time.Duration
	retries       int
	retryDelay    time.Duration
	successes     int
	failures      int
	tokens        probe.TokenSource
}

// parseServiceFlags parses the global flags of a command that works on named
// services, and its probe flags.
func (e *env) parseServiceFlags(c *cli.Context) (globalOpts, probeOpts, error) {
	g, err := e.parseGlobal(c, true)
	if err != nil {
		return g, probeOpts{}, err
	}
	po, err := parseProbe(c, g)
	return g, po, err
}

// oneService returns the one service a command works on, or a usage error.
func (g globalOpts) oneService(what string) (rollback.ServiceRef, error) {
	if len(g.services) > 1 {
		return rollback.ServiceRef{}, usageError{fmt.Errorf("--service given %d times: %s", len(g.services), what)}
	}
	return g.refs()[0], nil
}

// refs are the services --service names, in --project and --region.
func (g globalOpts) refs() []rollback.ServiceRef {
	out := make([]rollback.ServiceRef, len(g.services))
	for i, name := range g.services {
		out[i] = rollback.ServiceRef{Project: g.project, Region: g.region, Name: name}
	}
	return out
}

// parseProbe reads and checks the probe flags, before any API call.
func parseProbe(c *cli.Context, g globalOpts) (probeOpts, error) {
	p := probeOpts{
		url:           c.String("url"),
		healthPath:    c.String("health-path"),
		expectVersion: c.String("expect-version"),
		versionField:  c.String("version-field"),
		retries:       c.Int("retries"),
		successes:     c.Int("successes"),
		failures:      c.Int("failures"),
	}
	var err error
	if p.timeout, err = probe.ParseDuration(c.String("timeout")); err != nil {
		return p, usageError{fmt.Errorf("--timeout: %w", err)}
	}
	if p.timeout <= 0 {
		return p, usageError{fmt.Errorf("--timeout must be more than 0 (e.g. 5s or 5)")}
	}
	if p.retryDelay, err = probe.ParseDuration(c.String("retry-delay")); err != nil {
		return p, usageError{fmt.Errorf("--retry-delay: %w", err)}
	}
	if p.retries < 0 {
		return p, usageError{fmt.Errorf("--retries %d: use 0 or more", p.retries)}
	}
	if p.successes < 1 {
		return p, usageError{fmt.Errorf("--successes %d: use 1 or more", p.successes)}
	}
	if p.failures < 0 {
		return p, usageError{fmt.Errorf("--failures %d: use 0 or more", p.failures)}
	}
	if !strings.HasPrefix(p.healthPath, "/") {
		return p, usageError{fmt.Errorf("--health-path %q must start with '/'", p.healthPath)}
	}
	if err := rollback.ValidateExpectVersion(p.expectVersion); err != nil {
		return p, usageError{err}
	}
	if p.url != "" {
		if g.local {
			return p, usageError{localURLError(c, p.url)}
		}
		if err := probe.ValidateURL(p.url); err != nil {
			return p, usageError{fmt.Errorf("--url: %w", err)}
		}
		if err := doubledHealthPath(p.url, p.healthPath, c.IsSet("health-path")); err != nil {
			return p, usageError{err}
		}
	}
	if f := c.String("id-token-file"); f != "" {
		b, err := rollback.ReadFileCapped(f, rollback.MaxTokenFile)
		if err != nil {
			return p, usageError{fmt.Errorf("--id-token-file %s: %w", f, err)}
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, " \r\n\t") {
			return p, usageError{fmt.Errorf("--id-token-file %s: want one token on one line", f)}
		}
		p.tokens = probe.StaticToken(tok)
	}
	if p.versionField != "" {
		if err := probe.ValidateVersionField(p.versionField); err != nil {
			return p, usageError{fmt.Errorf("--version-field: %w", err)}
		}
	}
	return p, nil
}

// localURLError explains --url with --local, a habit of the script
// runrollback replaces, whose --local meant "the app runs on localhost": here
// --local drills a built-in fake Cloud Run, whose revisions a --url server
// would never see broken.
func localURLError(c *cli.Context, u string) error {
	if c.Command.Name == "probe" {
		return fmt.Errorf("--local with probe: probe talks to no Cloud Run, so --local means nothing here; drop it: runrollback probe --url %s", u)
	}
	if c.Command.Name != "test" {
		return fmt.Errorf("--url with --local: --local uses runrollback's built-in fake Cloud Run, whose services answer on their own URLs, so %s would judge health by a server the fake does not run. "+
			"To check a server of yours, run 'runrollback probe --url %s'; to try %s on the fake, drop --url", u, u, c.Command.Name)
	}
	return fmt.Errorf("--url with --local: --local drills runrollback's built-in fake Cloud Run (its own services, on its own URLs), so the drill would break the fake's revision while probing %s, which never sees the break. "+
		"To check a server of yours, run 'runrollback probe --url %s'; to see a drill, run 'runrollback test --local' without --url", u, u)
}

// doubledHealthPath refuses a --url that already ends with the health path
// (a full health URL pasted as the base): the probe appends the path, and
// would ask for /api/v1/health/api/v1/health/.
func doubledHealthPath(base, healthPath string, pathSet bool) error {
	root, ok := probe.EndsWithHealthPath(base, healthPath)
	if !ok {
		return nil
	}
	what := "the health path"
	if !pathSet {
		what = "the default --health-path"
	}
	return fmt.Errorf("--url %s already ends with %s %s: the probe appends it, and would request %s%s. Pass the base URL, --url %s (or --health-path / to probe the URL as given)",
		base, what, healthPath, strings.TrimSuffix(base, "/"), healthPath, root)
}

// checker builds the probe. Tokens: the --id-token-file token when given (sent
// only to the hosts probed: those the service reports, or --url; redirects are
// never followed); otherwise ID tokens from Application Default Credentials
// for https://*.run.app URLs of real Cloud Run, and none against the fake.
func (p probeOpts) checker(e *env, g globalOpts) *probe.Checker {
	c := &probe.Checker{HealthPath: p.healthPath, VersionField: p.versionField, Timeout: p.timeout, TokenSource: p.tokens}
	if c.TokenSource == nil && !g.local && g.emulatorHost == "" {
		warn := e.progress(g).Event
		c.TokenSource = &probe.CloudRunTokens{Source: probe.IDTokenSource(),
			OnFallback: func(err error) { warn(report.NoIDToken(timeNow(), err)) }}
	}
	return c
}

func (p probeOpts) policy() probe.Policy {
	return probe.Policy{Retries: p.retries, RetryDelay: p.retryDelay, Successes: p.successes, Failures: p.failures}
}

// prober adapts probe.Checker to rollback.Prober, and tells the run's sink
// when a wait starts and of every attempt, so a long wait is never silent.
type prober struct {
	checker *probe.Checker
	policy  probe.Policy
	notes   sink
}

var _ rollback.Prober = prober{}

func (p prober) WaitHealthy(ctx context.Context, url string, exp rollback.Expect) rollback.ProbeResult {
	pol := p.watch(url, "answer healthy", exp)
	return result(p.checker.WaitHealthy(ctx, url, probe.Expect{Version: exp.Version, Revisions: exp.Revisions}, pol), pol, false)
}

func (p prober) WaitFailure(ctx context.Context, url string, exp rollback.Expect) rollback.ProbeResult {
	pol := p.watch(url, "show the failure", exp)
	return result(p.checker.WaitFailure(ctx, url, probe.Expect{Version: exp.Version, Revisions: exp.Revisions}, pol), pol, true)
}

// watch notes the start of a wait on url and returns the policy that notes
// each attempt.
func (p prober) watch(url, goal string, exp rollback.Expect) probe.Policy {
	pol := p.policy
	if p.notes == nil {
		return pol
	}
	target := url
	if hu, err := p.checker.HealthURL(url); err == nil {
		target = hu
	}
	p.notes.Note(report.ProbeWait(timeNow(), target, goal, pol.Rule().String(), exp.Version, max(pol.Retries, 0), p.checker.Timeout))
	pol.OnAttempt = func(n int, a probe.Attempt) {
		if a.OK() {
			a.Detail = "" // a healthy answer needs no more than its version and revision
		}
		p.notes.Note(report.ProbeAttempt(timeNow(), n, a.URL, a.Describe(), a.Duration))
	}
	return pol
}

func result(v probe.Verdict, pol probe.Policy, detect bool) rollback.ProbeResult {
	ok := v.Healthy
	if detect {
		ok = v.Detected
	}
	return rollback.ProbeResult{
		OK:           ok,
		Version:      v.Last.Version,
		Revision:     v.Last.Revision,
		Detail:       v.Describe(pol.Rule()),
		URL:          v.Last.URL,
		Attempts:     v.Total,
		Errors:       v.Errors,
		Unhealthy:    v.Unhealthy,
		NotConverged: v.NotConverged,
		Elapsed:      v.Elapsed,
	}
}

// prober is the rollback.Prober the commands use.
func (p probeOpts) prober(e *env, g globalOpts) prober {
	return prober{checker: p.checker(e, g), policy: p.policy(), notes: e.progress(g)}
}
