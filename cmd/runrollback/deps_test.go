package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The shipped binary embeds the fakes (for --local and 'runrollback fake') but
// must not link package testing: its flags and init would ride along.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps . = %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/runrollback/runrollback/fakes/fakerun") {
		t.Fatalf("go list -deps . does not list fakes/fakerun: %v", deps)
	}
	for _, d := range deps {
		if d == "testing" || strings.HasPrefix(d, "testing/") {
			t.Errorf("the runrollback binary links %s", d)
		}
	}
}
