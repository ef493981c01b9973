package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/probe"
	"github.com/runrollback/runrollback/internal/rollback"
)

// restoreTimeoutFlag is --restore-timeout, on every command that puts a
// service back (test, guard, rollback, recover).
func restoreTimeoutFlag() cli.Flag {
	return &cli.StringFlag{Name: "restore-timeout", Value: rollback.DefaultRestoreTimeout.String(),
		Usage: "how long to keep putting the service back (restore, verify, cleanup) through API errors and slow rollouts (`DURATION`)"}
}

// parseRestoreTimeout reads --restore-timeout.
func parseRestoreTimeout(c *cli.Context) (time.Duration, error) {
	d, err := probe.ParseDuration(c.String("restore-timeout"))
	if err != nil || d <= 0 {
		return 0, usageError{fmt.Errorf("--restore-timeout %q: use a positive duration such as 10m", c.String("restore-timeout"))}
	}
	return d, nil
}

// processAlive reports whether process pid runs on this machine (recover asks
// it of the run a local journal names).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
