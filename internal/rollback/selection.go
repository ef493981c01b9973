package rollback

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
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

// AddServicesFile adds the services the file at path lists (see
// ParseServicesFile), in the selection's project and region unless a line
// names its own; the file is read up to MaxServicesFile.
func (s *Selection) AddServicesFile(path string) error {
	b, err := ReadFileCapped(path, MaxServicesFile)
	if err != nil {
		return fmt.Errorf("--services-file %s: %w", path, err)
	}
	refs, err := ParseServicesFile("--services-file "+path, b, s.Project, s.Region)
	if err != nil {
		return err
	}
	for _, r := range refs {
		if err := s.Add(r); err != nil {
			return fmt.Errorf("--services-file %s: %w", path, err)
		}
	}
	return nil
}

// Check says what is wrong with a selection before any call: nothing
// selected, or labels to match in a project or region that is not valid.
func (s *Selection) Check() error {
	if s.Empty() {
		return errors.New("no service given: pass --service NAME, --services-file FILE or --label KEY=VALUE")
	}
	if s.Labels == nil {
		return nil
	}
	if err := ValidateProjectID(s.Project); err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	if err := ValidateRegion(s.Region); err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	return nil
}

// ServiceLister lists the services of a project and region (package cloudrun
// implements it); a label selection needs it.
type ServiceLister interface {
	ListServices(ctx context.Context, project, region string) ([]*Service, error)
}

// ResolveFrom returns the selected services, listing those of Project and
// Region from l only when labels are to be matched (see Resolve).
func (s *Selection) ResolveFrom(ctx context.Context, l ServiceLister) ([]ServiceRef, error) {
	if s.Labels == nil {
		return s.Resolve(nil)
	}
	svcs, err := l.ListServices(ctx, s.Project, s.Region)
	if err != nil {
		return nil, err
	}
	return s.Resolve(svcs)
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
