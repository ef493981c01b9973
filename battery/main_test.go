package battery

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/api/option"
	runapi "google.golang.org/api/run/v2"
)

// bin is the runrollback binary under test, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	// Most of a case's time is spent waiting on another process: run more of
	// them at once than there are cores, unless -parallel says otherwise.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	dir, err := os.MkdirTemp("", "battery-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if testing.Short() {
			return m.Run()
		}
		bin = filepath.Join(dir, "runrollback")
		goTool, err := exec.LookPath("go")
		if err != nil {
			fmt.Fprintln(os.Stderr, "battery: no go tool to build runrollback:", err)
			return 1
		}
		args := []string{"build", "-o", bin}
		if raceBuild {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, "github.com/runrollback/runrollback/cmd/runrollback")...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "battery: build runrollback:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// fake is one 'runrollback fake' process, with its control endpoint and a
// discovery client (the judge) on its REST surface.
type fake struct {
	t       *testing.T
	host    string // gRPC and REST, HOST:PORT
	control string // http://HOST:PORT
	judge   *runapi.Service
	cmd     *exec.Cmd
	dir     string // the case's working directory
}

// world is the seed every case starts from: the three shapes of traffic a
// service can have (pinned, LATEST, a split with a tag), each with labels and
// annotations of its own that must survive every run.
const world = `{"services": [
 {"name": "api", "annotations": {"team.example.com/owner": "payments"}, "labels": {"env": "prod"},
  "revisions": [
   {"name": "api-00001-abc", "env": {"APP_VERSION": "1.0.0"}},
   {"name": "api-00002-def", "env": {"APP_VERSION": "1.1.0", "LOG_LEVEL": "info"}}],
  "traffic": [{"revision": "api-00002-def", "percent": 100}]},
 {"name": "web", "annotations": {"team.example.com/owner": "frontend"}, "labels": {"env": "prod", "tier": "edge"},
  "revisions": [{"name": "web-00001-aaa", "env": {"APP_VERSION": "1.0.0"}}]},
 {"name": "checkout", "annotations": {"team.example.com/owner": "team-a"}, "labels": {"env": "dev"},
  "revisions": [
   {"name": "checkout-00002-bbb", "env": {"APP_VERSION": "2.0.0"}},
   {"name": "checkout-00003-ccc", "env": {"APP_VERSION": "2.1.0"}}],
  "traffic": [{"revision": "checkout-00002-bbb", "percent": 90}, {"revision": "checkout-00003-ccc", "percent": 10, "tag": "canary"}]}
]}`

const (
	project = "local-project"
	region  = "us-central1"
)

func fullName(svc string) string {
	return fmt.Sprintf("projects/%s/locations/%s/services/%s", project, region, svc)
}

// startFake starts a fake process seeded with world and stops it (SIGINT)
// when the test ends.
func startFake(t *testing.T) *fake {
	t.Helper()
	if bin == "" {
		t.Skip("the battery builds and runs the binary: not in -short")
	}
	dir := t.TempDir()
	seed := filepath.Join(dir, "world.json")
	if err := os.WriteFile(seed, []byte(world), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "fake", "--addr", "127.0.0.1:0", "--seed", seed)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	r := bufio.NewReader(out)
	line := func() string {
		s, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("runrollback fake: %v (stderr: %s)", err, stderr.String())
		}
		return strings.TrimSpace(s)
	}
	host, ok := strings.CutPrefix(line(), "CLOUD_RUN_EMULATOR_HOST=")
	if !ok {
		t.Fatal("runrollback fake did not print CLOUD_RUN_EMULATOR_HOST= first")
	}
	control, ok := strings.CutPrefix(line(), "RUNROLLBACK_FAKE_CONTROL=")
	if !ok {
		t.Fatal("runrollback fake did not print RUNROLLBACK_FAKE_CONTROL= second")
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	judge, err := runapi.NewService(context.Background(),
		option.WithEndpoint("http://"+host+"/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return &fake{t: t, host: host, control: control, judge: judge, cmd: cmd, dir: dir}
}

// post sends a control request; the fake must accept it.
func (f *fake) post(path string, body any) {
	f.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.Post(f.control+path, "application/json", bytes.NewReader(b))
	if err != nil {
		f.t.Fatalf("control %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		f.t.Fatalf("control %s %s: HTTP %d %s", path, b, resp.StatusCode, msg)
	}
}

type calls struct {
	Calls  map[string]int `json:"calls"`
	Writes int            `json:"writes"`
}

func (f *fake) calls() calls {
	f.t.Helper()
	resp, err := http.Get(f.control + "/calls")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v calls
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

// writes is the number of writes the fake has accepted.
func (f *fake) writes() int { return f.calls().Writes }

// controlState is the part of GET /state the battery waits on.
type controlState struct {
	Services []struct {
		Service     string `json:"service"`
		Reconciling bool   `json:"reconciling"`
		Generation  int64  `json:"generation"`
	} `json:"services"`
}

func (f *fake) reconciling(svc string) bool {
	f.t.Helper()
	resp, err := http.Get(f.control + "/state")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st controlState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		f.t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.Service == svc {
			return s.Reconciling
		}
	}
	return false
}

// pendingOperations counts the operations not done, read with the judge.
func (f *fake) pendingOperations() int {
	f.t.Helper()
	ops, err := f.judge.Projects.Locations.Operations.List("projects/" + project + "/locations/" + region).Do()
	if err != nil {
		f.t.Fatalf("judge: list operations: %v", err)
	}
	n := 0
	for _, op := range ops.Operations {
		if !op.Done {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, for at most 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// machine is where a run executes: its own state directory (local journals)
// and user, as on another computer.
type machine struct {
	name string
	dir  string
}

func (f *fake) machine(name string) machine {
	dir := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		f.t.Fatal(err)
	}
	return machine{name: name, dir: dir}
}

// proc is one run of the binary.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    bytes.Buffer
	mu     sync.Mutex
	done   chan struct{}
	code   int
	args   []string
	paused string // the pause file
}

// lockedBuffer lets the test read a run's output while it runs.
type lockedWriter struct {
	p *proc
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// output is what the run printed (stdout and stderr together) so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs the binary on machine m against the fake. extraEnv entries are
// KEY=VALUE; args follow the command name.
func (f *fake) start(m machine, extraEnv []string, args ...string) *proc {
	f.t.Helper()
	p := &proc{t: f.t, done: make(chan struct{}), args: args, paused: filepath.Join(m.dir, "paused")}
	_ = os.Remove(p.paused)
	cmd := exec.Command(bin, args...)
	cmd.Dir = m.dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + m.dir,
		"USER=" + m.name,
		"RUNROLLBACK_STATE_DIR=" + filepath.Join(m.dir, "state"),
		"CLOUD_RUN_EMULATOR_HOST=" + f.host,
		"RUNROLLBACK_PAUSE_FILE=" + p.paused,
		"NO_COLOR=1",
	}, extraEnv...)
	cmd.Stdout, cmd.Stderr = lockedWriter{p}, lockedWriter{p}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	p.cmd = cmd
	go func() {
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = -1 // killed by a signal
		}
		close(p.done)
	}()
	f.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			<-p.done
		}
		if testing.Verbose() && os.Getenv("BATTERY_LOG") != "" {
			f.t.Logf("runrollback %s (machine %s): exit %d\n%s", strings.Join(args, " "), m.name, p.code, p.output())
		}
	})
	return p
}

// run runs the binary to its end (at most 60s) and returns it.
func (f *fake) run(m machine, extraEnv []string, args ...string) *proc {
	f.t.Helper()
	p := f.start(m, extraEnv, args...)
	p.wait()
	return p
}

// wait waits for the run to end, at most 60s: a run that hangs fails the case.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.t.Fatalf("runrollback %s hung for 60s; output:\n%s", strings.Join(p.args, " "), p.output())
	}
	return p.code
}

// waitPaused waits until the run is paused before step (RUNROLLBACK_PAUSE_AT).
func (p *proc) waitPaused(step string) {
	p.t.Helper()
	waitFor(p.t, "the run to pause before "+step, func() bool {
		b, err := os.ReadFile(p.paused)
		if err == nil && strings.TrimSpace(string(b)) == step {
			return true
		}
		select {
		case <-p.done:
			p.t.Fatalf("runrollback %s ended (exit %d) before pausing at %s:\n%s", strings.Join(p.args, " "), p.code, step, p.output())
		default:
		}
		return false
	})
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// expectCode fails the case unless the run exited with one of codes.
func (p *proc) expectCode(codes ...int) {
	p.t.Helper()
	for _, c := range codes {
		if p.code == c {
			return
		}
	}
	p.t.Fatalf("runrollback %s: exit %d, want %v; output:\n%s", strings.Join(p.args, " "), p.code, codes, p.output())
}

// drillArgs are the flags of every drill in the battery: the fake answers in
// microseconds, so probes need not wait long between attempts.
func drillArgs(svc string, extra ...string) []string {
	return append([]string{"test", "--service", svc, "--retry-delay", "20ms"}, extra...)
}

func recoverArgs(svc string, extra ...string) []string {
	return append([]string{"recover", "--service", svc, "--retry-delay", "20ms"}, extra...)
}

// holdAt makes the fake hold the operation of the next accepted write after
// n more (n = 0: the very next), and waits, once the run has made it, until
// the service shows it pending. It returns a func to call then.
func (f *fake) holdAt(n int) (wait func(svc string)) {
	f.t.Helper()
	base := f.writes()
	if n == 0 {
		f.post("/hold", map[string]any{"hold": true})
	} else {
		f.post("/hold", map[string]any{"hold": true, "after": n})
	}
	return func(svc string) {
		f.t.Helper()
		waitFor(f.t, fmt.Sprintf("write %d of the run to be pending", n+1), func() bool {
			return f.writes() >= base+n+1 && (f.reconciling(svc) || f.pendingOperations() > 0)
		})
	}
}

// release lets every held operation finish and holds no more.
func (f *fake) release() {
	f.t.Helper()
	f.post("/hold", map[string]any{"hold": false})
	f.post("/release", struct{}{})
}
