package rollback

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateBreakEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"ok", map[string]string{"FEATURE_X": "broken", "_Y": ""}, ""},
		{"reserved PORT", map[string]string{"PORT": "8081"}, "Cloud Run sets PORT itself"},
		{"reserved any case", map[string]string{"k_revision": "x"}, "K_REVISION"},
		{"reserved jobs", map[string]string{"CLOUD_RUN_EXECUTION": "x"}, "CLOUD_RUN_EXECUTION"},
		{"bad name", map[string]string{"A-B": "x"}, "letters, digits and '_'"},
		{"digit first", map[string]string{"1A": "x"}, "not starting with a digit"},
		{"at the limit", map[string]string{"V": strings.Repeat("x", MaxEnvVarLength-1)}, ""},
		{"over the limit", map[string]string{"V": strings.Repeat("x", MaxEnvVarLength)}, "at most 32 KiB"},
		{"NUL", map[string]string{"V": "a\x00b"}, "NUL"},
		{"bad UTF-8", map[string]string{"V": "\xff"}, "UTF-8"},
	}
	many := map[string]string{}
	for i := range MaxEnvVars + 1 {
		many[fmt.Sprintf("V%d", i)] = "x"
	}
	tests = append(tests, struct {
		name    string
		env     map[string]string
		wantErr string
	}{"too many", many, "at most 1000"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, ValidateBreakEnv(tt.env), tt.wantErr)
		})
	}
}

func TestValidateExpectVersion(t *testing.T) {
	for _, tt := range []struct{ in, wantErr string }{
		{"", ""},
		{"1.1.0", ""},
		{"v2.0.0-rc.1+build.5", ""},
		{"1.1.0\n", "control character"},
		{"1.1.0\x1b[31m", "U+001B"},
		{"1\u202e0", "control character"},
		{"\xff", "UTF-8"},
		{strings.Repeat("1", MaxVersionLength+1), "at most 256"},
	} {
		checkErr(t, ValidateExpectVersion(tt.in), tt.wantErr)
	}
}

func TestValidateSplitBounds(t *testing.T) {
	split := func(revisions, tags int) Split {
		s := Split{{Revision: "api-00001-abc", Percent: 100}}
		for i := range revisions {
			s = append(s, Target{Revision: fmt.Sprintf("api-%05d-xyz", i+2)})
		}
		for i := range tags {
			s = append(s, Target{Revision: "api-00001-abc", Tag: fmt.Sprintf("t%d", i)})
		}
		return s
	}
	checkErr(t, ValidateSplit(split(MaxSplitRevisions-1, MaxSplitTags)), "")
	checkErr(t, ValidateSplit(split(MaxSplitRevisions, 0)), "names 1001 revisions")
	checkErr(t, ValidateSplit(split(0, MaxSplitTags+1)), "2001 tags")
	checkErr(t, ValidateSplit(split(MaxSplitRevisions, MaxSplitTags+1)), "entries")
}

func TestReadFileCapped(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFileCapped(small, 5); err != nil || string(b) != "12345" {
		t.Errorf("ReadFileCapped(5 bytes, cap 5) = %q, %v", b, err)
	}
	if _, err := ReadFileCapped(small, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFileCapped(5 bytes, cap 4) = %v, want ErrTooLarge", err)
	}
	if _, err := ReadFileCapped(dir, 4); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("ReadFileCapped(dir) = %v, want a directory error", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := ReadFileCapped("/dev/zero", 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Errorf("ReadFileCapped(/dev/zero) = %v, want ErrTooLarge", err)
		}
	}
}

func TestParseServicesFile(t *testing.T) {
	ref := func(p, r, n string) ServiceRef { return ServiceRef{Project: p, Region: r, Name: n} }
	got, err := ParseServicesFile("f", []byte("# fleet\napi\n  europe-west1/web  # edge\nother-proj/us-east1/checkout\n\n"), "p1", "us-central1")
	if err != nil {
		t.Fatal(err)
	}
	want := []ServiceRef{ref("p1", "us-central1", "api"), ref("p1", "europe-west1", "web"), ref("other-proj", "us-east1", "checkout")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines = %v, want %v", got, want)
	}
	got, err = ParseServicesFile("f", []byte(` [{"name": "api"}, {"project": "q", "region": "r", "name": "web"}] `), "p1", "us-central1")
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]ServiceRef{ref("p1", "us-central1", "api"), ref("q", "r", "web")}) {
		t.Errorf("JSON = %v, %v", got, err)
	}
	for _, tt := range []struct{ in, wantErr string }{
		{"a/b/c/d", "line 1: want [project/][region/]name"},
		{"# nothing\n", "lists no service"},
		{`[{"name": "api", "tier": 1}]`, "unknown field"},
		{`[{"name": "api"}] [{"name": "web"}]`, "text after the JSON array"},
		{"api\n" + strings.Repeat("x", MaxServicesFileLine+1) + "\nweb\n", "line 2: longer than 64 KiB"},
	} {
		_, err := ParseServicesFile("f", []byte(tt.in), "p", "r")
		checkErr(t, err, tt.wantErr)
	}
}

func TestSelectionResolve(t *testing.T) {
	s := Selection{Project: "proj-1", Region: "us-east1"}
	if err := s.Add(ServiceRef{Project: "proj-1", Region: "us-east1", Name: "api"}); err != nil {
		t.Fatal(err)
	}
	checkErr(t, s.Add(ServiceRef{Project: "proj-1", Region: "us-east1", Name: "Bad"}), "not valid")
	checkErr(t, s.AddLabel("tier"), "want KEY=VALUE")
	if err := s.AddLabel("tier=edge"); err != nil {
		t.Fatal(err)
	}
	svcs := []*Service{
		{Ref: ServiceRef{Project: "proj-1", Region: "us-east1", Name: "api"}, Labels: map[string]string{"tier": "edge"}},
		{Ref: ServiceRef{Project: "proj-1", Region: "us-east1", Name: "web"}, Labels: map[string]string{"tier": "edge"}},
		{Ref: ServiceRef{Project: "proj-1", Region: "us-east1", Name: "db"}, Labels: map[string]string{"tier": "core"}},
		{Ref: ServiceRef{Project: "proj-1", Region: "us-east1", Name: "nolabel"}},
	}
	got, err := s.Resolve(svcs)
	if err != nil || fmt.Sprint(got) != "[projects/proj-1/locations/us-east1/services/api projects/proj-1/locations/us-east1/services/web]" {
		t.Errorf("Resolve = %v, %v", got, err)
	}
	if err := s.AddLabel("tier=none"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Resolve(svcs)
	checkErr(t, err, "no service in proj-1/us-east1 has the labels [tier]")
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got %v, want no error", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}
