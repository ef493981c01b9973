package rollback

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ServiceRef names one Cloud Run service.
type ServiceRef struct {
	Project string `json:"project"`
	Region  string `json:"region"`
	Name    string `json:"name"`
}

// FullName is the resource name Cloud Run uses:
// projects/P/locations/R/services/S.
func (r ServiceRef) FullName() string {
	return fmt.Sprintf("projects/%s/locations/%s/services/%s", r.Project, r.Region, r.Name)
}

// String is FullName.
func (r ServiceRef) String() string { return r.FullName() }

// Target is one entry of a traffic split. Revision is the short revision name
// ("api-00002-def") and is empty when Latest is set.
type Target struct {
	Revision string `json:"revision,omitempty"`
	Percent  int32  `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	Latest   bool   `json:"latest,omitempty"`
}

// String renders a target the way the text output shows it: "api-00002-def=100",
// "LATEST=100", with "@tag" appended when tagged.
func (t Target) String() string {
	name := t.Revision
	switch {
	case t.Latest && t.Revision != "":
		name = "LATEST(" + t.Revision + ")"
	case t.Latest:
		name = "LATEST"
	}
	s := fmt.Sprintf("%s=%d", name, t.Percent)
	if t.Tag != "" {
		s += "@" + t.Tag
	}
	return s
}

// TargetStatus is one entry of the actual split: what Cloud Run serves now, with
// a URI for each tag. A LATEST entry has Latest set and Revision naming the
// revision it resolved to.
type TargetStatus struct {
	Target
	URI string `json:"uri,omitempty"`
}

// Split is a list of targets, in the order the API returned them.
type Split []Target

// String renders a split as "a=90, b=10@canary".
func (s Split) String() string {
	parts := make([]string, len(s))
	for i, t := range s {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

// Equal reports whether two splits are the same, entry for entry, in order.
func (s Split) Equal(o Split) bool { return slices.Equal(s, o) }

// Template is the revision template of a service, as far as the drill needs to
// see it. Raw is the adapter's own encoding of the whole template; writing it back
// restores the template exactly. Hash identifies the template without its revision
// name: two templates with equal hashes build the same revision.
type Template struct {
	Revision string            `json:"revision,omitempty"`
	Hash     string            `json:"hash,omitempty"`
	Image    string            `json:"image,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Raw      []byte            `json:"raw,omitempty"`
}

// Service is what runrollback knows of a Cloud Run service after one read.
type Service struct {
	Ref                   ServiceRef        `json:"ref"`
	URI                   string            `json:"uri"`
	Generation            int64             `json:"generation"`
	ObservedGeneration    int64             `json:"observed_generation"`
	Etag                  string            `json:"etag"`
	Ready                 bool              `json:"ready"`
	Reconciling           bool              `json:"reconciling"`
	Message               string            `json:"message,omitempty"`
	Traffic               Split             `json:"traffic"`
	TrafficStatuses       []TargetStatus    `json:"traffic_statuses"`
	LatestReadyRevision   string            `json:"latest_ready_revision,omitempty"`
	LatestCreatedRevision string            `json:"latest_created_revision,omitempty"`
	Annotations           map[string]string `json:"annotations,omitempty"`
	Labels                map[string]string `json:"labels,omitempty"`
	Template              Template          `json:"template"`
}

// ActualSplit is the actual split as a Split of revisions (LATEST resolved,
// URIs dropped).
func (s *Service) ActualSplit() Split {
	out := make(Split, 0, len(s.TrafficStatuses))
	for _, st := range s.TrafficStatuses {
		out = append(out, Target{Revision: st.Revision, Percent: st.Percent, Tag: st.Tag})
	}
	return out
}

// Revision is one revision of a service.
type Revision struct {
	Name       string            `json:"name"`
	CreateTime time.Time         `json:"create_time"`
	Ready      bool              `json:"ready"`
	Message    string            `json:"message,omitempty"`
	Image      string            `json:"image,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
}
