package main

import (
	"bufio"
	"context"
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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/rogpeppe/go-internal/testscript"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/cloudrun"
	"github.com/runrollback/runrollback/internal/rollback"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"runrollback": func() { os.Exit(Main(os.Args, os.Stdout, os.Stderr, os.Getenv)) },
	})
}

// TestScripts runs testdata/script/*.txtar: the real command, as a user runs it,
// against a fake Cloud Run started for each script (seeded from the script's
// world.json when it has one, else the default world).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               setupFake,
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// TestScriptsREST runs every script again with RUNROLLBACK_TRANSPORT=rest:
// the same commands, the same fake, over HTTP/JSON instead of gRPC.
func TestScriptsREST(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the scripts run over gRPC only")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			if err := setupFake(env); err != nil {
				return err
			}
			env.Setenv("RUNROLLBACK_TRANSPORT", "rest")
			return nil
		},
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

type fakeKey struct{}

// scriptFake is the fake a script runs against, and its state at the start.
type scriptFake struct {
	srv       *fakerun.Server
	plane     *fakeapp.Plane
	writes0   int
	calls0    int
	templates map[string]*runpb.RevisionTemplate
}

func setupFake(env *testscript.Env) error {
	world := fakerun.DefaultWorld()
	if seed := filepath.Join(env.WorkDir, "world.json"); fileExists(seed) {
		w, err := fakerun.LoadWorld(seed)
		if err != nil {
			return err
		}
		world = w
	}
	f, err := startFake(world)
	if err != nil {
		return err
	}
	env.Defer(f.close)
	env.Values[fakeKey{}] = f
	for k, v := range f.env(filepath.Join(env.WorkDir, "state")) {
		env.Setenv(k, v)
	}
	return nil
}

// startFake starts the fake Cloud Run and its serving plane, seeded with world.
func startFake(world fakerun.World, opts ...fakeapp.Option) (*scriptFake, error) {
	srv, err := fakerun.NewServer()
	if err != nil {
		return nil, err
	}
	plane := fakeapp.New(srv, opts...)
	if err := srv.Seed(world); err != nil {
		plane.Close()
		srv.Close()
		return nil, err
	}
	f := &scriptFake{srv: srv, plane: plane, writes0: srv.Writes(), templates: map[string]*runpb.RevisionTemplate{}}
	for _, n := range srv.Calls() {
		f.calls0 += n
	}
	for _, s := range srv.Services() {
		f.templates[s.GetName()] = s.GetTemplate()
	}
	return f, nil
}

func (f *scriptFake) close() { f.plane.Close(); f.srv.Close() }

// env is the environment a command run against the fake gets.
func (f *scriptFake) env(stateDir string) map[string]string {
	env := map[string]string{
		"CLOUD_RUN_EMULATOR_HOST": f.srv.Addr,
		"GOOGLE_CLOUD_PROJECT":    "local-project",
		"CLOUDSDK_RUN_REGION":     "us-central1",
		"RUNROLLBACK_STATE_DIR":   stateDir,
		"NO_COLOR":                "1",
	}
	for _, s := range f.srv.Services() {
		name := strings.ToUpper(strings.ReplaceAll(shortResource(s.GetName()), "-", "_"))
		env[name+"_URL"] = s.GetUri()
	}
	return env
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func fakeOf(ts *testscript.TestScript) *scriptFake {
	return ts.Value(fakeKey{}).(*scriptFake)
}

func fullName(name string) string {
	return "projects/local-project/locations/us-central1/services/" + name
}

func renderTargets[T interface {
	GetType() runpb.TrafficTargetAllocationType
	GetRevision() string
	GetPercent() int32
	GetTag() string
}](targets []T) string {
	var parts []string
	for _, t := range targets {
		name := t.GetRevision()
		if t.GetType() == runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST && name == "" {
			name = "LATEST"
		}
		s := fmt.Sprintf("%s=%d", shortResource(name), t.GetPercent())
		if t.GetTag() != "" {
			s += "@" + t.GetTag()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// adapter is a Cloud Run client on the script's fake, for commands that play
// another writer (a deploy workflow, a teammate).
func adapter(ts *testscript.TestScript) *cloudrun.Client {
	c, err := dialFake(fakeOf(ts).srv.Addr)
	ts.Check(err)
	ts.Defer(func() { _ = c.Close() })
	return c
}

func dialFake(addr string) (*cloudrun.Client, error) {
	return cloudrun.New(context.Background(), cloudrun.Config{EmulatorHost: addr, OperationTimeout: 2 * time.Second, PollInterval: 10 * time.Millisecond})
}

func scriptRef(name string) rollback.ServiceRef {
	return rollback.ServiceRef{Project: "local-project", Region: "us-central1", Name: name}
}

// matches reports whether got matches the whole of pattern, a regular
// expression (revision names carry random suffixes).
func matches(pattern, got string) bool {
	ok, err := regexp.MatchString("^(?:"+pattern+")$", got)
	return err == nil && ok
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// repeat FILE COUNT TEXT [SUFFIX]: write TEXT COUNT times, then SUFFIX, to
	// FILE ("\n" in TEXT and SUFFIX is a line break): files too large to keep
	// in a script.
	"repeat": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 3 {
			ts.Fatalf("usage: repeat FILE COUNT TEXT [SUFFIX]")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		unescape := func(s string) string { return strings.ReplaceAll(s, `\n`, "\n") }
		text := strings.Repeat(unescape(args[2]), n)
		if len(args) > 3 {
			text += unescape(args[3])
		}
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(text), 0o644))
	},
	// manytargets FILE N: a snapshot of api whose traffic has N entries, one
	// serving and N-1 tagged at 0% (more than Cloud Run allows when N is large).
	"manytargets": func(ts *testscript.TestScript, neg bool, args []string) {
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		snap := rollback.Snapshot{Schema: rollback.SnapshotSchema, Service: scriptRef("api"),
			Etag: `"x"`, Generation: 1, Traffic: rollback.Split{{Revision: "api-00002-def", Percent: 100}}}
		for i := 1; i < n; i++ {
			snap.Traffic = append(snap.Traffic, rollback.Target{Revision: "api-00001-abc", Tag: fmt.Sprintf("t%d", i)})
		}
		b, err := json.Marshal(snap)
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
	},
	// healthserver VAR STATUS BODY: serve BODY with STATUS on every path, as
	// an app that is not behind the fake (no X-Served-By), and set VAR to its
	// URL. BODY @FILE serves the content of FILE.
	"healthserver": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: healthserver VAR STATUS BODY")
		}
		code, err := strconv.Atoi(args[1])
		ts.Check(err)
		body := args[2]
		if name, ok := strings.CutPrefix(body, "@"); ok {
			body = ts.ReadFile(name)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}))
		ts.Defer(srv.Close)
		ts.Setenv(args[0], srv.URL)
	},
	// exits CODE COMMAND [ARGS...]: run the command as exec does (stdout and
	// stderr are kept for the checks that follow) and check its exit code.
	"exits": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 || neg {
			ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
		}
		want, err := strconv.Atoi(args[0])
		ts.Check(err)
		got := 0
		if err := ts.Exec(args[1], args[2:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("%s: %v", strings.Join(args[1:], " "), err)
			}
			got = ee.ExitCode()
		}
		if got != want {
			ts.Fatalf("%s exited %d, want %d", strings.Join(args[1:], " "), got, want)
		}
	},
	// deploy SERVICE REVISION [KEY=VALUE...]: another writer deploys a revision
	// from the current template with env changes and sends it 100% of traffic,
	// tags staying where they were (a deploy workflow's "gcloud run deploy"). With neg, the deploy is
	// expected to fail (a revision that cannot start).
	"deploy": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 {
			ts.Fatalf("usage: deploy SERVICE REVISION [KEY=VALUE...]")
		}
		c := adapter(ts)
		ref := scriptRef(args[0])
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		env := map[string]string{}
		for _, kv := range args[2:] {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		// As gcloud run deploy does: the new revision gets 100%, tags stay where they were.
		traffic := rollback.Split{{Revision: args[1], Percent: 100}}
		for _, t := range rollback.Resolve(svc.Traffic, svc.LatestReadyRevision) {
			if t.Tag != "" {
				traffic = append(traffic, rollback.Target{Revision: t.Revision, Tag: t.Tag})
			}
		}
		_, err = c.DeployRevision(context.Background(), ref, svc.Etag, rollback.Deploy{Revision: args[1], Env: env, Traffic: traffic})
		if (err == nil) == neg {
			ts.Fatalf("deploy %s: %v", args[1], err)
		}
	},
	// stage SERVICE REVISION TAG [KEY=VALUE...]: another writer deploys a
	// revision with no traffic and a tag (gcloud run deploy --no-traffic --tag),
	// the traffic pinned as it was.
	"stage": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 3 {
			ts.Fatalf("usage: stage SERVICE REVISION TAG [KEY=VALUE...]")
		}
		c := adapter(ts)
		ref := scriptRef(args[0])
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		env := map[string]string{}
		for _, kv := range args[3:] {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		traffic := append(rollback.Resolve(svc.Traffic, svc.LatestReadyRevision), rollback.Target{Revision: args[1], Tag: args[2]})
		_, err = c.DeployRevision(context.Background(), ref, svc.Etag, rollback.Deploy{Revision: args[1], Env: env, Traffic: traffic})
		ts.Check(err)
	},
	// reconciling SERVICE SPLIT: another writer's traffic change that Cloud Run
	// has accepted but not yet rolled out (desired differs from actual).
	"reconciling": func(ts *testscript.TestScript, neg bool, args []string) {
		f := fakeOf(ts)
		c := adapter(ts)
		ref := scriptRef(args[0])
		split, err := rollback.ParseSplit(args[1])
		ts.Check(err)
		svc, err := c.GetService(context.Background(), ref)
		ts.Check(err)
		f.srv.HoldOperations(true)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := c.UpdateTraffic(ctx, ref, svc.Etag, split); !errors.Is(err, rollback.ErrPending) {
			ts.Fatalf("reconciling: UpdateTraffic = %v, want it pending", err)
		}
		f.srv.HoldOperations(false)
	},
	// waitfile FILE [TEXT]: wait (up to 30s) until FILE exists (and holds TEXT),
	// e.g. the pause marker of a run in the background.
	"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
		path := ts.MkAbs(args[0])
		ready := func() bool {
			b, err := os.ReadFile(path)
			return err == nil && (len(args) < 2 || strings.TrimSpace(string(b)) == args[1])
		}
		deadline := time.Now().Add(30 * time.Second)
		for !ready() {
			if time.Now().After(deadline) {
				ts.Fatalf("%s did not appear within 30s", strings.Join(args, " "))
			}
			time.Sleep(5 * time.Millisecond)
		}
	},
	// unleased SERVICE: no runrollback annotation is on the service.
	"unleased": func(ts *testscript.TestScript, neg bool, args []string) {
		svc := fakeOf(ts).srv.Service(fullName(args[0]))
		var ours []string
		for k := range svc.GetAnnotations() {
			if strings.HasPrefix(k, "runrollback.dev/") {
				ours = append(ours, k)
			}
		}
		if (len(ours) == 0) == neg {
			ts.Fatalf("runrollback annotations on %s: %v", args[0], ours)
		}
	},
	// term: send SIGTERM to the commands running in the background (the
	// built-in kill knows only INT and KILL).
	"term": func(ts *testscript.TestScript, neg bool, args []string) {
		for _, c := range ts.BackgroundCmds() {
			if c.Process != nil {
				ts.Check(c.Process.Signal(syscall.SIGTERM))
			}
		}
	},
	// release: let held operations finish.
	"release": func(ts *testscript.TestScript, neg bool, args []string) {
		fakeOf(ts).srv.ReleaseOperations()
	},
	// traffic SERVICE WANT: the service's desired traffic list, as "rev=pct@tag, ...".
	"traffic": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: traffic SERVICE WANT")
		}
		svc := fakeOf(ts).srv.Service(fullName(args[0]))
		if svc == nil {
			ts.Fatalf("no service %s", args[0])
		}
		got := renderTargets(svc.GetTraffic())
		if matches(args[1], got) == neg {
			ts.Fatalf("traffic of %s = %q, want %s%q", args[0], got, map[bool]string{true: "not ", false: ""}[neg], args[1])
		}
	},
	// actual SERVICE WANT: the service's actual split (traffic_statuses).
	"actual": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: actual SERVICE WANT")
		}
		svc := fakeOf(ts).srv.Service(fullName(args[0]))
		got := renderTargets(svc.GetTrafficStatuses())
		if matches(args[1], got) == neg {
			ts.Fatalf("actual split of %s = %q, want %q", args[0], got, args[1])
		}
	},
	// fakeproc VAR [ARGS...]: start 'runrollback fake ARGS' as a process of its
	// own, set VAR to the HOST:PORT of the CLOUD_RUN_EMULATOR_HOST line it
	// prints first, and stop it with SIGINT when the script ends.
	"fakeproc": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 1 {
			ts.Fatalf("usage: fakeproc VAR [ARGS...]")
		}
		bin, err := exec.LookPath("runrollback")
		ts.Check(err)
		cmd := exec.Command(bin, append([]string{"fake"}, args[1:]...)...)
		out, err := cmd.StdoutPipe()
		ts.Check(err)
		ts.Check(cmd.Start())
		ts.Defer(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		})
		first, err := bufio.NewReader(out).ReadString('\n')
		host, ok := strings.CutPrefix(strings.TrimSpace(first), "CLOUD_RUN_EMULATOR_HOST=")
		if err != nil || !ok {
			ts.Fatalf("runrollback fake printed %q first (%v), want CLOUD_RUN_EMULATOR_HOST=HOST:PORT", first, err)
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		ts.Setenv(args[0], host)
	},
	// calls N: calls the fake received since the script started, of any
	// method, over either transport.
	"calls": func(ts *testscript.TestScript, neg bool, args []string) {
		f := fakeOf(ts)
		want, err := strconv.Atoi(args[0])
		ts.Check(err)
		got := 0
		for _, n := range f.srv.Calls() {
			got += n
		}
		if got -= f.calls0; (got == want) == neg {
			ts.Fatalf("calls = %d, want %d", got, want)
		}
	},
	// writes N: accepted writes since the script started.
	"writes": func(ts *testscript.TestScript, neg bool, args []string) {
		f := fakeOf(ts)
		want, err := strconv.Atoi(args[0])
		ts.Check(err)
		if got := f.srv.Writes() - f.writes0; (got == want) == neg {
			ts.Fatalf("writes = %d, want %d", got, want)
		}
	},
	// fault METHOD N CODE: the next N calls of METHOD fail with CODE.
	"fault": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: fault METHOD N CODE")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		var code codes.Code
		ts.Check(code.UnmarshalJSON([]byte(strconv.Quote(args[2]))))
		fakeOf(ts).srv.FailNext(args[0], n, code, "injected by the test")
	},
	// clean SERVICE: nothing of ours is left — no runrollback annotation, no drill
	// tag, no drill revision — and the template equals the one at the start
	// (revision name aside).
	"clean": func(ts *testscript.TestScript, neg bool, args []string) {
		problems := leftovers(fakeOf(ts), args[0])
		if (len(problems) == 0) == neg {
			ts.Fatalf("clean %s: %s", args[0], strings.Join(problems, "; "))
		}
	},
}

// leftovers lists what of runrollback's is left on a service (a name in
// local-project/us-central1, or a full resource name): annotations, drill
// tags, drill revisions, and a template that differs from the one at the start.
func leftovers(f *scriptFake, name string) []string {
	if !strings.Contains(name, "/") {
		name = fullName(name)
	}
	svc := f.srv.Service(name)
	var problems []string
	for k := range svc.GetAnnotations() {
		if strings.HasPrefix(k, "runrollback.dev/") {
			problems = append(problems, "annotation "+k)
		}
	}
	for _, t := range svc.GetTraffic() {
		if strings.HasPrefix(t.GetTag(), "drill-") || (t.GetTag() != "" && strings.Contains(t.GetRevision(), "-drill-")) {
			problems = append(problems, "tag "+t.GetTag())
		}
	}
	for _, r := range f.srv.Revisions(svc.GetName()) {
		if strings.Contains(shortResource(r.GetName()), "-drill-") {
			problems = append(problems, "revision "+shortResource(r.GetName()))
		}
	}
	want := proto.Clone(f.templates[svc.GetName()]).(*runpb.RevisionTemplate)
	got := proto.Clone(svc.GetTemplate()).(*runpb.RevisionTemplate)
	want.Revision, got.Revision = "", ""
	if !proto.Equal(want, got) {
		problems = append(problems, fmt.Sprintf("template differs: %v, want %v", got, want))
	}
	return problems
}
