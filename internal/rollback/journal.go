package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Annotation keys runrollback writes on a service while a run is in flight.
const (
	// AnnotationLease holds the Lease: who runs what, since when, until when.
	AnnotationLease = "runrollback.dev/lease"
	// AnnotationJournal holds the Journal: what to restore, and what of ours to remove.
	AnnotationJournal = "runrollback.dev/journal"
)

// JournalSchema names the journal format.
const JournalSchema = "runrollback.journal/v1"

// Lease says a run holds a service. Another run refuses to start while it is held
// and not expired.
type Lease struct {
	ID      string    `json:"id"`
	Owner   string    `json:"owner"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Expires time.Time `json:"expires"`
}

// Expired reports whether the lease may be taken over at now.
func (l Lease) Expired(now time.Time) bool { return !now.Before(l.Expires) }

// Journal is what an interrupted run leaves so that `recover`, on any machine,
// can finish the job: the snapshot to restore, and what of ours may be on the
// service. It is written before every change (local file) and on the service
// (annotation) before the first change users could see.
type Journal struct {
	Schema         string    `json:"schema"`
	ID             string    `json:"id"`
	Command        string    `json:"command"`
	Owner          string    `json:"owner"`
	Started        time.Time `json:"started"`
	Step           string    `json:"step,omitempty"`
	Operation      string    `json:"operation,omitempty"`
	Snapshot       Snapshot  `json:"snapshot"`
	BrokenRevision string    `json:"broken_revision,omitempty"`
	Tag            string    `json:"tag,omitempty"`
	KeepRevision   bool      `json:"keep_revision,omitempty"`
	// TemplateChanged says the run wrote a template (deploy), so the
	// snapshot's template must be written back.
	TemplateChanged bool `json:"template_changed,omitempty"`
	// Mark is the break the run put in the template, and how to take it out
	// of whatever template carries it.
	Mark *Mark `json:"mark,omitempty"`
	// From is the traffic a guard found (the bad deploy's): recover may replace
	// it with the snapshot's, because that is what the guard set out to do.
	From Split `json:"from,omitempty"`
	// Expect is the traffic the run last wrote (or is about to write): when the
	// service still shows it, nobody else has changed the traffic since.
	Expect Split `json:"expect,omitempty"`
	// Prior is what Expect was before the latest write: if that write never
	// applied, the service still shows Prior.
	Prior Split `json:"prior,omitempty"`
	// PID is the process of the run, on the machine that keeps the local
	// journal: recover there can tell a live run from a dead one.
	PID int `json:"pid,omitempty"`
	// Plan lists every traffic list the run writes, in order, known before
	// its first write: a service that shows one of them (or the snapshot's)
	// has not been changed by anyone else, on whichever machine recover runs.
	Plan []Split `json:"plan,omitempty"`
	// Restored is the generation the drill's restore gave the service when
	// it put the traffic back pinned but not yet verbatim (a LATEST-tracking
	// service): the restore's write carries it in the journal annotation, and
	// is etag-guarded, so the write makes exactly the next generation. A
	// service still at it shows the drill's own pin; past it, someone else
	// has written since, and a pin there may be theirs.
	Restored int64 `json:"restored_generation,omitempty"`
}

// left reports whether traffic is a state the run wrote or was about to
// write (its plan, or its last write, applied or not).
func (j *Journal) left(traffic Split) bool {
	for _, s := range j.Plan {
		if SameSplit(traffic, s) {
			return true
		}
	}
	return (j.Expect != nil && SameSplit(traffic, j.Expect)) || (j.Prior != nil && SameSplit(traffic, j.Prior))
}

// Mark is what a drill's break puts in a template (env values, an image) and
// what the template had there before, so the break can be taken out of any
// template that carries it: the drill's own, or one someone else deployed
// from it.
type Mark struct {
	Env   map[string]string `json:"env,omitempty"`
	Image string            `json:"image,omitempty"`
	// Was holds the pre-drill values of the break's env names that were set;
	// Absent names those that were not; WasImage is the pre-drill image when
	// the break replaced it.
	Was      map[string]string `json:"was,omitempty"`
	Absent   []string          `json:"absent,omitempty"`
	WasImage string            `json:"was_image,omitempty"`
}

// markOf is the mark b leaves in a template t.
func markOf(b Break, t Template) *Mark {
	if len(b.Env) == 0 && b.Image == "" {
		return nil
	}
	m := &Mark{Env: maps.Clone(b.Env), Image: b.Image}
	for _, k := range slices.Sorted(maps.Keys(b.Env)) {
		if v, ok := t.Env[k]; ok {
			if m.Was == nil {
				m.Was = map[string]string{}
			}
			m.Was[k] = v
		} else {
			m.Absent = append(m.Absent, k)
		}
	}
	if b.Image != "" {
		m.WasImage = t.Image
	}
	return m
}

// In reports whether a container with env and image carries the break.
func (m *Mark) In(env map[string]string, image string) bool {
	if m == nil {
		return false
	}
	if m.Image != "" && image == m.Image && image != m.WasImage {
		return true
	}
	if len(m.Env) == 0 {
		return false
	}
	for k, v := range m.Env {
		if was, ok := m.Was[k]; ok && was == v {
			return false // the template had it before the drill
		}
		if got, ok := env[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// undo is the change that takes the break out of a template carrying it.
func (m *Mark) undo() Deploy {
	return Deploy{Env: maps.Clone(m.Was), Unset: slices.Clone(m.Absent), Image: m.WasImage}
}

// String names the break as it shows in a template.
func (m *Mark) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m.Env)) {
		parts = append(parts, k+"="+m.Env[k])
	}
	if m.Image != "" {
		parts = append(parts, "image "+m.Image)
	}
	return strings.Join(parts, ", ")
}

// LeaseAndJournal reads our annotations from a service. Either may be nil.
func LeaseAndJournal(s *Service) (*Lease, *Journal, error) {
	l, lerr := leaseOf(s)
	j, jerr := journalOf(s)
	if err := errors.Join(lerr, jerr); err != nil {
		return nil, nil, err
	}
	return l, j, nil
}

// leaseOf reads the lease annotation: nil when there is none, an error when
// it is there but unreadable.
func leaseOf(s *Service) (*Lease, error) {
	v, ok := s.Annotations[AnnotationLease]
	if !ok {
		return nil, nil
	}
	l := new(Lease)
	if err := json.Unmarshal([]byte(v), l); err != nil || l.ID == "" {
		return nil, fmt.Errorf("annotation %s of %s is unreadable: %v", AnnotationLease, s.Ref.Name, cmpErr(err, "no run id"))
	}
	return l, nil
}

// journalOf reads the journal annotation, as leaseOf does.
func journalOf(s *Service) (*Journal, error) {
	v, ok := s.Annotations[AnnotationJournal]
	if !ok {
		return nil, nil
	}
	j := new(Journal)
	if err := json.Unmarshal([]byte(v), j); err != nil || j.ID == "" || j.Schema != JournalSchema {
		return nil, fmt.Errorf("annotation %s of %s is unreadable: %v", AnnotationJournal, s.Ref.Name, cmpErr(err, "not a journal of this version"))
	}
	return j, nil
}

func cmpErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

// otherRun returns the live lease of a run other than id on s, or nil.
func otherRun(s *Service, id string, now time.Time) *Lease {
	l, _ := leaseOf(s)
	if l == nil || l.ID == id || l.Expired(now) {
		return nil
	}
	return l
}

// compact is the journal as it goes on the service: without the template's
// full encoding and env, which can be far larger than Cloud Run's 256 KiB of
// annotations. Nothing on the service needs them: the break is taken out of a
// template by its Mark, and the template's hash says whether it is back. The
// local file keeps the whole journal.
func compact(j Journal) Journal {
	j.Snapshot.Template.Raw = nil
	j.Snapshot.Template.Env = nil
	return j
}

// JournalAnnotationSize is the size of j's annotation on the service.
func JournalAnnotationSize(j Journal) int {
	b, _ := json.Marshal(compact(j))
	return len(b)
}

// WithRunAnnotations returns annotations plus our lease and (compact) journal.
func WithRunAnnotations(annotations map[string]string, l Lease, j Journal) (map[string]string, error) {
	lb, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	jb, err := json.Marshal(compact(j))
	if err != nil {
		return nil, err
	}
	out := WithoutRunAnnotations(annotations)
	out[AnnotationLease] = string(lb)
	out[AnnotationJournal] = string(jb)
	return out, nil
}

// WithoutRunAnnotations returns annotations without any key of ours.
func WithoutRunAnnotations(annotations map[string]string) map[string]string {
	out := maps.Clone(annotations)
	if out == nil {
		out = map[string]string{}
	}
	for k := range out {
		if isRunAnnotation(k) {
			delete(out, k)
		}
	}
	return out
}

// HasRunAnnotations reports whether any key of ours is on the service.
func HasRunAnnotations(annotations map[string]string) bool {
	for k := range annotations {
		if isRunAnnotation(k) {
			return true
		}
	}
	return false
}

func isRunAnnotation(key string) bool { return strings.HasPrefix(key, "runrollback.dev/") }

// FileJournal keeps journals as files in Dir, one per service.
type FileJournal struct {
	Dir string
}

func (f FileJournal) path(ref ServiceRef) string {
	name := fmt.Sprintf("journal-%s-%s-%s.json", ref.Project, ref.Region, ref.Name)
	return filepath.Join(f.Dir, strings.ReplaceAll(name, ":", "_"))
}

// Path is where the journal of ref is kept.
func (f FileJournal) Path(ref ServiceRef) string { return f.path(ref) }

// Save writes j atomically (write a temporary file, then rename).
func (f FileJournal) Save(j Journal) error {
	if f.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	p := f.path(j.Snapshot.Service)
	tmp, err := os.CreateTemp(f.Dir, ".journal-*")
	if err != nil {
		return fmt.Errorf("save journal: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("save journal: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save journal: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save journal: %w", err)
	}
	return nil
}

// Load reads the journal of ref; (nil, nil) when there is none.
func (f FileJournal) Load(ref ServiceRef) (*Journal, error) {
	if f.Dir == "" {
		return nil, nil
	}
	b, err := readJournalFile(f.path(ref))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("read journal %s: %w", f.path(ref), err)
	}
	if j.Schema != JournalSchema {
		return nil, fmt.Errorf("read journal %s: schema %q, want %q", f.path(ref), j.Schema, JournalSchema)
	}
	return &j, nil
}

// MaxJournalFile bounds a local journal: one snapshot (at most
// MaxSnapshotFile) and a few traffic lists.
const MaxJournalFile = 2 * MaxSnapshotFile

// readJournalFile reads a local journal, which runrollback writes as a
// regular file: anything else there (a FIFO, a device, a directory) is an
// error, and never a read that blocks or has no end.
func readJournalFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	return ReadFileCapped(path, MaxJournalFile)
}

// Delete removes the journal of ref; a missing file is fine.
func (f FileJournal) Delete(ref ServiceRef) error {
	if f.Dir == "" {
		return nil
	}
	if err := os.Remove(f.path(ref)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete journal: %w", err)
	}
	return nil
}
