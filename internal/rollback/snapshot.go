package rollback

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SnapshotSchema names the snapshot file format.
const SnapshotSchema = "runrollback.snapshot/v1"

// Snapshot is a service's traffic as read, enough to restore it exactly: the
// traffic list verbatim, what LATEST resolved to, the etag and generation of the
// read, and the template (so a drill can put it back).
type Snapshot struct {
	Schema      string     `json:"schema"`
	Service     ServiceRef `json:"service"`
	URI         string     `json:"uri,omitempty"`
	TakenAt     time.Time  `json:"taken_at"`
	Etag        string     `json:"etag"`
	Generation  int64      `json:"generation"`
	Traffic     Split      `json:"traffic"`
	LatestReady string     `json:"latest_ready_revision,omitempty"`
	// Actual is the split Cloud Run served at the time (LATEST resolved).
	Actual Split `json:"actual"`
	// Version and Revision are what the health endpoint answered, when probed.
	Version  string   `json:"version,omitempty"`
	Revision string   `json:"revision,omitempty"`
	Template Template `json:"template"`
}

// TakeSnapshot records a service as read at time now.
func TakeSnapshot(s *Service, now time.Time) Snapshot {
	return Snapshot{
		Schema:      SnapshotSchema,
		Service:     s.Ref,
		URI:         s.URI,
		TakenAt:     now.UTC(),
		Etag:        s.Etag,
		Generation:  s.Generation,
		Traffic:     slices.Clone(s.Traffic),
		LatestReady: s.LatestReadyRevision,
		Actual:      s.ActualSplit(),
		Template:    s.Template,
	}
}

// Encode is the snapshot file's content: indented JSON and a line break.
func (s Snapshot) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadSnapshot reads the snapshot file at path, given with flag (never more
// than MaxSnapshotFile bytes), and checks that it is a valid snapshot of want,
// bounded by Cloud Run's limits, before anything is written.
func ReadSnapshot(flag, path string, want ServiceRef) (Snapshot, error) {
	var snap Snapshot
	b, err := ReadFileCapped(path, MaxSnapshotFile)
	switch {
	case errors.Is(err, ErrTooLarge):
		return snap, fmt.Errorf("%s %s: %w: not a snapshot (one is a few KiB); write one with 'runrollback snapshot --out FILE'", flag, path, err)
	case err != nil:
		return snap, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		return snap, fmt.Errorf("%s %s: not a snapshot (%v); write one with 'runrollback snapshot --out FILE'", flag, path, err)
	}
	if err := snap.Validate(); err != nil {
		return snap, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if snap.Service != want {
		return snap, fmt.Errorf("%s %s is a snapshot of %s, not of %s", flag, path, snap.Service, want)
	}
	return snap, nil
}

// Validate checks a snapshot read from a file before it is used to restore.
func (s Snapshot) Validate() error {
	if s.Schema != SnapshotSchema {
		return fmt.Errorf("not a runrollback snapshot (schema %q, want %q)", s.Schema, SnapshotSchema)
	}
	if err := ValidateServiceName(s.Service.Name); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := ValidateSplit(s.Traffic); err != nil {
		return fmt.Errorf("snapshot traffic: %w", err)
	}
	if s.hasLatest() && s.LatestReady == "" {
		return fmt.Errorf("snapshot has a LATEST target but no latest_ready_revision to pin it to")
	}
	return nil
}

func (s Snapshot) hasLatest() bool {
	return slices.ContainsFunc(s.Traffic, func(t Target) bool { return t.Latest })
}

// Pinned is the snapshot's traffic list with every LATEST target pinned to the
// revision it resolved to, so that traffic cannot follow a newer revision.
func (s Snapshot) Pinned() Split {
	out := slices.Clone(s.Traffic)
	for i, t := range out {
		if t.Latest {
			out[i].Latest = false
			out[i].Revision = s.LatestReady
		}
	}
	return out
}

// Serving lists the revisions that received traffic at the time, in split order:
// the last good revisions.
func (s Snapshot) Serving() []string {
	var out []string
	for _, t := range s.Pinned() {
		if t.Percent > 0 && !slices.Contains(out, t.Revision) {
			out = append(out, t.Revision)
		}
	}
	return out
}

// Tagged lists the revisions the snapshot's traffic names, serving or tagged.
func (s Snapshot) Tagged() []string {
	var out []string
	for _, t := range s.Pinned() {
		if !slices.Contains(out, t.Revision) {
			out = append(out, t.Revision)
		}
	}
	return out
}

// Resolve returns desired with LATEST targets resolved to latestReady.
func Resolve(desired Split, latestReady string) Split {
	out := slices.Clone(desired)
	for i, t := range out {
		if t.Latest {
			out[i] = Target{Revision: latestReady, Percent: t.Percent, Tag: t.Tag}
		}
	}
	return out
}

// SameSplit reports whether two splits send the same percent to the same
// revisions with the same tags, in any order.
func SameSplit(a, b Split) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(x, y Target) int {
		return cmp.Or(cmp.Compare(x.Revision, y.Revision), cmp.Compare(x.Tag, y.Tag),
			cmp.Compare(x.Percent, y.Percent), cmpBool(x.Latest, y.Latest))
	}
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(as, key)
	slices.SortFunc(bs, key)
	return slices.Equal(as, bs)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Converged reports whether Cloud Run serves what the service asks for: the
// desired split (LATEST resolved) equals the actual one, and the latest
// generation has been observed.
func (s *Service) Converged() bool {
	if s.Reconciling || s.ObservedGeneration < s.Generation {
		return false
	}
	return SameSplit(Resolve(s.Traffic, s.LatestReadyRevision), s.ActualSplit())
}

// ShiftTo returns split with percent moved to a new target for revision (tagged
// tag), taking it from the others in proportion; other entries and tags stay.
func ShiftTo(split Split, revision, tag string, percent int32) Split {
	out := slices.Clone(split)
	rest := 100 - percent
	var sum int32
	for i := range out {
		out[i].Percent = out[i].Percent * rest / 100
		sum += out[i].Percent
	}
	// Largest share first takes the rounding remainder.
	for i := 0; sum < rest && len(out) > 0; i = (i + 1) % len(out) {
		if split[i].Percent > 0 {
			out[i].Percent++
			sum++
		}
	}
	return append(out, Target{Revision: revision, Percent: percent, Tag: tag})
}
