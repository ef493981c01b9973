package bench

import (
	"fmt"
	"time"
)

// Model is the real world the benchmark plays, scaled: every duration is
// divided by Scale (not the write quota's minute: see Bench.Fleet). Its inputs are
// assumptions (BENCHMARKS.md says so); what the procedures do under it is
// measured.
type Model struct {
	Scale float64
	// Real-world figures, before scaling.
	RTT       time.Duration // one Admin API call's round trip
	DeployOp  time.Duration // an operation that creates a revision
	OtherOp   time.Duration // any other operation (traffic, annotations, delete)
	ColdStart time.Duration // a new revision's first instance
	// Rate is the users' requests a second to the service, real-world: an
	// open-loop load, each request on its own schedule.
	Rate float64
}

// DefaultModel is the model BENCHMARKS.md is generated with unless flags
// change it.
var DefaultModel = Model{
	Scale:     20,
	RTT:       300 * time.Millisecond,
	DeployOp:  20 * time.Second,
	OtherOp:   5 * time.Second,
	ColdStart: 2 * time.Second,
	Rate:      10,
}

// S scales a real-world duration.
func (m Model) S(d time.Duration) time.Duration { return time.Duration(float64(d) / m.Scale) }

// ScaledRate is the users' requests a second in scaled time.
func (m Model) ScaledRate() float64 { return m.Rate * m.Scale }

// Validate refuses a model the benchmark cannot play.
func (m Model) Validate() error {
	if m.Scale < 1 || m.RTT < 0 || m.DeployOp <= 0 || m.OtherOp <= 0 || m.ColdStart < 0 || m.Rate <= 0 {
		return fmt.Errorf("model %+v: want scale >= 1, positive operations and rate", m)
	}
	return nil
}

// ExposureFloor is the least time users can spend on a bad revision that a
// deploy put at 100%, whatever detects it: the revision answers nothing
// before its cold start is over (users' own requests start it when the
// deploy lands), and then one traffic-only write must be sent and its
// operation completed. Reading the service for its etag can overlap the
// cold start.
func (m Model) ExposureFloor() time.Duration { return m.S(m.ColdStart + m.RTT + m.OtherOp) }

// RestoreFloor is the least time users spend on the broken revision after a
// drill's shift: it is already known broken (its tag URL proved it), so only
// the restore's write remains.
func (m Model) RestoreFloor() time.Duration { return m.S(m.RTT + m.OtherOp) }

// WritesFloor is the least time a procedure's reads and writes take: one
// read, and each write's round trip and operation, deploys and others as
// counted; plus the cold start of a revision it must wait for.
func (m Model) WritesFloor(reads, deploys, others int, coldStarts int) time.Duration {
	return m.S(time.Duration(reads)*m.RTT + time.Duration(deploys)*(m.RTT+m.DeployOp) +
		time.Duration(others)*(m.RTT+m.OtherOp) + time.Duration(coldStarts)*m.ColdStart)
}

// Probe flags, real-world, before scaling: the CLI's defaults and the
// example workflows'. A procedure passes them scaled.
type ProbeFlags struct {
	Name       string
	Timeout    time.Duration
	Retries    int
	RetryDelay time.Duration
	Successes  int
	Failures   int
}

var (
	// CLIDefaults are the probe flags' defaults (cmd/runrollback/commands.go).
	CLIDefaults = ProbeFlags{Name: "CLI defaults", Timeout: 5 * time.Second, Retries: 10, RetryDelay: 200 * time.Millisecond, Successes: 10, Failures: 2}
	// WorkflowFlags are what .github/workflows/deploy.yml passes.
	WorkflowFlags = ProbeFlags{Name: "workflow flags", Timeout: 5 * time.Second, Retries: 10, RetryDelay: 2 * time.Second, Successes: 10, Failures: 2}
)

// Args are the flags, with durations scaled by m.
func (f ProbeFlags) Args(m Model) []string {
	return []string{
		"--timeout", m.S(f.Timeout).String(), "--retries", fmt.Sprint(f.Retries),
		"--retry-delay", m.S(f.RetryDelay).String(), "--successes", fmt.Sprint(f.Successes), "--failures", fmt.Sprint(f.Failures),
	}
}

// String is the flags as a workflow writes them, unscaled.
func (f ProbeFlags) String() string {
	return fmt.Sprintf("--timeout %s --retries %d --retry-delay %s --successes %d --failures %d", f.Timeout, f.Retries, f.RetryDelay, f.Successes, f.Failures)
}

// The usual approach's smoke check: curl --retry 3 --retry-delay 10.
const (
	SmokeRetries = 3
	SmokeDelay   = 10 * time.Second
)
