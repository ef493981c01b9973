package rollback

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	serviceNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	projectIDRE   = regexp.MustCompile(`^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$`)
	regionRE      = regexp.MustCompile(`^[a-z]+(-[a-z]+)+[0-9]+$`)
	tagRE         = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
)

// ValidateServiceName checks a Cloud Run service name: lowercase letters, digits and
// hyphens, starting with a letter, not ending with a hyphen, at most 49 characters.
func ValidateServiceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("no service given: pass --service NAME")
	case len(name) > 49:
		return fmt.Errorf("service name %q is %d characters long; Cloud Run allows at most 49", name, len(name))
	case !serviceNameRE.MatchString(name):
		return fmt.Errorf("service name %q is not valid: use lowercase letters, digits and '-', start with a letter, and do not end with '-'", name)
	}
	return nil
}

// ValidateRevisionName checks a revision name (short form, e.g. "api-00002-def").
func ValidateRevisionName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty revision name")
	case len(name) > 63:
		return fmt.Errorf("revision name %q is %d characters long; Cloud Run allows at most 63", name, len(name))
	case !serviceNameRE.MatchString(name):
		return fmt.Errorf("revision name %q is not valid: use lowercase letters, digits and '-', start with a letter, and do not end with '-' (a short name like api-00002-def, not a full resource name)", name)
	}
	return nil
}

// ValidateProjectID checks a Google Cloud project ID: 6 to 30 lowercase letters,
// digits and hyphens, starting with a letter, optionally domain-scoped ("example.com:proj").
func ValidateProjectID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("no project given: pass --project ID or set GOOGLE_CLOUD_PROJECT")
	case !projectIDRE.MatchString(id):
		return fmt.Errorf("project ID %q is not valid: use 6 to 30 lowercase letters, digits and '-', starting with a letter (the project ID, not its name or number)", id)
	}
	return nil
}

// ValidateRegion checks a Cloud Run region such as "us-central1".
func ValidateRegion(region string) error {
	switch {
	case region == "":
		return fmt.Errorf("no region given: pass --region REGION (e.g. us-central1) or set CLOUDSDK_RUN_REGION")
	case !regionRE.MatchString(region):
		return fmt.Errorf("region %q is not valid: use a Cloud Run region such as us-central1 or europe-west4", region)
	}
	return nil
}

// ValidateTag checks a traffic tag: lowercase letters, digits and '-', starting with
// a letter, at most 46 characters.
func ValidateTag(tag string) error {
	if len(tag) > 46 || !tagRE.MatchString(tag) {
		return fmt.Errorf("tag %q is not valid: use at most 46 lowercase letters, digits and '-', starting with a letter", tag)
	}
	return nil
}

// ValidateSplit checks that a split could be written: percents 0–100 summing to 100,
// targets naming a revision or LATEST, at most one LATEST, unique valid tags,
// and no more entries, revisions or tags than Cloud Run allows (boundSplit).
func ValidateSplit(s Split) error {
	if len(s) == 0 {
		return fmt.Errorf("empty traffic split")
	}
	var sum int32
	tags := map[string]bool{}
	latest := 0
	for _, t := range s {
		if t.Percent < 0 || t.Percent > 100 {
			return fmt.Errorf("traffic percent %d for %s is outside 0–100", t.Percent, t)
		}
		sum += t.Percent
		switch {
		case t.Latest && t.Revision != "":
			return fmt.Errorf("target %s names both LATEST and a revision", t)
		case t.Latest:
			latest++
		case t.Revision == "":
			return fmt.Errorf("a traffic target names neither a revision nor LATEST")
		default:
			if err := ValidateRevisionName(t.Revision); err != nil {
				return err
			}
		}
		if t.Tag != "" {
			if err := ValidateTag(t.Tag); err != nil {
				return err
			}
			if tags[t.Tag] {
				return fmt.Errorf("tag %q is used twice", t.Tag)
			}
			tags[t.Tag] = true
		}
	}
	if latest > 1 {
		return fmt.Errorf("more than one LATEST target")
	}
	if err := boundSplit(s); err != nil {
		return err
	}
	if sum != 100 {
		return fmt.Errorf("traffic percents sum to %d, not 100 (%s)", sum, s)
	}
	return nil
}

// ParseSplit parses "rev-a=90,rev-b=10@canary,LATEST=0" into a Split.
func ParseSplit(text string) (Split, error) {
	var out Split
	for part := range strings.SplitSeq(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("traffic entry %q: want REVISION=PERCENT[@TAG]", part)
		}
		pct, tag, _ := strings.Cut(rest, "@")
		var p int32
		if _, err := fmt.Sscanf(pct, "%d", &p); err != nil || fmt.Sprint(p) != pct {
			return nil, fmt.Errorf("traffic entry %q: percent %q is not a whole number", part, pct)
		}
		t := Target{Percent: p, Tag: tag}
		if name == "LATEST" {
			t.Latest = true
		} else {
			t.Revision = name
		}
		out = append(out, t)
	}
	if err := ValidateSplit(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Cloud Run's documented limits that bound a traffic list
// (https://cloud.google.com/run/quotas, "Resource limits"): a service keeps at
// most 1000 revisions, and a project and region hold at most 2000 revision
// tags. A split can therefore name at most MaxSplitRevisions revisions and
// carry at most MaxSplitTags tags; with one untagged entry per revision, the
// tagged entries and one LATEST entry, it has at most MaxSplitTargets entries.
// Cloud Run documents no separate limit on traffic targets (see docs/design.md).
const (
	MaxSplitRevisions = 1000
	MaxSplitTags      = 2000
	MaxSplitTargets   = MaxSplitRevisions + MaxSplitTags + 1
)

// boundSplit checks a split against Cloud Run's limits, so that a crafted
// snapshot is refused before anything is written.
func boundSplit(s Split) error {
	if len(s) > MaxSplitTargets {
		return fmt.Errorf("%d traffic entries: Cloud Run allows at most %d revisions a service and %d tags, so at most %d entries", len(s), MaxSplitRevisions, MaxSplitTags, MaxSplitTargets)
	}
	revs := map[string]bool{}
	tags := 0
	for _, t := range s {
		if t.Revision != "" {
			revs[t.Revision] = true
		}
		if t.Tag != "" {
			tags++
		}
	}
	if len(revs) > MaxSplitRevisions {
		return fmt.Errorf("the traffic names %d revisions: Cloud Run keeps at most %d revisions a service", len(revs), MaxSplitRevisions)
	}
	if tags > MaxSplitTags {
		return fmt.Errorf("the traffic carries %d tags: Cloud Run allows at most %d in a project and region", tags, MaxSplitTags)
	}
	return nil
}

// Limits of the files runrollback reads.
const (
	// MaxSnapshotFile bounds a snapshot (--restore-from): a snapshot is the
	// traffic list and the template, a few KiB; the cap leaves room for a
	// template carrying Cloud Run's most environment (1000 variables).
	MaxSnapshotFile = 16 << 20
	// MaxTokenFile bounds --id-token-file: a Google ID token is about 1 KiB.
	MaxTokenFile = 64 << 10
)

// ErrTooLarge is returned by ReadFileCapped for a file over its cap.
var ErrTooLarge = errors.New("file too large")

// PipeTimeout bounds how long a read from, or a write to, a pipe or a device
// named as a file may wait: a FIFO that nobody writes to (or reads from)
// never holds a run up for longer.
const PipeTimeout = 10 * time.Second

// ReadFileCapped reads the file at path, but never more than max+1 bytes: a
// file longer than max bytes (or endless, like /dev/zero) is ErrTooLarge.
// Pipes and process substitutions are read like files, for PipeTimeout at
// most; a FIFO nobody writes to reads as empty instead of blocking the open.
func ReadFileCapped(path string, max int64) ([]byte, error) {
	f, err := openInput(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("%s: nothing more to read within %s (a pipe nobody writes to?)", path, PipeTimeout)
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %s", ErrTooLarge, sizeText(max))
	}
	return b, nil
}

// openInput opens path for reading without blocking on a FIFO that has no
// writer (open(2) would wait for one), refuses a directory, and bounds reads
// from anything but a regular file by PipeTimeout.
func openInput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, err
	case st.IsDir():
		f.Close()
		return nil, fmt.Errorf("%s is a directory", path)
	case !st.Mode().IsRegular():
		_ = f.SetReadDeadline(time.Now().Add(PipeTimeout)) // not every device can have one
	}
	return f, nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ReservedEnvNames are the environment variables Cloud Run sets itself and
// refuses in a revision: those of the container runtime contract
// (https://cloud.google.com/run/docs/container-contract#env-vars: PORT,
// K_SERVICE, K_REVISION, K_CONFIGURATION for services; CLOUD_RUN_JOB,
// CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT,
// CLOUD_RUN_TASK_COUNT for jobs) and, for functions deployed with Cloud Run,
// FUNCTION_TARGET and FUNCTION_SIGNATURE_TYPE
// (https://cloud.google.com/run/docs/configuring/services/overview-environment-variables).
// "The environment variables defined in the container runtime contract are
// reserved and cannot be set"
// (https://cloud.google.com/run/docs/configuring/services/environment-variables).
var ReservedEnvNames = []string{
	"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION",
	"CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT", "CLOUD_RUN_TASK_COUNT",
	"FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE",
}

// Cloud Run's limits on environment variables
// (https://cloud.google.com/run/docs/configuring/environment-variables,
// "Maximum number of environment variables and limits"): at most 1000
// variables a container, and "the maximum variable length is 32 Kb". We read
// the length as name and value together, the stricter reading.
const (
	MaxEnvVars      = 1000
	MaxEnvVarLength = 32 << 10
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateBreakEnv checks what --break-env injects into the broken revision:
// valid names that Cloud Run does not reserve, values within its limits.
func ValidateBreakEnv(env map[string]string) error {
	if len(env) > MaxEnvVars {
		return fmt.Errorf("--break-env: %d variables; Cloud Run allows at most %d a container", len(env), MaxEnvVars)
	}
	for k, v := range env {
		switch {
		case !envNameRE.MatchString(k):
			return fmt.Errorf("--break-env %s: the name must be letters, digits and '_', not starting with a digit", printable(k, 64))
		case slices.Contains(ReservedEnvNames, strings.ToUpper(k)):
			return fmt.Errorf("--break-env %s: Cloud Run sets %s itself and refuses it in a revision (reserved: %s)", k, strings.ToUpper(k), strings.Join(ReservedEnvNames, ", "))
		case len(k)+len(v) > MaxEnvVarLength:
			return fmt.Errorf("--break-env %s: %d bytes; Cloud Run allows at most %d KiB a variable", k, len(k)+len(v), MaxEnvVarLength>>10)
		case !utf8.ValidString(v):
			return fmt.Errorf("--break-env %s: the value is not valid UTF-8", k)
		case strings.ContainsRune(v, 0):
			return fmt.Errorf("--break-env %s: the value contains a NUL byte", k)
		}
	}
	return nil
}

// MaxVersionLength bounds --expect-version.
const MaxVersionLength = 256

// ValidateExpectVersion checks --expect-version: printable text on one line,
// at most MaxVersionLength bytes. A health endpoint's version never holds a
// control character, and ours would be printed in every report.
func ValidateExpectVersion(v string) error {
	if len(v) > MaxVersionLength {
		return fmt.Errorf("--expect-version: %d bytes; a version is at most %d", len(v), MaxVersionLength)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("--expect-version: not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isBidiControl(r) {
			return fmt.Errorf("--expect-version %s: contains a control character (%U)", printable(v, 64), r)
		}
	}
	return nil
}

func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f' || r == '\u061c'
}

// printable quotes s for an error message, cut to max runes.
func printable(s string, max int) string {
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return fmt.Sprintf("%+q", s)
}
