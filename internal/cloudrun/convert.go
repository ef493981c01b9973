package cloudrun

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/protobuf/proto"

	"github.com/runrollback/runrollback/internal/rollback"
)

// shortName is the last segment of a resource name.
func shortName(name string) string {
	if i := strings.LastIndex(name, "/"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// parseServiceName splits projects/P/locations/R/services/S.
func parseServiceName(name string) (rollback.ServiceRef, error) {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[0] != "projects" || p[2] != "locations" || p[4] != "services" {
		return rollback.ServiceRef{}, fmt.Errorf("unexpected service name %q", name)
	}
	return rollback.ServiceRef{Project: p[1], Region: p[3], Name: p[5]}, nil
}

// toTarget converts a desired traffic target: a LATEST target names no revision.
func toTarget(typ runpb.TrafficTargetAllocationType, rev string, pct int32, tag string) rollback.Target {
	t := rollback.Target{Percent: pct, Tag: tag}
	if typ == runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST {
		t.Latest = true
	} else {
		t.Revision = shortName(rev)
	}
	return t
}

// toStatus converts an actual traffic entry: a LATEST entry keeps the revision
// it resolved to.
func toStatus(st *runpb.TrafficTargetStatus) rollback.TargetStatus {
	t := toTarget(st.GetType(), "", st.GetPercent(), st.GetTag())
	t.Revision = shortName(st.GetRevision())
	return rollback.TargetStatus{Target: t, URI: st.GetUri()}
}

func toProtoTraffic(s rollback.Split) []*runpb.TrafficTarget {
	out := make([]*runpb.TrafficTarget, 0, len(s))
	for _, t := range s {
		pt := &runpb.TrafficTarget{Percent: t.Percent, Tag: t.Tag}
		if t.Latest {
			pt.Type = runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
		} else {
			pt.Type = runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
			pt.Revision = t.Revision
		}
		out = append(out, pt)
	}
	return out
}

func containerEnv(c *runpb.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.GetEnv() {
		if v, ok := e.GetValues().(*runpb.EnvVar_Value); ok {
			env[e.GetName()] = v.Value
		}
	}
	return env
}

// toService converts a Service as Cloud Run returned it.
func toService(s *runpb.Service) (*rollback.Service, error) {
	ref, err := parseServiceName(s.GetName())
	if err != nil {
		return nil, err
	}
	out := &rollback.Service{
		Ref:                   ref,
		URI:                   s.GetUri(),
		Generation:            s.GetGeneration(),
		ObservedGeneration:    s.GetObservedGeneration(),
		Etag:                  s.GetEtag(),
		Reconciling:           s.GetReconciling(),
		LatestReadyRevision:   shortName(s.GetLatestReadyRevision()),
		LatestCreatedRevision: shortName(s.GetLatestCreatedRevision()),
		Annotations:           maps.Clone(s.GetAnnotations()),
		Labels:                maps.Clone(s.GetLabels()),
	}
	if tc := s.GetTerminalCondition(); tc != nil {
		out.Ready = tc.GetState() == runpb.Condition_CONDITION_SUCCEEDED
		out.Message = tc.GetMessage()
	}
	for _, t := range s.GetTraffic() {
		out.Traffic = append(out.Traffic, toTarget(t.GetType(), t.GetRevision(), t.GetPercent(), t.GetTag()))
	}
	for _, t := range s.GetTrafficStatuses() {
		out.TrafficStatuses = append(out.TrafficStatuses, toStatus(t))
	}
	if tmpl := s.GetTemplate(); tmpl != nil {
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(tmpl)
		if err != nil {
			return nil, fmt.Errorf("encode template of %s: %w", ref.Name, err)
		}
		out.Template = rollback.Template{Revision: tmpl.GetRevision(), Raw: raw, Hash: templateHash(tmpl)}
		if cs := tmpl.GetContainers(); len(cs) > 0 {
			out.Template.Image = cs[0].GetImage()
			out.Template.Env = containerEnv(cs[0])
		}
	}
	return out, nil
}

// toRevision converts a Revision.
func toRevision(r *runpb.Revision) rollback.Revision {
	out := rollback.Revision{Name: shortName(r.GetName())}
	if ct := r.GetCreateTime(); ct != nil {
		out.CreateTime = ct.AsTime()
	}
	for _, c := range r.GetConditions() {
		if c.GetType() == "Ready" {
			out.Ready = c.GetState() == runpb.Condition_CONDITION_SUCCEEDED
			if !out.Ready {
				out.Message = c.GetMessage()
			}
		}
	}
	if cs := r.GetContainers(); len(cs) > 0 {
		out.Image = cs[0].GetImage()
		out.Env = containerEnv(cs[0])
	}
	return out
}

// decodeTemplate reads back a template encoded by toService.
func decodeTemplate(t rollback.Template) (*runpb.RevisionTemplate, error) {
	if len(t.Raw) == 0 {
		return nil, fmt.Errorf("the saved template is empty")
	}
	var tmpl runpb.RevisionTemplate
	if err := proto.Unmarshal(t.Raw, &tmpl); err != nil {
		return nil, fmt.Errorf("decode the saved template: %w", err)
	}
	return &tmpl, nil
}

// applyDeploy changes a template as a Deploy asks: a fixed revision name (or
// none), env values set or removed in the first container, and the image
// replaced.
func applyDeploy(tmpl *runpb.RevisionTemplate, d rollback.Deploy) error {
	if len(tmpl.GetContainers()) == 0 {
		return fmt.Errorf("the service's template has no container")
	}
	tmpl.Revision = d.Revision
	c := tmpl.Containers[0]
	if d.Image != "" {
		c.Image = d.Image
	}
	for _, k := range slices.Sorted(maps.Keys(d.Env)) {
		set := false
		for _, e := range c.Env {
			if e.GetName() == k {
				e.Values = &runpb.EnvVar_Value{Value: d.Env[k]}
				set = true
			}
		}
		if !set {
			c.Env = append(c.Env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: d.Env[k]}})
		}
	}
	c.Env = slices.DeleteFunc(c.Env, func(e *runpb.EnvVar) bool { return slices.Contains(d.Unset, e.GetName()) })
	return nil
}

// templateHash hashes a template's deterministic encoding without its revision name.
func templateHash(t *runpb.RevisionTemplate) string {
	c := proto.Clone(t).(*runpb.RevisionTemplate)
	c.Revision = ""
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
