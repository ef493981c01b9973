package battery

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

var updateReliability = flag.Bool("update-reliability", false, "rewrite the out-of-process battery's section of RELIABILITY.md from this run's results")

// reliabilityPath is RELIABILITY.md, from this package's directory.
const reliabilityPath = "../RELIABILITY.md"

// batteryMarker starts the battery's section of RELIABILITY.md: everything
// from it to the end of the file is written by this test (the fault matrix
// of cmd/runrollback writes what comes before and keeps this part).
const batteryMarker = "<!-- out-of-process battery: written by go test ./battery -update-reliability -->"

// checkReliability writes the battery's section of RELIABILITY.md from the
// results (-update-reliability), or checks that the section lists exactly
// the cases that ran, with the results they had. A partial run (-run)
// checks nothing.
func checkReliability(t *testing.T, fams []family) {
	t.Helper()
	total := 0
	for _, fam := range fams {
		total += len(fam.variants)
	}
	resultsMu.Lock()
	ran := 0
	for _, r := range results {
		ran += len(r)
	}
	resultsMu.Unlock()
	if ran != total {
		return
	}
	seen := map[string]bool{}
	for i, fam := range fams {
		if seen[fam.section] && fams[i-1].section != fam.section {
			t.Errorf("family %q of section %s is not beside the others of its section in families()", fam.name, fam.section)
		}
		seen[fam.section] = true
	}
	section := renderSection(fams)
	b, err := os.ReadFile(reliabilityPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	head, old, found := strings.Cut(doc, batteryMarker)
	if *updateReliability {
		run := fmt.Sprintf("Last run: %s, %s %s/%s, %d CPUs.\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
		out := strings.TrimRight(head, "\n") + "\n\n" + batteryMarker + "\n" + strings.Replace(section, "{{lastrun}}\n", run, 1)
		if err := os.WriteFile(reliabilityPath, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !found {
		t.Fatalf("RELIABILITY.md has no out-of-process battery section: run go test ./battery -update-reliability")
	}
	// The run's date and machine aside, the section must be what this run
	// would write.
	var kept []string
	for _, line := range strings.Split(strings.TrimPrefix(old, "\n"), "\n") {
		if strings.HasPrefix(line, "Last run: ") {
			line = "{{lastrun}}"
		}
		kept = append(kept, line)
	}
	if got := strings.Join(kept, "\n"); got != section {
		t.Errorf("RELIABILITY.md's out-of-process battery section is not this run's: run go test ./battery -update-reliability\n--- in the file:\n%s\n--- this run:\n%s", got, section)
	}
}

// renderSection is the battery's section, with {{lastrun}} for the line
// that says when it ran.
func renderSection(fams []family) string {
	var b strings.Builder
	b.WriteString(sectionHead)
	b.WriteString("{{lastrun}}\n")
	section := ""
	resultsMu.Lock()
	defer resultsMu.Unlock()
	for _, fam := range fams {
		if fam.section != section {
			section = fam.section
			fmt.Fprintf(&b, "\n#### %s\n\n| case | variants | asserts | last run |\n|---|---|---|---|\n", section)
		}
		pass, fail, na := 0, 0, 0
		for _, v := range fam.variants {
			switch r := results[fam.name][v.name]; {
			case r == skipped:
				na++
			case r == passed:
				pass++
			default:
				fail++
			}
		}
		res := fmt.Sprintf("pass (%d of %d)", pass, pass+fail)
		if fail > 0 {
			res = fmt.Sprintf("**FAIL** (%d of %d)", fail, pass+fail)
		}
		if na > 0 {
			res += fmt.Sprintf("; %d not applicable (%s)", na, fam.na)
		}
		over := fam.over
		if over != "" {
			over = ": " + over
		}
		fmt.Fprintf(&b, "| %s | %d%s | %s | %s |\n", fam.name, len(fam.variants), over, fam.asserts, res)
	}
	b.WriteString(sectionTail)
	for _, fam := range fams {
		if fam.found != "" {
			fmt.Fprintf(&b, "- **%s**: %s\n", fam.name, fam.found)
		}
	}
	return b.String()
}

const sectionHead = `
## Out-of-process battery

The tables above run the command in the test's own process. The battery in ` + "`battery/`" + ` is
written from outside: it builds the real binary, starts ` + "`runrollback fake`" + ` as a separate
process, runs the binary against it with faults injected through the fake's control endpoint
(errors, held operations, lost replies, a concurrent writer), signals (SIGINT, SIGKILL,
SIGSTOP/SIGCONT), other writers and hostile files, and judges every outcome only by reading the
service with Google's discovery client (` + "`google.golang.org/api/run/v2`" + `) over the fake's REST
surface, and by requesting the service's URL (` + "`X-Served-By`" + ` of 20 answers) — never through
runrollback's own reads or reports. "As it was" means, entry for entry: traffic, traffic statuses
(a LATEST status may resolve to the pre-drill template built again), template (output-only fields
aside), annotations, labels, tags and revisions (the only new revision allowed is the pre-drill
template built again), and no answer from a drill or broken revision. Each variant runs against a
fake of its own. This section is written by the test from its results:

    go test ./battery -update-reliability

(Every ` + "`go test ./...`" + ` runs the battery and fails if this section is not what the run would write.)

`

const sectionTail = `
Found by the battery and fixed (each case stays in the battery):

`
