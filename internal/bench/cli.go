package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CLI is the runrollback binary, built from this module into a temporary
// directory: every procedure runs the real command as its own process, as a
// workflow does.
type CLI struct {
	Path string
}

// BuildCLI builds ./cmd/runrollback into dir.
func BuildCLI(ctx context.Context, dir string) (*CLI, error) {
	// go test puts its own toolchain's bin first on PATH.
	out := filepath.Join(dir, "runrollback")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/runrollback/runrollback/cmd/runrollback")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, b)
	}
	return &CLI{Path: out}, nil
}

// Run is one finished process.
type Run struct {
	Args           []string
	Code           int
	Stdout, Stderr []byte
	Wall           time.Duration
	User, Sys      time.Duration
	MaxRSS         int64 // bytes, the kernel's peak resident set of the process
}

func (r Run) String() string {
	return fmt.Sprintf("runrollback %s: exit %d\nstdout: %.3000s\nstderr: %.3000s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Run runs the command with only env (and PATH) in its environment.
func (c *CLI) Run(ctx context.Context, env map[string]string, args ...string) (Run, error) {
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Run{Args: args, Wall: time.Since(start), Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		return r, err
	}
	if ps := cmd.ProcessState; ps != nil {
		r.User, r.Sys = ps.UserTime(), ps.SystemTime()
		r.MaxRSS = maxRSS(ps)
	}
	return r, nil
}

// Expect runs the command and fails unless it exits with code.
func (c *CLI) Expect(ctx context.Context, env map[string]string, code int, args ...string) (Run, error) {
	r, err := c.Run(ctx, env, args...)
	if err != nil {
		return r, err
	}
	if r.Code != code {
		return r, fmt.Errorf("want exit %d: %s", code, r)
	}
	return r, nil
}

// Report is the part of the runrollback.report/v1 JSON the benchmark reads.
type Report struct {
	Command  string `json:"command"`
	Result   string `json:"result"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error"`
	Service  struct {
		Name string `json:"name"`
	} `json:"service"`
	After *struct {
		Healthy  bool   `json:"healthy"`
		Revision string `json:"revision"`
	} `json:"after"`
	TrafficRestored bool `json:"traffic_restored"`
	Timings         struct {
		DetectTag int64 `json:"detect_tag"`
		Detect    int64 `json:"detect"`
		Restore   int64 `json:"restore"`
		Verify    int64 `json:"verify"`
		Total     int64 `json:"total"`
	} `json:"timings_ms"`
	Exposure struct {
		Percent int32 `json:"percent"`
		MS      int64 `json:"ms"`
	} `json:"exposure"`
	APICalls struct {
		Reads  int64 `json:"reads"`
		Writes int64 `json:"writes"`
	} `json:"api_calls"`
	Steps []struct {
		Name       string `json:"name"`
		DurationMS int64  `json:"duration_ms"`
	} `json:"steps"`
}

// Step is the duration of the report's step name (0 when absent).
func (r Report) Step(name string) time.Duration {
	for _, s := range r.Steps {
		if s.Name == name {
			return time.Duration(s.DurationMS) * time.Millisecond
		}
	}
	return 0
}

// FleetReport is the combined report of a drill of several services.
type FleetReport struct {
	Result   string   `json:"result"`
	ExitCode int      `json:"exit_code"`
	Reports  []Report `json:"reports"`
}

// Decode reads the JSON report a command printed.
func Decode[T any](r Run) (T, error) {
	var v T
	if err := json.Unmarshal(r.Stdout, &v); err != nil {
		return v, fmt.Errorf("no JSON report (%v): %s", err, r)
	}
	return v, nil
}

// Env is what a command run against w gets.
func Env(addr, stateDir string) map[string]string {
	return map[string]string{
		"CLOUD_RUN_EMULATOR_HOST": addr,
		"GOOGLE_CLOUD_PROJECT":    Project,
		"CLOUDSDK_RUN_REGION":     Region,
		"RUNROLLBACK_STATE_DIR":   stateDir,
		"HOME":                    stateDir,
	}
}

// Target is the flags that point a command at a world's api service.
func Target(addr string) []string {
	return []string{"--emulator-host", addr, "--project", Project, "--region", Region, "--service", Service}
}
