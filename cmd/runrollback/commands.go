package main

import (
	"github.com/urfave/cli/v2"
)

func withGlobal(flags ...cli.Flag) []cli.Flag { return append(flags, globalFlags()...) }

func probeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Usage: "base `URL` to probe (default: the service's own URI)"},
		&cli.StringFlag{Name: "health-path", Value: "/api/v1/health/", Usage: "health endpoint `PATH`, appended to the base URL's path"},
		&cli.StringFlag{Name: "expect-version", Usage: "the `VERSION` the health endpoint must report"},
		&cli.StringFlag{Name: "version-field", Usage: "JSON `POINTER` to the version in the health body (e.g. /build/version)"},
		&cli.StringFlag{Name: "timeout", Value: "5s", Usage: "per-attempt `DURATION` (Go duration or plain seconds)"},
		&cli.IntFlag{Name: "retries", Value: 10, Usage: "attempts after the first"},
		&cli.StringFlag{Name: "retry-delay", Value: "200ms", Usage: "base `DURATION` between attempts (backs off, capped)"},
		&cli.IntFlag{Name: "successes", Value: 2, Usage: "consecutive good answers that count as healthy"},
		&cli.StringFlag{Name: "id-token-file", Usage: "send the ID token in `FILE` with every probe (e.g. from 'gcloud auth print-identity-token'); default: ID tokens from Application Default Credentials for https://*.run.app", EnvVars: []string{"RUNROLLBACK_ID_TOKEN_FILE"}},
		&cli.IntFlag{Name: "failures", Value: 3, Usage: "consecutive answers proving failure (unhealthy, wrong version, timeout) that count as unhealthy without waiting out --retries; 0 waits them out"},
	}
}
