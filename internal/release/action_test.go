package release

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The tests below run the Action's step (scripts/action/run.sh) with bash, as
// the runner would: INPUT_* variables, GITHUB_ACTIONS=true, a GITHUB_OUTPUT
// file per step, against a local stand-in for a GitHub release (served by an
// httptest.Server through the script's download_url input) and the fake Cloud
// Run (`runrollback fake`), which the tests judge through its control
// endpoint, never through runrollback's own reads.

// releaseTag is the version the test binary is stamped with, as the release
// build stamps it (.goreleaser.yaml's ldflags).
const releaseTag = "v1.2.3"

// builtBinary is the runrollback binary built once for these tests.
var builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary.dir != "" {
		os.RemoveAll(builtBinary.dir)
	}
	os.Exit(code)
}

// stampedBinary builds runrollback as the release does (static, trimmed,
// stamped with releaseTag) once, and returns its path.
func stampedBinary(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "runrollback-action-test")
		if err != nil {
			builtBinary.err = err
			return
		}
		builtBinary.dir = dir
		exe := "runrollback"
		if runtime.GOOS == "windows" {
			exe += ".exe"
		}
		builtBinary.path = filepath.Join(dir, exe)
		cmd := exec.Command("go", "build", "-trimpath",
			"-ldflags", "-s -w -X main.version="+releaseTag+" -X main.commit=0123456789abcdef0123456789abcdef01234567",
			"-o", builtBinary.path, "./cmd/runrollback")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			builtBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtBinary.err != nil {
		t.Fatal(builtBinary.err)
	}
	return builtBinary.path
}

// needBash skips the test when bash is missing, the one thing these tests
// cannot do without.
func needBash(t *testing.T) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed: the Action's step is a bash script")
	}
	return bash
}

// runnerPlatform is what the runner says about this machine (RUNNER_OS,
// RUNNER_ARCH) and the name of the release archive for it.
func runnerPlatform(t *testing.T) (runnerOS, runnerArch, archive, exe string) {
	t.Helper()
	switch runtime.GOOS {
	case "linux":
		runnerOS = "Linux"
	case "darwin":
		runnerOS = "macOS"
	case "windows":
		runnerOS = "Windows"
	default:
		t.Skipf("no runrollback release for GOOS %s", runtime.GOOS)
	}
	switch runtime.GOARCH {
	case "amd64":
		runnerArch = "X64"
	case "arm64":
		runnerArch = "ARM64"
	default:
		t.Skipf("no runrollback release for GOARCH %s", runtime.GOARCH)
	}
	c := readGoreleaser(t)
	name := strings.NewReplacer("{{ .ProjectName }}", c.ProjectName, "{{ .Os }}", runtime.GOOS, "{{ .Arch }}", runtime.GOARCH).
		Replace(c.Archives[0].NameTemplate)
	if strings.Contains(name, "{{") {
		t.Fatalf("archive name template %q uses a template this test does not fill in", c.Archives[0].NameTemplate)
	}
	format := c.Archives[0].Formats[0]
	exe = c.Builds[0].Binary
	for _, o := range c.Archives[0].FormatOverrides {
		if o.Goos == runtime.GOOS {
			format = o.Formats[0]
		}
	}
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	return runnerOS, runnerArch, name + "." + format, exe
}

// release is a local stand-in for the GitHub releases of runrollback: the
// files of one release under /download/<tag>/ and /latest/download/, as
// github.com serves them, and a log of the paths requested.
type release struct {
	url     string
	archive string
	root    string

	mu       sync.Mutex
	requests []string
}

// newRelease packages bin as GoReleaser does (the binary, README.md and
// LICENSE at the archive's root; checksums.txt with "<sha256>  <name>"
// lines) and serves it. edit, when not nil, changes the files before they
// are served (name → content; a nil content removes the file).
func newRelease(t *testing.T, bin string, tags []string, edit func(files map[string][]byte)) *release {
	t.Helper()
	_, _, archive, exe := runnerPlatform(t)
	root := repoRoot(t)
	members := map[string]string{exe: bin, "README.md": filepath.Join(root, "README.md"), "LICENSE": filepath.Join(root, "LICENSE")}
	data, err := packArchive(archive, members)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	other := sha256.Sum256([]byte("another archive"))
	checksums := fmt.Sprintf("%s  %s\n%x  %s\n", hex.EncodeToString(sum[:]), archive, other, "runrollback_plan9_mips.tar.gz")
	files := map[string][]byte{archive: data, "checksums.txt": []byte(checksums)}
	if edit != nil {
		edit(files)
	}
	r := &release{archive: archive, root: t.TempDir()}
	for _, dir := range append([]string{"latest/download"}, prefixed("download/", tags)...) {
		dir = filepath.Join(r.root, "releases", filepath.FromSlash(dir))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if content == nil {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	fs := http.FileServer(http.Dir(r.root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.URL.Path)
		r.mu.Unlock()
		fs.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/releases"
	return r
}

func prefixed(prefix string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, prefix+n)
	}
	return out
}

// requested returns the paths the release server was asked for.
func (r *release) requested() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// packArchive writes a .tar.gz or .zip holding members (archive name → file).
func packArchive(name string, members map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range members {
			if !yield(n) {
				return
			}
		}
	})
	if strings.HasSuffix(name, ".zip") {
		zw := zip.NewWriter(&buf)
		for _, n := range names {
			b, err := os.ReadFile(members[n])
			if err != nil {
				return nil, err
			}
			w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate})
			if err != nil {
				return nil, err
			}
			if _, err := w.Write(b); err != nil {
				return nil, err
			}
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		b, err := os.ReadFile(members[n])
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fake is `runrollback fake` running as its own process, with its control
// endpoint.
type fake struct {
	emulator string // CLOUD_RUN_EMULATOR_HOST
	control  string // base URL of the control endpoint
}

func startFake(t *testing.T, bin string) *fake {
	t.Helper()
	cmd := exec.Command(bin, "fake")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first two lines name the gRPC address and the control endpoint;
	// the rest is read and dropped, so the fake never blocks on a full pipe.
	lines := make(chan string, 2)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for i := 0; i < 2 && sc.Scan(); i++ {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	f := &fake{}
	deadline := time.After(30 * time.Second)
	for f.emulator == "" || f.control == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("runrollback fake stopped before naming its addresses; stderr:\n%s", stderr.String())
			}
			if v, ok := strings.CutPrefix(line, "CLOUD_RUN_EMULATOR_HOST="); ok {
				f.emulator = v
			}
			if v, ok := strings.CutPrefix(line, "RUNROLLBACK_FAKE_CONTROL="); ok {
				f.control = v
			}
		case <-deadline:
			t.Fatalf("runrollback fake named no addresses within 30s; stderr:\n%s", stderr.String())
		}
	}
	return f
}

// fakeTarget and fakeService are the parts of the control endpoint's
// GET /state that the tests judge (fakes/README.md).
type fakeTarget struct {
	Revision string `json:"revision"`
	Percent  int32  `json:"percent"`
	Tag      string `json:"tag"`
	Latest   bool   `json:"latest"`
}

type fakeService struct {
	Service         string            `json:"service"`
	Traffic         []fakeTarget      `json:"traffic"`
	TrafficStatuses []fakeTarget      `json:"traffic_statuses"`
	Annotations     map[string]string `json:"annotations"`
	Revisions       []struct {
		Name string `json:"name"`
	} `json:"revisions"`
}

func (f *fake) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(f.control + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (f *fake) service(t *testing.T, name string) fakeService {
	t.Helper()
	var st struct {
		Services []fakeService `json:"services"`
	}
	f.get(t, "/state", &st)
	for _, s := range st.Services {
		if s.Service == name {
			return s
		}
	}
	t.Fatalf("the fake has no service %q", name)
	return fakeService{}
}

// calls is how many API calls the fake has answered, and how many writes.
func (f *fake) calls(t *testing.T) (calls, writes int) {
	t.Helper()
	var c struct {
		Calls  map[string]int `json:"calls"`
		Writes int            `json:"writes"`
	}
	f.get(t, "/calls", &c)
	for _, n := range c.Calls {
		calls += n
	}
	return calls, c.Writes
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// job is the environment of one GitHub Actions job on one runner: its
// temporary directory, tool cache and state directory are shared by its
// steps.
type job struct {
	t       *testing.T
	bash    string
	script  string
	env     []string
	dir     string
	release *release
	fake    *fake
}

func newJob(t *testing.T, rel *release, f *fake) *job {
	t.Helper()
	runnerOS, runnerArch, _, _ := runnerPlatform(t)
	dir := t.TempDir()
	for _, d := range []string{"temp", "toolcache", "home", "state", "workspace"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"GITHUB_ACTIONS=true",
		"RUNNER_OS=" + runnerOS,
		"RUNNER_ARCH=" + runnerArch,
		"RUNNER_TEMP=" + filepath.Join(dir, "temp"),
		"RUNNER_TOOL_CACHE=" + filepath.Join(dir, "toolcache"),
		"RUNROLLBACK_STATE_DIR=" + filepath.Join(dir, "state"),
		"NO_COLOR=1",
	}
	if rel != nil {
		env = append(env, "INPUT_DOWNLOAD_URL="+rel.url)
	}
	if f != nil {
		env = append(env, "CLOUD_RUN_EMULATOR_HOST="+f.emulator)
	}
	return &job{t: t, bash: needBash(t), script: filepath.Join(repoRoot(t), "scripts", "action", "run.sh"),
		env: env, dir: dir, release: rel, fake: f}
}

// step is one use of the Action in a job: its inputs, and what it left.
type step struct {
	inputs  map[string]string
	extra   []string // more environment, e.g. RUNROLLBACK_PAUSE_AT
	cmd     *exec.Cmd
	out     bytes.Buffer
	outputs string // the path of its GITHUB_OUTPUT file
	path    string // the path of its GITHUB_PATH file
	done    chan struct{}
	code    int
	waitErr error
}

var stepCount struct {
	sync.Mutex
	n int
}

// start runs the Action's script as a step with inputs (input name → value).
func (j *job) start(inputs map[string]string, extra ...string) *step {
	j.t.Helper()
	stepCount.Lock()
	stepCount.n++
	n := stepCount.n
	stepCount.Unlock()
	s := &step{inputs: inputs, extra: extra, done: make(chan struct{}),
		outputs: filepath.Join(j.dir, fmt.Sprintf("output-%d", n)),
		path:    filepath.Join(j.dir, fmt.Sprintf("path-%d", n))}
	for _, f := range []string{s.outputs, s.path} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			j.t.Fatal(err)
		}
	}
	env := slices.Clone(j.env)
	env = append(env, "GITHUB_OUTPUT="+s.outputs, "GITHUB_PATH="+s.path)
	for name, v := range inputs {
		env = append(env, "INPUT_"+strings.ToUpper(name)+"="+v)
	}
	env = append(env, extra...)
	s.cmd = exec.Command(j.bash, j.script)
	s.cmd.Dir = filepath.Join(j.dir, "workspace")
	s.cmd.Env = env
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	if err := s.cmd.Start(); err != nil {
		j.t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		s.waitErr = s.cmd.Wait()
		s.code = s.cmd.ProcessState.ExitCode()
	}()
	return s
}

// wait waits for the step to end (at most 2 minutes) and returns its exit code.
func (s *step) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("the step did not end within 2 minutes; output:\n%s", s.out.String())
	}
	var exit *exec.ExitError
	if s.waitErr != nil && !errors.As(s.waitErr, &exit) {
		t.Fatal(s.waitErr)
	}
	return s.code
}

// run runs a step to its end and checks its exit code.
func (j *job) run(inputs map[string]string, wantCode int, extra ...string) *step {
	j.t.Helper()
	s := j.start(inputs, extra...)
	if code := s.wait(j.t); code != wantCode {
		j.t.Fatalf("inputs %v: exit %d, want %d; output:\n%s", inputs, code, wantCode, s.out.String())
	}
	return s
}

// stepOutputs parses a GITHUB_OUTPUT file: "name=value" lines and
// "name<<DELIMITER" blocks, as the runner reads them.
func stepOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var value []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				value = append(value, lines[i])
			}
			if i == len(lines) {
				t.Fatalf("%s: output %q has no closing delimiter", path, name)
			}
			out[name] = strings.Join(value, "\n")
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is neither name=value nor name<<DELIMITER", path, line)
		}
		out[name] = value
	}
	return out
}

// actionManifest is the part of action.yml the tests check.
type actionManifest struct {
	Inputs map[string]struct {
		Required bool    `yaml:"required"`
		Default  *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			If    string            `yaml:"if"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func readAction(t *testing.T) actionManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var m actionManifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return m
}

var outputRef = regexp.MustCompile(`^\$\{\{ steps\.run\.outputs\.([a-z_]+) \}\}$`)

// TestActionManifest checks that action.yml and its script agree: a
// composite Action of one step that execs the script; every input reaches
// the script as INPUT_<NAME> and every INPUT_ the script reads is an input;
// every output is a step output of that step.
func TestActionManifest(t *testing.T) {
	m := readAction(t)
	if m.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q, want composite", m.Runs.Using)
	}
	if len(m.Runs.Steps) != 1 {
		t.Fatalf("%d steps, want 1: the runner signals the running step's process, which must be runrollback", len(m.Runs.Steps))
	}
	st := m.Runs.Steps[0]
	if st.ID != "run" || st.Shell != "bash" {
		t.Errorf("step id %q shell %q, want run and bash", st.ID, st.Shell)
	}
	if want := `exec bash "$GITHUB_ACTION_PATH/scripts/action/run.sh"`; strings.TrimSpace(st.Run) != want {
		t.Errorf("run = %q, want %q (exec: the step's process must become runrollback)", st.Run, want)
	}
	if !strings.Contains(st.If, "!cancelled()") || !strings.Contains(st.If, "inputs.command == 'recover'") {
		t.Errorf("if = %q: want it to run unless cancelled, and a recover to run on", st.If)
	}
	for name := range m.Inputs {
		if name != strings.ToLower(name) || strings.Contains(name, "-") {
			t.Errorf("input %q is not snake_case", name)
		}
		env := "INPUT_" + strings.ToUpper(name)
		if got, want := st.Env[env], "${{ inputs."+name+" }}"; got != want {
			t.Errorf("step env %s = %q, want %q", env, got, want)
		}
	}
	if !m.Inputs["command"].Required {
		t.Error("the command input is not required")
	}
	if d := m.Inputs["version"].Default; d == nil || *d != "latest" {
		t.Errorf("version default %v, want latest", d)
	}
	script, err := os.ReadFile(filepath.Join(repoRoot(t), "scripts", "action", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, v := range regexp.MustCompile(`INPUT_[A-Z_]+`).FindAllString(string(script), -1) {
		read[v] = true
		if _, ok := st.Env[v]; !ok {
			t.Errorf("scripts/action/run.sh reads %s, which action.yml does not set", v)
		}
	}
	for env := range st.Env {
		if strings.HasPrefix(env, "INPUT_") && !read[env] {
			t.Errorf("action.yml sets %s, which scripts/action/run.sh never reads", env)
		}
	}
	for name, o := range m.Outputs {
		sub := outputRef.FindStringSubmatch(o.Value)
		if sub == nil || sub[1] != name {
			t.Errorf("output %s = %q, want ${{ steps.run.outputs.%s }}", name, o.Value, name)
		}
		if o.Description == "" {
			t.Errorf("output %s has no description", name)
		}
	}
	for _, want := range []string{"result", "exit_code", "rolled_back", "traffic_restored", "revision", "report"} {
		if _, ok := m.Outputs[want]; !ok {
			t.Errorf("action.yml lacks the output %s", want)
		}
	}
}

// TestActionInstallsAndRuns is a deploy job's use of the Action: snapshot,
// guard from that snapshot, a drill, then the recover step, which finds
// nothing to do. Each step's outputs are what action.yml maps, the pinned
// version and `latest` download the files they should, and later steps
// reuse the verified install.
func TestActionInstallsAndRuns(t *testing.T) {
	needBash(t)
	bin := stampedBinary(t)
	rel := newRelease(t, bin, []string{releaseTag}, nil)
	f := startFake(t, bin)
	j := newJob(t, rel, f)
	seen := map[string]bool{}
	record := func(o map[string]string) {
		for k := range o {
			seen[k] = true
		}
	}

	snap := j.run(map[string]string{"command": "snapshot", "service": "api", "version": "latest"}, 0)
	o := stepOutputs(t, snap.outputs)
	record(o)
	if o["result"] != "pass" || o["exit_code"] != "0" || o["version"] != releaseTag {
		t.Errorf("snapshot outputs %v, want result pass, exit_code 0, version %s", o, releaseTag)
	}
	if _, err := os.Stat(o["snapshot"]); err != nil || !filepath.IsAbs(o["snapshot"]) {
		t.Errorf("snapshot output %q: %v", o["snapshot"], err)
	}
	if got := rel.requested(); !slices.Equal(got, []string{"/releases/latest/download/checksums.txt", "/releases/latest/download/" + rel.archive}) {
		t.Errorf("version latest requested %q", got)
	}
	path, err := os.ReadFile(snap.path)
	if err != nil || !strings.HasPrefix(string(path), filepath.Join(j.dir, "toolcache", "runrollback")) {
		t.Errorf("GITHUB_PATH got %q (%v), want the install directory in the tool cache", path, err)
	}

	guard := j.run(map[string]string{"command": "guard", "service": "api", "version": strings.TrimPrefix(releaseTag, "v"),
		"restore_from": o["snapshot"], "args": "--retry-delay 20ms\n--successes 3"}, 0)
	if !strings.Contains(guard.out.String(), "runrollback: reusing") {
		t.Errorf("the second step installed again:\n%s", guard.out.String())
	}
	o = stepOutputs(t, guard.outputs)
	record(o)
	if o["result"] != "pass" || o["exit_code"] != "0" || o["revision"] != "api-00002-def" || o["rolled_back"] != "false" {
		t.Errorf("guard outputs %v, want pass, 0, revision api-00002-def, not rolled back", o)
	}
	if got := rel.requested(); !slices.Contains(got, "/releases/download/"+releaseTag+"/checksums.txt") || slices.Contains(got, "/releases/download/"+releaseTag+"/"+rel.archive) {
		t.Errorf("pinned version requested %q: want its checksums.txt, and no archive (the install is reused)", got)
	}

	beforeDrill := f.service(t, "api")
	drill := j.run(map[string]string{"command": "test", "service": "api", "version": releaseTag, "args": "--retry-delay 20ms"}, 0)
	o = stepOutputs(t, drill.outputs)
	record(o)
	if o["result"] != "pass" || o["exit_code"] != "0" || o["rolled_back"] != "true" || o["traffic_restored"] != "true" {
		t.Errorf("drill outputs %v, want pass, 0, rolled back, traffic restored", o)
	}
	for _, k := range []string{"report", "junit"} {
		if b, err := os.ReadFile(o[k]); err != nil || len(b) == 0 {
			t.Errorf("output %s = %q: %v", k, o[k], err)
		}
	}
	if api := f.service(t, "api"); !slices.Equal(api.Traffic, beforeDrill.Traffic) {
		t.Errorf("api traffic after the drill %+v, before %+v", api.Traffic, beforeDrill.Traffic)
	}

	calls, writes := f.calls(t)
	rec := j.run(map[string]string{"command": "recover", "service": "api", "version": releaseTag}, 0)
	if !strings.Contains(rec.out.String(), "nothing in flight") {
		t.Errorf("recover on a clean service said:\n%s", rec.out.String())
	}
	o = stepOutputs(t, rec.outputs)
	record(o)
	if o["result"] != "pass" || o["rolled_back"] != "false" {
		t.Errorf("recover outputs %v, want pass, not rolled back", o)
	}
	if _, w := f.calls(t); w != writes {
		t.Errorf("recover on a clean service wrote %d time(s)", w-writes)
	}
	if c, _ := f.calls(t); c == calls {
		t.Error("recover made no API call: it cannot have looked at the service")
	}

	for name := range readAction(t).Outputs {
		if !seen[name] {
			t.Errorf("action.yml maps the output %s, which no step wrote", name)
		}
	}
}

// TestActionShardAndNotify: the shard input reaches --shard (a part with
// nothing to do passes and says so), and notify_url reaches runrollback
// through RUNROLLBACK_NOTIFY_URL: the hook gets the summary, and the URL's
// secret path is nowhere in the step's output.
func TestActionShardAndNotify(t *testing.T) {
	needBash(t)
	bin := stampedBinary(t)
	rel := newRelease(t, bin, []string{releaseTag}, nil)
	f := startFake(t, bin)
	j := newJob(t, rel, f)
	var mu sync.Mutex
	var posts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, r.URL.Path+" "+string(b))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	const secret = "HOOKSECRET-5e7d"
	s := j.run(map[string]string{"command": "test", "service": "api", "shard": "1/2",
		"notify_url": hook.URL + "/services/" + secret, "args": "--notify-on always"}, 0)
	if !strings.Contains(s.out.String(), "PASS  test: shard 1/2: nothing to do") {
		t.Errorf("the empty part did not say so:\n%s", s.out.String())
	}
	if strings.Contains(s.out.String(), secret) {
		t.Errorf("the step's output shows the webhook's secret:\n%s", s.out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 || !strings.HasPrefix(posts[0], "/services/"+secret+" ") || !strings.Contains(posts[0], `"shard":{"index":1,"count":2`) {
		t.Errorf("the hook got %q, want one summary of shard 1/2 at its secret path", posts)
	}
	if _, w := f.calls(t); w != 0 {
		t.Errorf("an empty part made %d writes", w)
	}
}

// TestActionRefusesUnverified: a tampered archive, a checksums.txt without
// the archive's line, or no checksums.txt at all fail the step before
// runrollback runs: nothing installed, no API call, no outputs.
func TestActionRefusesUnverified(t *testing.T) {
	needBash(t)
	bin := stampedBinary(t)
	f := startFake(t, bin)
	_, _, archive, _ := runnerPlatform(t)
	cases := []struct {
		name string
		edit func(map[string][]byte)
		say  string
	}{
		{"tampered archive", func(files map[string][]byte) {
			b := slices.Clone(files[archive])
			b[len(b)/2] ^= 0xff
			files[archive] = b
		}, "refusing to install it"},
		{"no checksum line", func(files map[string][]byte) {
			var keep []string
			for _, l := range strings.Split(string(files["checksums.txt"]), "\n") {
				if !strings.HasSuffix(l, "  "+archive) {
					keep = append(keep, l)
				}
			}
			files["checksums.txt"] = []byte(strings.Join(keep, "\n"))
		}, "has no line for " + archive},
		{"no checksums.txt", func(files map[string][]byte) { files["checksums.txt"] = nil }, "could not download"},
		{"two checksum lines", func(files map[string][]byte) {
			files["checksums.txt"] = append(files["checksums.txt"], []byte(strings.Repeat("0", 64)+"  "+archive+"\n")...)
		}, "bad or duplicate line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rel := newRelease(t, bin, []string{releaseTag}, c.edit)
			j := newJob(t, rel, f)
			before, _ := f.calls(t)
			s := j.run(map[string]string{"command": "status", "service": "api", "version": releaseTag}, 1)
			if !strings.Contains(s.out.String(), "::error title=runrollback action::") || !strings.Contains(s.out.String(), c.say) {
				t.Errorf("output does not say %q in an error annotation:\n%s", c.say, s.out.String())
			}
			if after, _ := f.calls(t); after != before {
				t.Errorf("runrollback ran: %d API call(s)", after-before)
			}
			if o := stepOutputs(t, s.outputs); len(o) != 0 {
				t.Errorf("outputs %v, want none", o)
			}
			var installed []string
			_ = filepath.WalkDir(filepath.Join(j.dir, "toolcache"), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					installed = append(installed, p)
				}
				return nil
			})
			if len(installed) > 0 {
				t.Errorf("installed %q", installed)
			}
		})
	}
}

// TestActionRefusesBadInputs: a bad input exits 2 before anything is
// downloaded; a release whose binary names another version exits 1.
func TestActionRefusesBadInputs(t *testing.T) {
	needBash(t)
	bin := stampedBinary(t)
	rel := newRelease(t, bin, []string{releaseTag, "v1.2.4"}, nil)
	j := newJob(t, rel, nil)
	for _, c := range []struct {
		inputs map[string]string
		say    string
	}{
		{map[string]string{}, "the command input is required"},
		{map[string]string{"command": "deploy"}, `command "deploy" is not one of`},
		{map[string]string{"command": "fake"}, `command "fake" is not one of`},
		{map[string]string{"command": "guard", "break": "health"}, "the break input applies to test only"},
		{map[string]string{"command": "guard", "shard": "0/2"}, "the shard input applies to test recover only"},
		{map[string]string{"command": "recover", "notify_url": "https://hooks.example.com/x"}, "the notify_url input applies to test guard only"},
		{map[string]string{"command": "test", "candidate_tag": "candidate"}, "the candidate_tag input applies to guard only"},
		{map[string]string{"command": "snapshot", "health_path": "/healthz"}, "the health_path input applies to"},
		{map[string]string{"command": "guard", "candidate_tag": "c", "restore_from": "s.json"}, "candidate_tag and restore_from both given"},
		{map[string]string{"command": "probe"}, "probe needs the url input"},
		{map[string]string{"command": "status", "version": "1.2"}, `version "1.2" is neither latest nor a release tag`},
		{map[string]string{"command": "status", "version": "v1.2.3;id"}, "is neither latest nor a release tag"},
		{map[string]string{"command": "status", "download_url": "http://example.com/releases"}, "must be https://"},
		{map[string]string{"command": "status", "download_url": "http://127.0.0.1:80@example.com/releases"}, "must not hold credentials"},
		{map[string]string{"command": "status", "args": `--retries "5`}, "could not be split"},
		{map[string]string{"command": "status", "working_directory": "/nonexistent/dir"}, "cannot be entered"},
	} {
		s := j.run(c.inputs, 2)
		if !strings.Contains(s.out.String(), "::error title=runrollback action::") || !strings.Contains(s.out.String(), c.say) {
			t.Errorf("inputs %v: output does not say %q in an error annotation:\n%s", c.inputs, c.say, s.out.String())
		}
	}
	if got := rel.requested(); len(got) > 0 {
		t.Errorf("bad inputs downloaded %q", got)
	}
	s := j.run(map[string]string{"command": "status", "version": "v1.2.4"}, 1)
	if !strings.Contains(s.out.String(), "the v1.2.4 release holds runrollback "+releaseTag) {
		t.Errorf("a mislabelled release was not refused:\n%s", s.out.String())
	}
}

// TestActionCancelRestores cancels a drill as the runner cancels a step:
// SIGINT to the step's process, the one it started (bash running the
// script), while the broken revision serves users. Because the script execs
// runrollback, the signal reaches it, and it puts the service back. The
// recover step that follows finds nothing in flight.
func TestActionCancelRestores(t *testing.T) {
	needBash(t)
	if runtime.GOOS == "windows" {
		t.Skip("the runner cancels with SIGINT on Linux and macOS; Windows has no SIGINT to send to a process")
	}
	bin := stampedBinary(t)
	rel := newRelease(t, bin, []string{releaseTag}, nil)
	f := startFake(t, bin)
	j := newJob(t, rel, f)
	before := f.service(t, "api")
	paused := filepath.Join(j.dir, "paused")
	s := j.start(map[string]string{"command": "test", "service": "api", "version": releaseTag, "args": "--retry-delay 20ms"},
		"RUNROLLBACK_PAUSE_AT=detect", "RUNROLLBACK_PAUSE_FILE="+paused)
	waitFor(t, "the drill pauses before detect", time.Minute, func() bool {
		select {
		case <-s.done:
			t.Fatalf("the step ended before the pause (exit %d):\n%s", s.code, s.out.String())
		default:
		}
		_, err := os.Stat(paused)
		return err == nil
	})
	during := f.service(t, "api")
	if len(during.TrafficStatuses) == 0 || !slices.ContainsFunc(during.TrafficStatuses, func(tg fakeTarget) bool {
		return tg.Percent == 100 && tg.Revision != "api-00002-def"
	}) {
		t.Fatalf("before the signal, users are not on the broken revision: %+v", during.TrafficStatuses)
	}
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t); code != 3 {
		t.Fatalf("exit %d after SIGINT, want 3 (aborted safely, restored); output:\n%s", code, s.out.String())
	}
	restored := func() bool {
		api := f.service(t, "api")
		if !slices.Equal(api.Traffic, before.Traffic) || !slices.Equal(api.TrafficStatuses, before.TrafficStatuses) {
			return false
		}
		for k := range api.Annotations {
			if strings.HasPrefix(k, "runrollback.dev/") {
				return false
			}
		}
		return !slices.ContainsFunc(api.Revisions, func(r struct {
			Name string `json:"name"`
		}) bool {
			return strings.Contains(r.Name, "drill")
		})
	}
	waitFor(t, "the service is as before the drill", 30*time.Second, restored)
	o := stepOutputs(t, s.outputs)
	if o["exit_code"] != "3" || o["rolled_back"] != "true" || o["traffic_restored"] != "true" {
		t.Errorf("outputs after the cancel %v, want exit_code 3, rolled back, traffic restored", o)
	}

	_, writes := f.calls(t)
	rec := j.run(map[string]string{"command": "recover", "service": "api", "version": releaseTag}, 0)
	if !strings.Contains(rec.out.String(), "nothing in flight") {
		t.Errorf("recover after a drill that restored itself said:\n%s", rec.out.String())
	}
	if _, w := f.calls(t); w != writes {
		t.Errorf("recover wrote %d time(s) to a clean service", w-writes)
	}
}
