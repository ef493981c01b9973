package release

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository's top directory, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// goreleaserConfig is the part of .goreleaser.yaml the release relies on.
type goreleaserConfig struct {
	Version     int    `yaml:"version"`
	ProjectName string `yaml:"project_name"`
	Builds      []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Flags   []string `yaml:"flags"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Archives []struct {
		NameTemplate    string   `yaml:"name_template"`
		Formats         []string `yaml:"formats"`
		FormatOverrides []struct {
			Goos    string   `yaml:"goos"`
			Formats []string `yaml:"formats"`
		} `yaml:"format_overrides"`
	} `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	Sboms []struct {
		Artifacts string `yaml:"artifacts"`
	} `yaml:"sboms"`
	Signs []struct {
		Cmd       string   `yaml:"cmd"`
		Artifacts string   `yaml:"artifacts"`
		Signature string   `yaml:"signature"`
		Args      []string `yaml:"args"`
	} `yaml:"signs"`
}

func readGoreleaser(t *testing.T) goreleaserConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c goreleaserConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	return c
}

// TestGoreleaserConfig checks what users and action.yml depend on: the six
// targets, a static trimmed build stamped with the version, archive and
// checksum names without a version in them, SBOMs, and a keyless cosign
// signature of the checksums.
func TestGoreleaserConfig(t *testing.T) {
	c := readGoreleaser(t)
	if c.Version != 2 {
		t.Errorf("version = %d, want 2 (GoReleaser v2 format)", c.Version)
	}
	if len(c.Builds) != 1 {
		t.Fatalf("%d builds, want 1", len(c.Builds))
	}
	b := c.Builds[0]
	if b.Main != "./cmd/runrollback" || b.Binary != "runrollback" {
		t.Errorf("build main %q binary %q, want ./cmd/runrollback and runrollback", b.Main, b.Binary)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("build env %q lacks CGO_ENABLED=0", b.Env)
	}
	for _, want := range []string{"linux", "darwin", "windows"} {
		if !slices.Contains(b.Goos, want) {
			t.Errorf("goos %q lacks %s", b.Goos, want)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(b.Goarch)), []string{"amd64", "arm64"}) {
		t.Errorf("goarch = %q, want amd64 and arm64", b.Goarch)
	}
	if !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("flags %q lack -trimpath", b.Flags)
	}
	ld := strings.Join(b.Ldflags, " ")
	for _, want := range []string{"-X main.version=v{{ .Version }}", "-X main.commit={{ .FullCommit }}"} {
		if !strings.Contains(ld, want) {
			t.Errorf("ldflags %q lack %q (what --version prints)", ld, want)
		}
	}

	if len(c.Archives) != 1 {
		t.Fatalf("%d archives, want 1", len(c.Archives))
	}
	a := c.Archives[0]
	// action.yml downloads runrollback_<os>_<arch>.tar.gz (.zip on Windows)
	// from .../download/<tag>/ or .../latest/download/.
	if a.NameTemplate != "{{ .ProjectName }}_{{ .Os }}_{{ .Arch }}" || c.ProjectName != "runrollback" {
		t.Errorf("archive name %q (project %q): action.yml expects runrollback_<os>_<arch>", a.NameTemplate, c.ProjectName)
	}
	if !slices.Equal(a.Formats, []string{"tar.gz"}) {
		t.Errorf("archive formats %q, want tar.gz", a.Formats)
	}
	if len(a.FormatOverrides) != 1 || a.FormatOverrides[0].Goos != "windows" || !slices.Equal(a.FormatOverrides[0].Formats, []string{"zip"}) {
		t.Errorf("format overrides %+v, want zip on windows", a.FormatOverrides)
	}
	if c.Checksum.NameTemplate != "checksums.txt" || c.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum %+v, want checksums.txt with sha256 (action.yml reads it)", c.Checksum)
	}
	if len(c.Sboms) != 1 || c.Sboms[0].Artifacts != "archive" {
		t.Errorf("sboms %+v, want one per archive", c.Sboms)
	}
	if len(c.Signs) != 1 {
		t.Fatalf("%d signs, want 1", len(c.Signs))
	}
	s := c.Signs[0]
	if s.Cmd != "cosign" || s.Artifacts != "checksum" || s.Signature != "${artifact}.sigstore.json" {
		t.Errorf("sign %+v, want cosign over the checksum into ${artifact}.sigstore.json", s)
	}
	if !slices.Contains(s.Args, "sign-blob") || !slices.Contains(s.Args, "--bundle=${signature}") || !slices.Contains(s.Args, "--yes") {
		t.Errorf("sign args %q, want sign-blob --bundle=${signature} ... --yes", s.Args)
	}
	for _, arg := range s.Args {
		if strings.HasPrefix(arg, "--key") {
			t.Errorf("sign args %q name a key: signing is keyless (GitHub OIDC)", s.Args)
		}
	}
}

// TestReleaseBuild builds the binary the way the release does (CGO_ENABLED=0,
// -trimpath, the ldflags of .goreleaser.yaml with its templates filled in) and
// checks that it is static and that --version prints what was stamped.
func TestReleaseBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c := readGoreleaser(t)
	b := c.Builds[0]
	ld := strings.Join(b.Ldflags, " ")
	ld = strings.NewReplacer("{{ .Version }}", "1.2.3-test", "{{ .FullCommit }}", "0123456789abcdef0123456789abcdef01234567").Replace(ld)
	if strings.Contains(ld, "{{") {
		t.Fatalf("ldflags %q use a template this test does not fill in", ld)
	}
	bin := filepath.Join(t.TempDir(), "runrollback")
	args := append([]string{"build"}, b.Flags...)
	args = append(args, "-ldflags", ld, "-o", bin, b.Main)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), b.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("runrollback --version: %v\n%s", err, out)
	}
	want := "runrollback v1.2.3-test commit 0123456789abcdef0123456789abcdef01234567 " + runtime.Version()
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("--version printed %q, want it to start with %q", out, want)
	}
	if runtime.GOOS == "linux" {
		assertStatic(t, bin)
	}
}

// assertStatic fails unless the ELF file at path needs no dynamic loader,
// which is what lets it run in a scratch or distroless/static image.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not a static binary", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %q: not a static binary", path, libs)
	}
}

// TestGoreleaserCheck runs `goreleaser check` when GoReleaser is installed
// (CI builds it only on demand: it is a large program).
func TestGoreleaserCheck(t *testing.T) {
	bin, err := exec.LookPath("goreleaser")
	if err != nil {
		t.Skip("goreleaser is not installed")
	}
	cmd := exec.Command(bin, "check")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("goreleaser check: %v\n%s", err, out)
	}
}
