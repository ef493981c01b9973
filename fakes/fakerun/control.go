package fakerun

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// methods are the RPCs that faults can be injected into.
var methods = []string{
	"CreateService", "GetService", "ListServices", "UpdateService", "DeleteService",
	"GetRevision", "ListRevisions", "DeleteRevision",
	"GetOperation", "ListOperations", "DeleteOperation", "WaitOperation",
}

// ControlHandler serves the fake's state and fault injection as JSON over
// HTTP, for other processes (see fakes/README.md). Serve it on loopback only.
//
//	GET  /state             services, their split, generation, etag, revisions
//	GET  /calls             {"calls":{"GetService":2,...},"writes":1}
//	POST /fail              {"method":"UpdateService","n":2,"code":"UNAVAILABLE","message":"...","retry_delay_ms":0,"skip":0}
//	POST /lose-reply        {"method":"UpdateService","n":1,"code":"UNAVAILABLE"}
//	POST /latency           {"method":"GetService","ms":200}
//	POST /hold              {"hold":true} or {"hold":true,"after":3} (hold from the 4th write on)
//	POST /release           {}
//	POST /fail-operations   {"n":1,"code":"INTERNAL","message":"..."}
//	POST /concurrent-write  {"service":"api","traffic":[...],"image":"...","env":{...},"annotations":{...}}
//	POST /reset-faults      {}
//	GET  /rollout           {"create_ms":15,"deploy_ms":15,"update_ms":5,"delete_ms":5,"wait_max_ms":0,"retention_ms":60000,"ready_despite_failed_revision":false}
//	POST /rollout           the same, fields left out keep their value
//	POST /forget-operations {}
//	GET  /images            {"images":{"repo:tag":{"digest":"sha256:…","app_version":"1.0.0","env":{...}}}}
//	POST /images            {"image":"repo:tag","app_version":"2.0.0","env":{...},"digest":"","after_writes":0} (push: the tag moves)
//	POST /seed              a World
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.controlState())
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"calls": s.Calls(), "writes": s.Writes()})
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method       string `json:"method"`
			N            int    `json:"n"`
			Code         string `json:"code"`
			Message      string `json:"message"`
			RetryDelayMS int64  `json:"retry_delay_ms"`
			Skip         int    `json:"skip"`
		}
		if !decode(w, r, &req) {
			return
		}
		code, err := parseMethodAndCode(req.Method, req.Code)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		st := status.New(code, cmp.Or(req.Message, "injected by fakerun"))
		if req.RetryDelayMS > 0 {
			if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(req.RetryDelayMS) * time.Millisecond)}); err == nil {
				st = d
			}
		}
		if req.Skip > 0 {
			s.FailAfter(req.Method, req.Skip, 0, codes.OK, "")
		}
		s.FailNextWithDetails(req.Method, max(req.N, 1), st)
		ok(w)
	})
	mux.HandleFunc("POST /lose-reply", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string `json:"method"`
			N      int    `json:"n"`
			Code   string `json:"code"`
		}
		if !decode(w, r, &req) {
			return
		}
		code, err := parseMethodAndCode(req.Method, cmp.Or(req.Code, "UNAVAILABLE"))
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		s.LoseReply(req.Method, max(req.N, 1), code)
		ok(w)
	})
	mux.HandleFunc("POST /latency", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string `json:"method"`
			MS     int64  `json:"ms"`
		}
		if !decode(w, r, &req) {
			return
		}
		if !slices.Contains(methods, req.Method) {
			fail(w, http.StatusBadRequest, unknownMethod(req.Method))
			return
		}
		s.SetLatency(req.Method, time.Duration(req.MS)*time.Millisecond)
		ok(w)
	})
	mux.HandleFunc("POST /hold", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Hold  bool `json:"hold"`
			After int  `json:"after"`
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Hold && req.After > 0 {
			s.HoldOperationsAfter(req.After)
		} else {
			s.HoldOperations(req.Hold)
		}
		ok(w)
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		s.ReleaseOperations()
		ok(w)
	})
	mux.HandleFunc("POST /fail-operations", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			N       int    `json:"n"`
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if !decode(w, r, &req) {
			return
		}
		code, err := parseCode(req.Code)
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		s.FailOperations(max(req.N, 1), code, cmp.Or(req.Message, "injected by fakerun"))
		ok(w)
	})
	mux.HandleFunc("POST /concurrent-write", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Service     string            `json:"service"`
			Traffic     []SeedTarget      `json:"traffic"`
			Image       string            `json:"image"`
			Env         map[string]string `json:"env"`
			Annotations map[string]string `json:"annotations"`
		}
		if !decode(w, r, &req) {
			return
		}
		name, err := s.resolveService(req.Service)
		if err != nil {
			fail(w, http.StatusNotFound, err)
			return
		}
		s.f.mu.Lock()
		s.f.beforeWrite = &beforeWrite{service: name, fn: func(svc *runpb.Service) {
			if req.Traffic != nil {
				svc.Traffic = seedTraffic(req.Traffic)
			}
			if req.Annotations != nil {
				if svc.Annotations == nil {
					svc.Annotations = map[string]string{}
				}
				maps.Copy(svc.Annotations, req.Annotations)
			}
			if (req.Image != "" || req.Env != nil) && len(svc.GetTemplate().GetContainers()) > 0 {
				c := svc.Template.Containers[0]
				if req.Image != "" {
					c.Image = req.Image
				}
				setEnv(c, req.Env)
			}
		}}
		s.f.mu.Unlock()
		ok(w)
	})
	mux.HandleFunc("POST /reset-faults", func(w http.ResponseWriter, r *http.Request) {
		s.ResetFaults()
		ok(w)
	})
	mux.HandleFunc("GET /rollout", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, rolloutJSON(s.Rollout()))
	})
	mux.HandleFunc("POST /rollout", func(w http.ResponseWriter, r *http.Request) {
		var req SeedRollout
		if !decode(w, r, &req) {
			return
		}
		s.f.mu.Lock()
		next, err := req.apply(s.f.rollout)
		if err == nil {
			s.f.rollout = next
		}
		s.f.mu.Unlock()
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		ok(w)
	})
	mux.HandleFunc("POST /forget-operations", func(w http.ResponseWriter, r *http.Request) {
		s.ForgetOperations()
		ok(w)
	})
	mux.HandleFunc("GET /images", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"images": s.Images()})
	})
	mux.HandleFunc("POST /images", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Image       string            `json:"image"`
			AppVersion  string            `json:"app_version"`
			Env         map[string]string `json:"env"`
			Digest      string            `json:"digest"`
			AfterWrites int               `json:"after_writes"`
		}
		if !decode(w, r, &req) {
			return
		}
		if req.Image == "" {
			fail(w, http.StatusBadRequest, errors.New(`"image" is required: the repo:tag to push`))
			return
		}
		d, err := s.PushImageAfterWrites(req.AfterWrites, req.Image, Image{Digest: req.Digest, AppVersion: req.AppVersion, Env: req.Env})
		if err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "digest": d})
	})
	mux.HandleFunc("POST /seed", func(w http.ResponseWriter, r *http.Request) {
		var world World
		if !decode(w, r, &world) {
			return
		}
		if err := s.Seed(world); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
		ok(w)
	})
	return mux
}

// setEnv sets plain environment variables on a container, keeping the order
// of those it has and appending new ones in key order.
func setEnv(c *runpb.Container, env map[string]string) {
	done := map[string]bool{}
	for _, e := range c.Env {
		if v, ok := env[e.Name]; ok {
			e.Values = &runpb.EnvVar_Value{Value: v}
			done[e.Name] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !done[k] {
			c.Env = append(c.Env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: env[k]}})
		}
	}
}

// resolveService turns a short service name (unique across the fake) or a
// full resource name into a full name.
func (s *Server) resolveService(name string) (string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.services[name] != nil {
		return name, nil
	}
	var found []string
	for full, st := range s.f.services {
		if st.ref.id == name {
			found = append(found, full)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no service %q", name)
	case 1:
		return found[0], nil
	}
	slices.Sort(found)
	return "", fmt.Errorf("service name %q is ambiguous: %s", name, strings.Join(found, ", "))
}

type controlTarget struct {
	Revision string `json:"revision,omitempty"`
	Percent  int32  `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	Latest   bool   `json:"latest,omitempty"`
	URI      string `json:"uri,omitempty"`
}

type controlRevision struct {
	Name  string            `json:"name"`
	Image string            `json:"image"`
	Env   map[string]string `json:"env,omitempty"`
	Ready bool              `json:"ready"`
	// Digest is what Image resolved to when the revision was created ("" if
	// the registry did not know it); AppVersion is the APP_VERSION its app
	// reports (the container's env, else the image's).
	Digest     string `json:"digest,omitempty"`
	AppVersion string `json:"app_version,omitempty"`
}

type controlService struct {
	Name                  string            `json:"name"`
	Project               string            `json:"project"`
	Region                string            `json:"region"`
	Service               string            `json:"service"`
	URI                   string            `json:"uri"`
	Generation            int64             `json:"generation"`
	ObservedGeneration    int64             `json:"observed_generation"`
	Etag                  string            `json:"etag"`
	Reconciling           bool              `json:"reconciling"`
	Ready                 string            `json:"ready"`
	ReadyMessage          string            `json:"ready_message,omitempty"`
	LatestReadyRevision   string            `json:"latest_ready_revision"`
	LatestCreatedRevision string            `json:"latest_created_revision"`
	Traffic               []controlTarget   `json:"traffic"`
	TrafficStatuses       []controlTarget   `json:"traffic_statuses"`
	Annotations           map[string]string `json:"annotations,omitempty"`
	Labels                map[string]string `json:"labels,omitempty"`
	Revisions             []controlRevision `json:"revisions"`
}

func (s *Server) controlState() map[string]any {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []controlService{}
	for _, st := range f.sortedServices() {
		svc := st.svc
		cs := controlService{
			Name: st.ref.fullName(), Project: st.ref.project, Region: st.ref.region, Service: st.ref.id,
			URI: svc.GetUri(), Generation: svc.GetGeneration(), ObservedGeneration: svc.GetObservedGeneration(),
			Etag: svc.GetEtag(), Reconciling: svc.GetReconciling(),
			Ready:                 strings.TrimPrefix(svc.GetTerminalCondition().GetState().String(), "CONDITION_"),
			ReadyMessage:          svc.GetTerminalCondition().GetMessage(),
			LatestReadyRevision:   shortName(svc.GetLatestReadyRevision()),
			LatestCreatedRevision: shortName(svc.GetLatestCreatedRevision()),
			Traffic:               []controlTarget{},
			TrafficStatuses:       []controlTarget{},
			Annotations:           svc.GetAnnotations(),
			Labels:                svc.GetLabels(),
			Revisions:             []controlRevision{},
		}
		for _, t := range svc.GetTraffic() {
			cs.Traffic = append(cs.Traffic, controlTarget{Revision: t.GetRevision(), Percent: t.GetPercent(), Tag: t.GetTag(), Latest: t.GetType() == typeLatest})
		}
		for _, t := range svc.GetTrafficStatuses() {
			cs.TrafficStatuses = append(cs.TrafficStatuses, controlTarget{Revision: t.GetRevision(), Percent: t.GetPercent(), Tag: t.GetTag(), Latest: t.GetType() == typeLatest, URI: t.GetUri()})
		}
		for _, r := range st.sortedRevisions() {
			cr := controlRevision{Name: shortName(r.rev.GetName()), Env: containerEnv(r.rev.GetContainers()), Ready: r.settled && r.ready,
				AppVersion: r.env["APP_VERSION"]}
			if cs := r.rev.GetContainers(); len(cs) > 0 {
				cr.Image = cs[0].GetImage()
			}
			if i := servingContainer(r.rev.GetContainers()); i >= 0 {
				cr.Digest = r.images[i].img.Digest
			}
			cs.Revisions = append(cs.Revisions, cr)
		}
		out = append(out, cs)
	}
	return map[string]any{"services": out}
}

func parseMethodAndCode(method, code string) (codes.Code, error) {
	if !slices.Contains(methods, method) {
		return 0, unknownMethod(method)
	}
	return parseCode(code)
}

func unknownMethod(method string) error {
	return fmt.Errorf("unknown method %q; want one of %s", method, strings.Join(methods, ", "))
}

// parseCode reads a canonical gRPC code name such as "UNAVAILABLE".
func parseCode(name string) (codes.Code, error) {
	if name == "" {
		return 0, errors.New(`"code" is required, for example "UNAVAILABLE"`)
	}
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(`"` + strings.ToUpper(name) + `"`)); err != nil {
		return 0, fmt.Errorf("unknown code %q; want a canonical name such as UNAVAILABLE or ABORTED", name)
	}
	return c, nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		fail(w, http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err))
		return false
	}
	return true
}

func ok(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) }

func fail(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// rolloutJSON is r in the form of SeedRollout.
func rolloutJSON(r Rollout) SeedRollout {
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	return SeedRollout{
		CreateMS: ms(r.Create), DeployMS: ms(r.Deploy), UpdateMS: ms(r.Update), DeleteMS: ms(r.Delete),
		WaitMaxMS: ms(r.WaitMax), RetentionMS: ms(r.Retention), ReadyDespiteFailedRevision: &r.ReadyDespiteFailedRevision,
	}
}
