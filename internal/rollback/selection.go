package rollback

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Limits of a services file (--services-file): the whole file, and one line
// of the line format.
const (
	MaxServicesFile     = 4 << 20
	MaxServicesFileLine = 64 << 10
)

// Selection is which services a fleet drill covers: named services (from
// --service and --services-file) and services whose labels match.
type Selection struct {
	Refs []ServiceRef
	// Labels, when not nil, select every service in Project and Region that
	// carries all of them.
	Labels          map[string]string
	Project, Region string
}

// Add appends ref unless it is already selected, after checking its names.
func (s *Selection) Add(ref ServiceRef) error {
	if err := ValidateProjectID(ref.Project); err != nil {
		return err
	}
	if err := ValidateRegion(ref.Region); err != nil {
		return err
	}
	if err := ValidateServiceName(ref.Name); err != nil {
		return err
	}
	if !slices.Contains(s.Refs, ref) {
		s.Refs = append(s.Refs, ref)
	}
	return nil
}

// AddLabel adds a KEY=VALUE label to match.
func (s *Selection) AddLabel(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("--label %q: want KEY=VALUE", kv)
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[k] = v
	return nil
}

// Empty reports whether nothing is selected.
func (s *Selection) Empty() bool { return len(s.Refs) == 0 && s.Labels == nil }

// Resolve returns the selected services: the named ones, then those of svcs
// (the services in Project and Region) whose labels match, each once. A label
// selection that matches nothing is an error: a fleet drill of nothing would
// pass.
func (s *Selection) Resolve(svcs []*Service) ([]ServiceRef, error) {
	refs := slices.Clone(s.Refs)
	if s.Labels == nil {
		return refs, nil
	}
	matched := 0
	for _, svc := range svcs {
		if !hasLabels(svc.Labels, s.Labels) {
			continue
		}
		matched++
		if !slices.Contains(refs, svc.Ref) {
			refs = append(refs, svc.Ref)
		}
	}
	if matched == 0 {
		keys := slices.Sorted(maps.Keys(s.Labels))
		return nil, fmt.Errorf("no service in %s/%s has the labels %v: check --label, --project and --region", s.Project, s.Region, keys)
	}
	return refs, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ParseServicesFile parses the contents of a services file named name: a
// JSON array of {"project", "region", "name"}, or one [project/][region/]name
// per line ('#' starts a comment). Missing parts default to project and
// region. A line longer than MaxServicesFileLine is an error, never a silent
// end of the list.
func ParseServicesFile(name string, b []byte, project, region string) ([]ServiceRef, error) {
	var refs []ServiceRef
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&refs); err != nil {
			return nil, fmt.Errorf("%s: want a JSON array of {\"project\", \"region\", \"name\"}: %v", name, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s: text after the JSON array", name)
		}
		for i := range refs {
			refs[i].Project = cmp.Or(refs[i].Project, project)
			refs[i].Region = cmp.Or(refs[i].Region, region)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 4096), MaxServicesFileLine)
		n := 0
		for sc.Scan() {
			n++
			line := sc.Text()
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			parts := strings.Split(line, "/")
			ref := ServiceRef{Project: project, Region: region}
			switch len(parts) {
			case 1:
				ref.Name = parts[0]
			case 2:
				ref.Region, ref.Name = parts[0], parts[1]
			case 3:
				ref.Project, ref.Region, ref.Name = parts[0], parts[1], parts[2]
			default:
				return nil, fmt.Errorf("%s line %d: want [project/][region/]name, got %q", name, n, line)
			}
			refs = append(refs, ref)
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, fmt.Errorf("%s line %d: longer than %d KiB: not a services file", name, n+1, MaxServicesFileLine>>10)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s lists no service", name)
	}
	return refs, nil
}
