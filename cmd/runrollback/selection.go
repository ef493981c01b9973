package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/rollback"
)

// selection is which services a drill covers: --service, --services-file and
// --label together.
type selection struct {
	refs   []rollback.ServiceRef
	labels map[string]string
	// project and region hold the defaults (and where --label looks).
	project, region string
}

// parseSelection reads and validates the selection flags; only --label needs
// the API, later, in resolve.
func parseSelection(c *cli.Context, g globalOpts) (selection, error) {
	s := selection{project: g.project, region: g.region}
	add := func(ref rollback.ServiceRef, where string) error {
		for _, check := range []func() error{
			func() error { return rollback.ValidateProjectID(ref.Project) },
			func() error { return rollback.ValidateRegion(ref.Region) },
			func() error { return rollback.ValidateServiceName(ref.Name) },
		} {
			if err := check(); err != nil {
				return usageError{fmt.Errorf("%s: %w", where, err)}
			}
		}
		if !slices.Contains(s.refs, ref) {
			s.refs = append(s.refs, ref)
		}
		return nil
	}
	for _, ref := range g.refs() {
		if err := add(ref, "--service"); err != nil {
			return s, err
		}
	}
	if path := c.String("services-file"); path != "" {
		refs, err := readServicesFile(path, g.project, g.region)
		if err != nil {
			return s, usageError{err}
		}
		for _, r := range refs {
			if err := add(r, "--services-file "+path); err != nil {
				return s, err
			}
		}
	}
	if labels := c.StringSlice("label"); len(labels) > 0 {
		s.labels = map[string]string{}
		for _, kv := range labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return s, usageError{fmt.Errorf("--label %q: want KEY=VALUE", kv)}
			}
			s.labels[k] = v
		}
		if err := rollback.ValidateProjectID(g.project); err != nil {
			return s, usageError{fmt.Errorf("--label: %w", err)}
		}
		if err := rollback.ValidateRegion(g.region); err != nil {
			return s, usageError{fmt.Errorf("--label: %w", err)}
		}
	}
	if len(s.refs) == 0 && s.labels == nil {
		return s, usageError{fmt.Errorf("no service given: pass --service NAME, --services-file FILE or --label KEY=VALUE")}
	}
	return s, nil
}

// resolve adds the services --label selects.
func (s selection) resolve(ctx context.Context, be *backend) ([]rollback.ServiceRef, error) {
	refs := slices.Clone(s.refs)
	if s.labels == nil {
		return refs, nil
	}
	svcs, err := be.cloud.ListServices(ctx, s.project, s.region)
	if err != nil {
		return nil, err
	}
	matched := 0
	for _, svc := range svcs {
		ok := true
		for k, v := range s.labels {
			if svc.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			matched++
			if !slices.Contains(refs, svc.Ref) {
				refs = append(refs, svc.Ref)
			}
		}
	}
	if matched == 0 {
		keys := slices.Sorted(maps.Keys(s.labels))
		return nil, usageError{fmt.Errorf("no service in %s/%s has the labels %v: check --label, --project and --region", s.project, s.region, keys)}
	}
	return refs, nil
}

// readServicesFile reads a JSON array of {project, region, name} or lines of
// [project/][region/]name ('#' starts a comment). Missing parts default to
// --project and --region.
func readServicesFile(path, project, region string) ([]rollback.ServiceRef, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--services-file: %w", err)
	}
	var refs []rollback.ServiceRef
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&refs); err != nil {
			return nil, fmt.Errorf("--services-file %s: want a JSON array of {\"project\", \"region\", \"name\"}: %v", path, err)
		}
		for i := range refs {
			refs[i].Project = cmp.Or(refs[i].Project, project)
			refs[i].Region = cmp.Or(refs[i].Region, region)
		}
		return refs, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		parts := strings.Split(line, "/")
		ref := rollback.ServiceRef{Project: project, Region: region}
		switch len(parts) {
		case 1:
			ref.Name = parts[0]
		case 2:
			ref.Region, ref.Name = parts[0], parts[1]
		case 3:
			ref.Project, ref.Region, ref.Name = parts[0], parts[1], parts[2]
		default:
			return nil, fmt.Errorf("--services-file %s line %d: want [project/][region/]name, got %q", path, n, line)
		}
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("--services-file %s lists no service", path)
	}
	return refs, nil
}
