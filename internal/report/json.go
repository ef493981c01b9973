package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Fleet is the JSON report of several runs (a drill over several services):
// the overall result and exit code, and one report per service.
type Fleet struct {
	Schema   string          `json:"schema"`
	Command  string          `json:"command"`
	Result   string          `json:"result"`
	ExitCode int             `json:"exit_code"`
	Tool     *rollback.Tool  `json:"tool,omitempty"`
	CI       *rollback.CIRun `json:"ci,omitempty"`
	// Shard is the part of the selection drilled (--shard), when sharded.
	Shard   *rollback.ShardSection `json:"shard,omitempty"`
	Reports []*rollback.Report     `json:"reports"`
}

// JSON writes r as one indented JSON object, schema runrollback.report/v1,
// followed by a newline. An empty Schema is written as rollback.ReportSchema,
// and nil lists (last_good, revisions_created, revisions_deleted, steps,
// traffic) as []. Strings are written exactly (JSON escapes control
// characters); "##[" is written as "#\u0023[", which decodes to the same
// text. r itself is not changed.
func JSON(w io.Writer, r *rollback.Report) error {
	if r == nil {
		return errors.New("report: no report to write")
	}
	return encode(w, normalize(r))
}

// JSONFleet writes f as one indented JSON object followed by a newline, each
// report normalized as JSON does. An empty Schema is written as
// rollback.ReportSchema; nil reports are dropped. f itself is not changed.
func JSONFleet(w io.Writer, f *Fleet) error {
	if f == nil {
		return errors.New("report: no fleet report to write")
	}
	out := *f
	out.Schema = cmp.Or(out.Schema, rollback.ReportSchema)
	out.Reports = make([]*rollback.Report, 0, len(f.Reports))
	for _, r := range f.Reports {
		if r != nil {
			out.Reports = append(out.Reports, normalize(r))
		}
	}
	return encode(w, &out)
}

// encode writes v as indented JSON and a newline. Any "##[" (a legacy GitHub
// workflow command, honoured anywhere in a line of a step's output) can only
// be inside a JSON string, so it is written as "#\u0023[": the same value, but
// safe to print on stdout in GitHub Actions.
func encode(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(bytes.ReplaceAll(buf.Bytes(), []byte("##["), []byte(`#\u0023[`)))
	return err
}

// normalize returns a shallow copy of r with the schema set and nil lists
// made empty, so consumers see [] instead of null.
func normalize(r *rollback.Report) *rollback.Report {
	c := *r
	c.Schema = cmp.Or(c.Schema, rollback.ReportSchema)
	c.LastGood = emptyIfNil(c.LastGood)
	c.RevisionsCreated = emptyIfNil(c.RevisionsCreated)
	c.RevisionsDeleted = emptyIfNil(c.RevisionsDeleted)
	c.Steps = emptyIfNil(c.Steps)
	c.Before = normalizeState(c.Before)
	c.After = normalizeState(c.After)
	return &c
}

func normalizeState(s *rollback.ReportState) *rollback.ReportState {
	if s == nil {
		return nil
	}
	c := *s
	c.Traffic = emptyIfNil(c.Traffic)
	return &c
}

func emptyIfNil[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}
