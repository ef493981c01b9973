package main

import (
	"cmp"
	"runtime"
	"runtime/debug"

	"github.com/runrollback/runrollback/internal/rollback"
)

// buildInfo is read once: the module version (v1.2.3 when installed with
// 'go install …@v1.2.3', "(devel)" from a checkout), the VCS commit and
// whether the tree was modified (when built from a checkout), and the Go
// version. The release build (.goreleaser.yaml) sets version and commit with
// -ldflags "-X main.version=… -X main.commit=…".
var version, commit string

func toolInfo() *rollback.Tool {
	t := &rollback.Tool{Name: "runrollback", Version: cmp.Or(version, "(devel)"), Commit: commit, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return t
	}
	if version == "" && bi.Main.Version != "" {
		t.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			t.Commit = cmp.Or(commit, s.Value)
		case "vcs.modified":
			t.Modified = s.Value == "true"
		}
	}
	return t
}

// ciRun describes the GitHub Actions run from its environment
// (https://docs.github.com/actions/reference/variables-reference), or nil
// outside GitHub Actions.
func (e *env) ciRun() *rollback.CIRun {
	if !e.inActions() {
		return nil
	}
	ci := &rollback.CIRun{
		Provider:   "github-actions",
		Repository: e.getenv("GITHUB_REPOSITORY"),
		Commit:     e.getenv("GITHUB_SHA"),
		Ref:        e.getenv("GITHUB_REF"),
		Workflow:   e.getenv("GITHUB_WORKFLOW"),
		Job:        e.getenv("GITHUB_JOB"),
	}
	server := cmp.Or(e.getenv("GITHUB_SERVER_URL"), "https://github.com")
	if id := e.getenv("GITHUB_RUN_ID"); id != "" && ci.Repository != "" {
		ci.RunURL = server + "/" + ci.Repository + "/actions/runs/" + id
		if a := e.getenv("GITHUB_RUN_ATTEMPT"); a != "" && a != "1" {
			ci.RunURL += "/attempts/" + a
		}
	}
	return ci
}

// inActions reports whether this runs in GitHub Actions.
func (e *env) inActions() bool { return e.getenv("GITHUB_ACTIONS") == "true" }
