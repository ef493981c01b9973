package rollback

import (
	"slices"
	"strings"
	"time"
)

// ReportSchema names the JSON report format (docs/report.md).
const ReportSchema = "runrollback.report/v1"

// Results.
const (
	ResultPass    = "pass"
	ResultFail    = "fail"
	ResultAborted = "aborted"
	ResultError   = "error"
)

// Step statuses.
const (
	StepPass    = "pass"
	StepFail    = "fail"
	StepSkipped = "skipped"
	StepWarn    = "warn"
)

// Step names, used in the report, the journal and the test pause points.
const (
	StepPreflight = "preflight"
	StepLease     = "lease"
	StepDeploy    = "deploy"
	StepTemplate  = "template"
	StepDetectTag = "detect-tag"
	StepShift     = "shift"
	StepDetect    = "detect"
	StepRestore   = "restore"
	StepVerify    = "verify"
	StepCleanup   = "cleanup"
)

// DrillSteps lists the drill's steps in order.
var DrillSteps = []string{StepPreflight, StepLease, StepDeploy, StepTemplate, StepDetectTag, StepShift, StepDetect, StepRestore, StepVerify, StepCleanup}

// Protective reports whether step puts a service back (the drill's template,
// restore, verify and cleanup): it runs on a context that signals do not
// cancel, so a signal there ends only a test's pause, never the step.
func Protective(step string) bool {
	return step == StepTemplate || step == StepRestore || step == StepVerify || step == StepCleanup
}

// Report is what a command did, for humans (text), machines (JSON), JUnit and
// GitHub step summaries. docs/report.md documents every field.
type Report struct {
	Schema           string        `json:"schema"`
	Command          string        `json:"command"`
	Result           string        `json:"result"`
	ExitCode         int           `json:"exit_code"`
	Service          ReportService `json:"service"`
	Mode             *ReportMode   `json:"mode,omitempty"`
	Before           *ReportState  `json:"before,omitempty"`
	BrokenRevision   string        `json:"broken_revision,omitempty"`
	LastGood         []string      `json:"last_good"`
	After            *ReportState  `json:"after,omitempty"`
	TrafficRestored  bool          `json:"traffic_restored"`
	TemplateRestored bool          `json:"template_restored"`
	RevisionsCreated []string      `json:"revisions_created"`
	RevisionsDeleted []string      `json:"revisions_deleted"`
	Timings          Timings       `json:"timings_ms"`
	Exposure         Exposure      `json:"exposure"`
	APICalls         APICalls      `json:"api_calls"`
	Steps            []StepReport  `json:"steps"`
	// LeftBehind lists what of the run's stays on the service (a revision
	// Cloud Run refused to delete, a lease that could not be removed, its
	// break in someone else's revision): such a run never passes.
	LeftBehind []string `json:"left_behind,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
	Error      string   `json:"error,omitempty"`
	Hint       string   `json:"hint,omitempty"`
	// BadInput: the run stopped before any write because it was given a
	// service it cannot work on (missing, out of reach, unreadable), not
	// because the service was unsafe to change. The exit code says so.
	BadInput bool `json:"-"`
	// Sections: the tool, the CI run, and command-specific sections (sections.go).
	Sections
}

// ReportService names the service.
type ReportService struct {
	Project string `json:"project"`
	Region  string `json:"region"`
	Name    string `json:"name"`
	URI     string `json:"uri,omitempty"`
}

// ReportMode is how the drill was run.
type ReportMode struct {
	Break          string `json:"break"`
	TrafficPercent int32  `json:"traffic_percent"`
	Local          bool   `json:"local"`
}

// ReportState is the service before or after.
type ReportState struct {
	Traffic    Split  `json:"traffic"`
	Version    string `json:"version,omitempty"`
	Revision   string `json:"revision,omitempty"`
	Healthy    bool   `json:"healthy"`
	Etag       string `json:"etag,omitempty"`
	Generation int64  `json:"generation,omitempty"`
}

// Timings in milliseconds.
type Timings struct {
	DetectTag int64 `json:"detect_tag"`
	Detect    int64 `json:"detect"`
	Restore   int64 `json:"restore"`
	Verify    int64 `json:"verify"`
	Total     int64 `json:"total"`
}

// Exposure is how much user traffic could reach the broken revision, for how long.
type Exposure struct {
	Percent int32 `json:"percent"`
	MS      int64 `json:"ms"`
}

// APICalls counts Admin API requests.
type APICalls struct {
	Reads  int64 `json:"reads"`
	Writes int64 `json:"writes"`
}

// StepReport is one step of a run.
type StepReport struct {
	Name       string    `json:"name"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Detail     string    `json:"detail,omitempty"`
}

// Level is the prefix of a text event line.
type Level string

// Levels of events.
const (
	LevelInfo Level = "INFO"
	LevelPass Level = "PASS"
	LevelFail Level = "FAIL"
	LevelWarn Level = "WARN"
	// LevelRun marks a step starting: a terminal shows it as progress, a log
	// leaves it out.
	LevelRun Level = "RUN"
)

// Event is one line of progress.
type Event struct {
	Time     time.Time
	Level    Level
	Step     string
	Message  string
	Duration time.Duration // the step's duration, on its closing event
}

// Observer receives events as they happen.
type Observer func(Event)

func ms(d time.Duration) int64 { return d.Milliseconds() }

// recordStep appends a step to rep and tells observe (which may be nil).
func recordStep(rep *Report, observe Observer, name, status string, start time.Time, dur time.Duration, detail string) {
	rep.Steps = append(rep.Steps, StepReport{Name: name, Status: status, StartedAt: start.UTC(), DurationMS: ms(dur), Detail: detail})
	if observe == nil {
		return
	}
	level := map[string]Level{StepPass: LevelPass, StepFail: LevelFail, StepSkipped: LevelInfo, StepWarn: LevelWarn}[status]
	msg := detail
	if status == StepSkipped {
		msg = "skipped: " + detail
	}
	observe(Event{Time: start.Add(dur), Level: level, Step: name, Message: msg, Duration: dur})
}

// withLeft folds what a run left of its own on the service into its outcome:
// a run that would have passed fails, and the error and hint say what remains
// and how to remove it. A run whose restore was not confirmed (error) stays an
// error.
func withLeft(rep *Report, result, errText, hint string, left, fixes []string) (string, string, string) {
	if len(left) == 0 {
		return result, errText, hint
	}
	rep.LeftBehind = slices.Clone(left)
	what := "left behind on the service: " + strings.Join(left, "; ")
	switch {
	case result == ResultPass:
		result, errText = ResultFail, "the run finished, but "+what
	case errText == "":
		errText = what
	default:
		errText += "; and " + what
	}
	if len(fixes) > 0 {
		fix := "to remove what is left: " + strings.Join(fixes, "; ")
		if hint == "" {
			hint = fix
		} else {
			hint += "; " + fix
		}
	}
	return result, errText, hint
}

// conclude fills a report's closing fields: the result, the error (one line)
// and hint, the API calls, the total time, and empty lists rather than null.
func conclude(rep *Report, result, errText, hint string, calls func() (int64, int64), total time.Duration) {
	rep.Result = result
	if errText != "" {
		rep.Error = oneLine(errText)
		rep.Hint = hint
	}
	if calls != nil {
		r, w := calls()
		rep.APICalls = APICalls{Reads: r, Writes: w}
	}
	rep.Timings.Total = ms(total)
	for _, p := range []*[]string{&rep.LastGood, &rep.RevisionsCreated, &rep.RevisionsDeleted} {
		if *p == nil {
			*p = []string{}
		}
	}
}
