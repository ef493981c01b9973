package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDocExamples runs, as written, the shell examples of the documentation
// that start a fake (`runrollback fake > fake.env &`): in a fresh folder, with
// bin/runrollback and runrollback on PATH being this build. Each must exit 0,
// print nothing on stderr but the fake's "fake: stopping", and leave no fake
// running. `go build -o bin/runrollback ./cmd/runrollback`, the examples'
// first line, is what the test does itself.
func TestDocExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs shell examples")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	self, err := exec.LookPath("runrollback") // testscript.Main puts this build on PATH
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```")
	starts := regexp.MustCompile(`runrollback fake( --seed \S+)? > fake\.env &`)
	n := 0
	for _, doc := range []string{"../../docs/drill.md", "../../fakes/README.md", "../../README.md", "../../CONTRIBUTING.md"} {
		text := read(t, doc)
		blocks := block.FindAllStringSubmatchIndex(text, -1)
		for i, m := range blocks {
			script := text[m[2]:m[3]]
			if !starts.MatchString(script) {
				continue
			}
			// A session goes on in the blocks that follow, up to the one
			// that stops the fake.
			for j := i + 1; !strings.Contains(script, "kill %1") && j < len(blocks); j++ {
				script += text[blocks[j][2]:blocks[j][3]]
			}
			n++
			line := strings.Count(text[:m[0]], "\n") + 1
			t.Run(fmt.Sprintf("%s:%d", filepath.Base(filepath.Dir(doc))+"/"+filepath.Base(doc), line), func(t *testing.T) {
				runDocExample(t, self, script)
			})
		}
	}
	if n < 3 {
		t.Errorf("found %d examples that start a fake, want the 3 of docs/drill.md and fakes/README.md", n)
	}
}

func runDocExample(t *testing.T, self, script string) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nexec " + self + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "runrollback"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	script = strings.Replace(script, "go build -o bin/runrollback ./cmd/runrollback\n", "", 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = docEnv(bin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The example runs in a process group of its own: when it fails before
	// its kill %1, the fake it started is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	defer func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }()
	err := cmd.Wait()
	t.Logf("stdout:\n%s", stdout.String())
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	if rest := strings.TrimSpace(strings.ReplaceAll(stderr.String(), "fake: stopping", "")); rest != "" {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	// kill %1 stopped the fake itself: its port closes.
	env, err := os.ReadFile(filepath.Join(dir, "fake.env"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(env), "\n")
	addr, ok := strings.CutPrefix(first, "CLOUD_RUN_EMULATOR_HOST=")
	if !ok {
		t.Fatalf("fake.env starts with %q", first)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the fake at %s still answers after the example ended", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// docEnv is a user's environment: PATH with bin first, HOME, and nothing of
// runrollback's or Google Cloud's.
func docEnv(bin string) []string {
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "NO_COLOR=1"}
	for _, k := range []string{"HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
