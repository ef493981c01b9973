package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runrollback/runrollback/internal/rollback"
)

// interruptScripts writes, into a new directory, one script per drill step
// that pauses the real command there and stops it with kind: "INT" or "TERM"
// (the drill must restore by itself) or "KILL" (then `runrollback recover`
// must). Each script checks that nothing is lost: the traffic list and the
// actual split are as before, and no tag, annotation, revision or template
// change of ours is left.
func interruptScripts(t *testing.T, kind string) string {
	t.Helper()
	dir := t.TempDir()
	type service struct{ name, traffic, actual string }
	api := service{"api", "api-00002-def=100", "api-00002-def=100"}
	// LATEST resolves to the fresh revision Cloud Run builds from the original template.
	web := service{"web", "LATEST=100", "web-000[0-9][0-9]-[a-z0-9]+=100"}
	checkout := service{"checkout", "checkout-00002-bbb=90, checkout-00003-ccc=10@canary", "checkout-00002-bbb=90, checkout-00003-ccc=10@canary"}

	after := func(s service) string {
		return fmt.Sprintf("traffic %s '%s'\nactual %s '%s'\nclean %s\n", s.name, s.traffic, s.name, s.actual, s.name)
	}
	start := func(s service, step, neg string) string {
		return fmt.Sprintf("env RUNROLLBACK_PAUSE_AT=%s\nenv RUNROLLBACK_PAUSE_FILE=$WORK/paused\n", step) +
			fmt.Sprintf("%sexec runrollback test --service %s --retry-delay 20ms --report r.json &drill&\nwaitfile paused\n", neg, s.name)
	}
	for _, step := range rollback.DrillSteps {
		services := []service{api}
		if kind == "KILL" && (step == rollback.StepDetect || step == rollback.StepCleanup) {
			services = append(services, web, checkout)
		}
		for _, s := range services {
			var body string
			switch kind {
			case "KILL":
				body = start(s, step, "! ") + "kill -KILL drill\nwait drill\nenv RUNROLLBACK_PAUSE_AT=\n" +
					fmt.Sprintf("exec runrollback recover --service %s --retry-delay 20ms\n", s.name) + after(s) +
					fmt.Sprintf("exec runrollback recover --service %s\nstdout 'nothing in flight'\n", s.name)
			default:
				// A signal before restore stops the drill, which restores: exit 3.
				// During restore, verify and cleanup it does not abandon them:
				// the drill completes, exit 0.
				neg, code := "! ", exitAborted
				if slices.Contains([]string{rollback.StepRestore, rollback.StepVerify, rollback.StepCleanup}, step) {
					neg, code = "", exitOK
				}
				signal := map[string]string{"INT": "kill -INT drill", "TERM": "term"}[kind]
				body = start(s, step, neg) + fmt.Sprintf("%s\nwait drill\ngrep '\"exit_code\": %d' r.json\n", signal, code) + after(s)
			}
			name := fmt.Sprintf("%s_%s_%s.txtar", kind, s.name, step)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// runScripts runs the scripts in dir against a fake, as TestScripts does.
func runScripts(t *testing.T, dir string) {
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		Setup:               setupFake,
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
	})
}
