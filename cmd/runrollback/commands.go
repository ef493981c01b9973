package main

import (
	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
)

func withGlobal(flags ...cli.Flag) []cli.Flag { return append(flags, globalFlags()...) }

func probeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Usage: "base `URL` to probe (default: the service's own URI)"},
		&cli.StringFlag{Name: "health-path", Value: "/api/v1/health/", Usage: "health endpoint `PATH`, appended to the base URL's path"},
		&cli.StringFlag{Name: "expect-version", Usage: "the `VERSION` the health endpoint must report"},
		&cli.StringFlag{Name: "version-field", Usage: "JSON `POINTER` to the version in the health body (e.g. /build/version)"},
		&cli.StringFlag{Name: "timeout", Value: "5s", Usage: "per-attempt `DURATION` (Go duration or plain seconds); an attempt that connected and has no answer by then counts as failing"},
		&cli.IntFlag{Name: "retries", Value: 10, Usage: "retries after an attempt that proves nothing (no connection, another revision answering); healthy and failing answers never use them up"},
		&cli.StringFlag{Name: "retry-delay", Value: "200ms", Usage: "base `DURATION` before a retry (backs off, capped); healthy and failing answers are followed by no pause"},
		&cli.IntFlag{Name: "successes", Value: probe.DefaultSuccesses, Usage: "good answers among the last successes+failures-1 that make it healthy"},
		&cli.StringFlag{Name: "id-token-file", Usage: "send the ID token in `FILE` with every probe (e.g. from 'gcloud auth print-identity-token'); default: ID tokens from Application Default Credentials for https://*.run.app", EnvVars: []string{"RUNROLLBACK_ID_TOKEN_FILE"}},
		&cli.IntFlag{Name: "failures", Value: probe.DefaultFailures, Usage: "failing answers (unhealthy, wrong version, timeout) among the last successes+failures-1 that make it unhealthy; 0 means the default"},
	}
}
