package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
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
func parseServiceFlags(c *cli.Context) (globalOpts, probeOpts, error) {
	g, err := parseGlobal(c, true)
	if err != nil {
		return g, probeOpts{}, err
	}
	po, err := parseProbe(c)
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

func parseProbe(c *cli.Context) (probeOpts, error) {
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
	if p.url != "" {
		if err := probe.ValidateURL(p.url); err != nil {
			return p, usageError{fmt.Errorf("--url: %w", err)}
		}
	}
	if f := c.String("id-token-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return p, usageError{fmt.Errorf("--id-token-file: %w", err)}
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

// checker builds the probe. Tokens: the --id-token-file token when given (sent
// only to the hosts probed: those the service reports, or --url; redirects are
// never followed); otherwise ID tokens from Application Default Credentials
// for https://*.run.app URLs of real Cloud Run, and none against the fake.
func (p probeOpts) checker(e *env, g globalOpts) *probe.Checker {
	c := &probe.Checker{HealthPath: p.healthPath, VersionField: p.versionField, Timeout: p.timeout, TokenSource: p.tokens}
	if c.TokenSource == nil && !g.local && g.emulatorHost == "" {
		c.TokenSource = &adcTokens{src: probe.IDTokenSource(), warn: e.stderr}
	}
	return c
}

// adcTokens mints ID tokens for Cloud Run URLs from Application Default
// Credentials. When it cannot (user credentials, no credentials), probes go
// without a token, with one warning: public services still answer.
type adcTokens struct {
	src  probe.TokenSource
	warn io.Writer
	once sync.Once
}

func (a *adcTokens) Token(ctx context.Context, audience string) (string, error) {
	u, err := url.Parse(audience)
	if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Hostname(), ".run.app") {
		return "", probe.ErrNoToken
	}
	tok, err := a.src.Token(ctx, audience)
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		a.once.Do(func() {
			fmt.Fprintf(a.warn, "[WARN] probes go without an ID token (%s): a private service will answer 401/403; use a service account, or --id-token-file\n",
				report.Sanitize(err.Error(), 200))
		})
		return "", probe.ErrNoToken
	}
	return tok, nil
}

func (p probeOpts) policy() probe.Policy {
	return probe.Policy{Retries: p.retries, RetryDelay: p.retryDelay, Successes: p.successes, Failures: p.failures}
}

// prober adapts probe.Checker to rollback.Prober.
type prober struct {
	checker *probe.Checker
	policy  probe.Policy
}

var _ rollback.Prober = prober{}

func (p prober) WaitHealthy(ctx context.Context, url string, exp rollback.Expect) rollback.ProbeResult {
	return result(p.checker.WaitHealthy(ctx, url, probe.Expect{Version: exp.Version, Revisions: exp.Revisions}, p.policy), p.policy, false)
}

func (p prober) WaitFailure(ctx context.Context, url string, exp rollback.Expect) rollback.ProbeResult {
	return result(p.checker.WaitFailure(ctx, url, probe.Expect{Version: exp.Version, Revisions: exp.Revisions}, p.policy), p.policy, true)
}

func result(v probe.Verdict, pol probe.Policy, detect bool) rollback.ProbeResult {
	ok := v.Healthy
	if detect {
		ok = v.Detected
	}
	return rollback.ProbeResult{
		OK:       ok,
		Version:  v.Last.Version,
		Revision: v.Last.Revision,
		Detail:   describeAttempt(v.Last) + "; " + v.Summary(pol.Rule()),
		Attempts: v.Total,
		Elapsed:  v.Elapsed,
	}
}

// describeAttempt is one line on an attempt: outcome, status code, version, revision, detail.
func describeAttempt(a probe.Attempt) string {
	var parts []string
	parts = append(parts, a.Outcome.String())
	if a.StatusCode != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", a.StatusCode))
	}
	if a.Version != "" {
		parts = append(parts, "version "+a.Version)
	}
	if a.Revision != "" {
		parts = append(parts, "from "+a.Revision)
	}
	s := strings.Join(parts, ", ")
	if a.Detail != "" {
		s += ": " + a.Detail
	}
	return s
}

// prober is the rollback.Prober the commands use.
func (p probeOpts) prober(e *env, g globalOpts) prober {
	return prober{checker: p.checker(e, g), policy: p.policy()}
}
