package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
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
}

func parseProbe(c *cli.Context) (probeOpts, error) {
	p := probeOpts{
		url:           c.String("url"),
		healthPath:    c.String("health-path"),
		expectVersion: c.String("expect-version"),
		versionField:  c.String("version-field"),
		retries:       c.Int("retries"),
		successes:     c.Int("successes"),
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
	if p.successes > p.retries+1 {
		return p, usageError{fmt.Errorf("--successes %d needs at least %d attempts: raise --retries to %d or more", p.successes, p.successes, p.successes-1)}
	}
	if !strings.HasPrefix(p.healthPath, "/") {
		return p, usageError{fmt.Errorf("--health-path %q must start with '/'", p.healthPath)}
	}
	if p.url != "" {
		if err := probe.ValidateURL(p.url); err != nil {
			return p, usageError{fmt.Errorf("--url: %w", err)}
		}
	}
	if p.versionField != "" {
		if err := probe.ValidateVersionField(p.versionField); err != nil {
			return p, usageError{fmt.Errorf("--version-field: %w", err)}
		}
	}
	return p, nil
}

func (p probeOpts) checker() *probe.Checker {
	return &probe.Checker{HealthPath: p.healthPath, VersionField: p.versionField, Timeout: p.timeout}
}

func (p probeOpts) policy() probe.Policy {
	return probe.Policy{Retries: p.retries, RetryDelay: p.retryDelay, Successes: p.successes}
}

// prober adapts probe.Checker to rollback.Prober.
type prober struct {
	checker *probe.Checker
	policy  probe.Policy
}

var _ rollback.Prober = prober{}

func (p prober) WaitHealthy(ctx context.Context, url string, exp rollback.Expect) rollback.ProbeResult {
	return result(p.checker.WaitHealthy(ctx, url, probe.Expect{Version: exp.Version, Revisions: exp.Revisions}, p.policy), false)
}

func (p prober) WaitFailure(ctx context.Context, url string, exp rollback.Expect) rollback.ProbeResult {
	return result(p.checker.WaitFailure(ctx, url, probe.Expect{Version: exp.Version, Revisions: exp.Revisions}, p.policy), true)
}

func result(v probe.Verdict, detect bool) rollback.ProbeResult {
	ok := v.Healthy
	if detect {
		ok = v.Detected
	}
	return rollback.ProbeResult{
		OK:       ok,
		Version:  v.Last.Version,
		Revision: v.Last.Revision,
		Detail:   describeAttempt(v.Last),
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
