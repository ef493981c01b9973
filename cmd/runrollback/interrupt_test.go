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

// TestInterrupts stops a drill at every step with SIGINT, SIGTERM and SIGKILL
// (then `runrollback recover`), using the real command and the pause hook, and
// checks that nothing is lost: the traffic list and the actual split are as
// before, and no tag, annotation, revision or template change of ours is left.
func TestInterrupts(t *testing.T) {
	dir := t.TempDir()
	type service struct{ name, traffic, actual string }
	api := service{"api", "api-00002-def=100", "api-00002-def=100"}
	// LATEST resolves to the fresh revision Cloud Run builds from the original template.
	web := service{"web", "LATEST=100", "web-000[0-9][0-9]-[a-z0-9]+=100"}
	checkout := service{"checkout", "checkout-00002-bbb=90, checkout-00003-ccc=10@canary", "checkout-00002-bbb=90, checkout-00003-ccc=10@canary"}
	restoring := []string{rollback.StepRestore, rollback.StepVerify, rollback.StepCleanup}

	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name+".txtar"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	after := func(s service) string {
		return fmt.Sprintf("traffic %s '%s'\nactual %s '%s'\nclean %s\n", s.name, s.traffic, s.name, s.actual, s.name)
	}
	start := func(s service, step string) string {
		return fmt.Sprintf("env RUNROLLBACK_PAUSE_AT=%s\nenv RUNROLLBACK_PAUSE_FILE=$WORK/paused\n", step) +
			fmt.Sprintf("%sexec runrollback test --service %s --retry-delay 20ms --report r.json &drill&\nwaitfile paused\n", "%s", s.name)
	}
	for _, step := range rollback.DrillSteps {
		for _, sig := range []string{"INT", "TERM"} {
			// A signal before restore stops the drill, which restores: exit 3.
			// During restore, verify and cleanup it does not abandon them: the
			// drill completes, exit 0.
			neg, code := "! ", 3
			if slices.Contains(restoring, step) {
				neg, code = "", 0
			}
			body := fmt.Sprintf(start(api, step), neg) +
				fmt.Sprintf("%s\nwait drill\ngrep '\"exit_code\": %d' r.json\n", map[string]string{"INT": "kill -INT drill", "TERM": "term"}[sig], code) + after(api)
			write(fmt.Sprintf("sig%s_%s", sig, step), body)
		}
		for _, s := range []service{api, web, checkout} {
			if s.name != "api" && step != rollback.StepDetect && step != rollback.StepCleanup {
				continue
			}
			body := fmt.Sprintf(start(s, step), "! ") +
				"kill -KILL drill\nwait drill\nenv RUNROLLBACK_PAUSE_AT=\n" +
				fmt.Sprintf("exec runrollback recover --service %s --retry-delay 20ms\n", s.name) + after(s) +
				fmt.Sprintf("exec runrollback recover --service %s\nstdout 'nothing in flight'\n", s.name)
			write(fmt.Sprintf("kill_%s_%s", s.name, step), body)
		}
	}
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		Setup:               setupFake,
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
	})
}
