package release

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// dockerStage is one FROM … stage of a Dockerfile: its base, its name, and
// its instructions with line continuations joined (keyword upper-cased).
type dockerStage struct {
	from, name string
	lines      []string
}

// readDockerfile splits a Dockerfile into its stages. ARGs before the first
// FROM are returned apart.
func readDockerfile(t *testing.T, name string) (globalArgs []string, stages []dockerStage) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var logical []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		logical = append(logical, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, l := range logical {
		kw, rest, _ := strings.Cut(l, " ")
		kw = strings.ToUpper(kw)
		l = kw + " " + rest
		if kw == "FROM" {
			fields := strings.Fields(rest)
			st := dockerStage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if kw != "ARG" {
				t.Fatalf("%s: %q before the first FROM", name, l)
			}
			globalArgs = append(globalArgs, rest)
			continue
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, l)
	}
	return globalArgs, stages
}

// distroless is the base both images end on: static (no libc: the binary is
// static), nonroot (uid 65532).
var distroless = regexp.MustCompile(`^gcr\.io/distroless/static(-debian[0-9]+)?:nonroot(@sha256:[0-9a-f]{64})?$`)

// checkFinalStage checks what both images promise: the distroless static
// nonroot base, the binary at /runrollback, user 65532 and runrollback as
// the entrypoint.
func checkFinalStage(t *testing.T, file string, st dockerStage, copyFrom string) {
	t.Helper()
	if !distroless.MatchString(st.from) {
		t.Errorf("%s: final stage FROM %q, want gcr.io/distroless/static…:nonroot", file, st.from)
	}
	if !slices.Contains(st.lines, "USER 65532:65532") {
		t.Errorf("%s: final stage lacks USER 65532:65532 (non-root): %q", file, st.lines)
	}
	if !slices.Contains(st.lines, `ENTRYPOINT ["/runrollback"]`) {
		t.Errorf("%s: final stage lacks ENTRYPOINT [\"/runrollback\"]: %q", file, st.lines)
	}
	if !slices.Contains(st.lines, copyFrom) {
		t.Errorf("%s: final stage lacks %q: %q", file, copyFrom, st.lines)
	}
	for _, l := range st.lines {
		if strings.HasPrefix(l, "RUN ") {
			t.Errorf("%s: final stage runs %q: distroless has no shell", file, l)
		}
	}
}

// TestDockerfile checks the image built from source: a build stage on the
// Go of go.mod that builds ./cmd/runrollback static and trimmed, with the
// version stamp of the release build, and a distroless final stage.
func TestDockerfile(t *testing.T) {
	args, stages := readDockerfile(t, "Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (build, then the image)", len(stages))
	}
	build := stages[0]
	if build.name != "build" || build.from != "golang:${GO_VERSION}" {
		t.Errorf("first stage FROM %q AS %q, want golang:${GO_VERSION} AS build", build.from, build.name)
	}
	goMod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)`).FindSubmatch(goMod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "GO_VERSION=" + string(goLine[1]); !slices.Contains(args, want) {
		t.Errorf("Dockerfile ARGs %q lack %s (go.mod's Go)", args, want)
	}
	var run string
	for _, l := range build.lines {
		if strings.Contains(l, "go build") {
			run = l
		}
	}
	b := readGoreleaser(t).Builds[0]
	for _, want := range append([]string{"CGO_ENABLED=0", "-o /out/runrollback", b.Main,
		"-X main.version=${VERSION}", "-X main.commit=${COMMIT}"}, b.Flags...) {
		if !strings.Contains(run, want) {
			t.Errorf("Dockerfile's go build %q lacks %q", run, want)
		}
	}
	checkFinalStage(t, "Dockerfile", stages[1], "COPY --from=build /out/runrollback /runrollback")

	// The build context: what go build reads, and nothing else (no .git, no reports).
	ignore, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	if len(rules) == 0 || rules[0] != "*" {
		t.Errorf(".dockerignore starts with %q, want * (then the exceptions)", rules)
	}
	for _, want := range []string{"!go.mod", "!go.sum", "!cmd", "!internal", "!fakes"} {
		if !slices.Contains(rules, want) {
			t.Errorf(".dockerignore lacks %s: go build ./cmd/runrollback needs it", want)
		}
	}
}

// TestReleaseImage checks the image GoReleaser publishes: dockers_v2 from
// Dockerfile.release, which copies the release's own linux binaries (the
// build context holds <os>/<arch>/<binary>), for platforms the build
// makes, tagged with the version, signed keylessly; and a release workflow
// that can push it.
func TestReleaseImage(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Dockers []struct {
			IDs        []string          `yaml:"ids"`
			Dockerfile string            `yaml:"dockerfile"`
			Images     []string          `yaml:"images"`
			Tags       []string          `yaml:"tags"`
			Platforms  []string          `yaml:"platforms"`
			Labels     map[string]string `yaml:"labels"`
		} `yaml:"dockers_v2"`
		DockerSigns []struct {
			Cmd       string   `yaml:"cmd"`
			Artifacts string   `yaml:"artifacts"`
			Args      []string `yaml:"args"`
		} `yaml:"docker_signs"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Dockers) != 1 {
		t.Fatalf("%d dockers_v2 images, want 1", len(c.Dockers))
	}
	d := c.Dockers[0]
	g := readGoreleaser(t)
	b := g.Builds[0]
	if !slices.Equal(d.IDs, []string{b.ID}) || d.Dockerfile != "Dockerfile.release" {
		t.Errorf("dockers_v2 ids %q dockerfile %q, want [%s] and Dockerfile.release", d.IDs, d.Dockerfile, b.ID)
	}
	if !slices.Equal(d.Images, []string{"ghcr.io/runrollback/runrollback"}) {
		t.Errorf("images %q, want ghcr.io/runrollback/runrollback (docs/cloud-run-jobs.md names it)", d.Images)
	}
	if !slices.Contains(d.Tags, "v{{ .Version }}") {
		t.Errorf("tags %q lack v{{ .Version }} (the tag users pin)", d.Tags)
	}
	if len(d.Platforms) == 0 {
		t.Error("no platforms")
	}
	for _, p := range d.Platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		if goos != "linux" || !slices.Contains(b.Goos, goos) || !slices.Contains(b.Goarch, goarch) {
			t.Errorf("platform %s is not a linux target of the build (%q × %q)", p, b.Goos, b.Goarch)
		}
	}
	if d.Labels["org.opencontainers.image.version"] != "v{{ .Version }}" {
		t.Errorf("labels %v: want org.opencontainers.image.version v{{ .Version }}", d.Labels)
	}
	if len(c.DockerSigns) != 1 || c.DockerSigns[0].Cmd != "cosign" || c.DockerSigns[0].Artifacts != "" {
		t.Fatalf("docker_signs %+v, want one cosign signature of the dockers_v2 image", c.DockerSigns)
	}
	if a := c.DockerSigns[0].Args; !slices.Contains(a, "${artifact}@${digest}") || !slices.Contains(a, "--yes") ||
		slices.ContainsFunc(a, func(s string) bool { return strings.HasPrefix(s, "--key") }) {
		t.Errorf("docker_signs args %q, want a keyless sign of ${artifact}@${digest} with --yes", a)
	}

	_, stages := readDockerfile(t, d.Dockerfile)
	if len(stages) != 1 {
		t.Fatalf("%s has %d stages, want 1: GoReleaser built the binary already", d.Dockerfile, len(stages))
	}
	st := stages[0]
	if !slices.Contains(st.lines, "ARG TARGETPLATFORM") {
		t.Errorf("%s lacks ARG TARGETPLATFORM", d.Dockerfile)
	}
	checkFinalStage(t, d.Dockerfile, st, "COPY ${TARGETPLATFORM}/"+b.Binary+" /runrollback")

	wf, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"packages: write", "docker/setup-qemu-action@", "docker/setup-buildx-action@",
		"docker/login-action@", "registry: ghcr.io", "cosign verify \"ghcr.io/"} {
		if !strings.Contains(string(wf), want) {
			t.Errorf("release.yml lacks %q: the image could not be pushed or checked", want)
		}
	}
}

// runsBinary matches a script line that runs runrollback itself.
var runsBinary = regexp.MustCompile(`(?m)^\s*(exec\s+)?runrollback\s`)

// TestDeployWorkflow checks that the example deploy workflow uses the Action
// rather than compiling runrollback, recovers in an always() step, shows
// candidate mode with deploy-cloudrun's no_traffic and tag, and publishes the
// JUnit reports. (actionlint, in .ci/run, checks the Action's inputs.)
func TestDeployWorkflow(t *testing.T) {
	raw, wf := readWorkflow(t, "deploy.yml")
	checkUsesAction(t, "deploy.yml", wf, map[string][]string{"deploy": {"snapshot", "guard"}, "drill": {"test"}})
	candidate := false
	for _, st := range wf.Jobs["deploy"].Steps {
		if strings.HasPrefix(st.Uses, "google-github-actions/deploy-cloudrun@") && st.With["no_traffic"] == "true" && st.With["tag"] != "" {
			candidate = true
		}
	}
	if !candidate {
		t.Error("no deploy-cloudrun step with no_traffic: true and a tag (candidate mode)")
	}
	checkAuthPins(t, "deploy.yml", raw, "google-github-actions/auth@", "google-github-actions/setup-gcloud@")
}

// TestDrillWorkflow checks the same of the scheduled drill: each matrix part
// runs the Action with its shard, and recovers its own part.
func TestDrillWorkflow(t *testing.T) {
	raw, wf := readWorkflow(t, "rollback-drill.yml")
	checkUsesAction(t, "rollback-drill.yml", wf, map[string][]string{"drill": {"test"}})
	for _, st := range wf.Jobs["drill"].Steps {
		if st.Uses == "./" && !strings.Contains(st.With["shard"], "matrix.shard") && !strings.Contains(st.With["shard"], "env.SHARD") {
			t.Errorf("rollback-drill.yml runs %s without its part's shard (%q)", st.With["command"], st.With["shard"])
		}
	}
	checkAuthPins(t, "rollback-drill.yml", raw, "google-github-actions/auth@")
}

// workflow is the part of a workflow file these tests read.
type workflow struct {
	Jobs map[string]struct {
		Steps []struct {
			ID   string            `yaml:"id"`
			If   string            `yaml:"if"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(t *testing.T, name string) ([]byte, workflow) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	return raw, wf
}

// checkUsesAction checks that each named job runs the Action with the given
// commands, never compiles or runs runrollback itself, recovers and
// publishes its JUnit reports in always() steps.
func checkUsesAction(t *testing.T, file string, wf workflow, jobs map[string][]string) {
	t.Helper()
	for name, want := range jobs {
		job, ok := wf.Jobs[name]
		if !ok {
			t.Fatalf("%s has no job %s", file, name)
		}
		commands := map[string]bool{}
		recovers, junit := false, false
		for _, st := range job.Steps {
			if strings.Contains(st.Run, "go install") || strings.Contains(st.Uses, "setup-go") {
				t.Errorf("%s: job %s compiles runrollback (%q %q): the Action installs a release", file, name, st.Uses, st.Run)
			}
			if runsBinary.MatchString(st.Run) {
				t.Errorf("%s: job %s runs runrollback in a run: step (%q): use the Action", file, name, st.Run)
			}
			if st.Uses == "./" {
				commands[st.With["command"]] = true
				if st.With["command"] == "recover" && strings.Contains(st.If, "always()") {
					recovers = true
				}
			}
			if strings.HasPrefix(st.Uses, "mikepenz/action-junit-report@") && strings.Contains(st.If, "always()") {
				junit = true
			}
		}
		if !recovers {
			t.Errorf("%s: job %s has no always() step running the Action with command recover", file, name)
		}
		if !junit {
			t.Errorf("%s: job %s does not publish the JUnit reports in an always() step", file, name)
		}
		for _, c := range want {
			if !commands[c] {
				t.Errorf("%s: job %s does not run the Action with command %s", file, name, c)
			}
		}
	}
}

// checkAuthPins checks that the named actions are pinned by SHA at their
// current major version.
func checkAuthPins(t *testing.T, file string, raw []byte, pins ...string) {
	t.Helper()
	for _, pin := range pins {
		m := regexp.MustCompile(regexp.QuoteMeta(pin) + `[0-9a-f]{40} # v([0-9]+)\.`).FindStringSubmatch(string(raw))
		if m == nil || m[1] != "3" {
			t.Errorf("%s: %s is not pinned by SHA at major version 3 (%v)", file, pin, m)
		}
	}
}
