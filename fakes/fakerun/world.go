package fakerun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// World is what a Server is seeded with. Its JSON form is documented in
// fakes/README.md.
type World struct {
	// Images are added to the fake's registry before the services are
	// seeded: an image reference with a tag (repo:tag) → the image it
	// points to. A seeded revision whose image is listed runs that image.
	Images   map[string]Image `json:"images,omitempty"`
	Services []SeedService    `json:"services"`
	// Rollout, when set, changes how long operations take (see Rollout);
	// fields left out keep their value.
	Rollout *SeedRollout `json:"rollout,omitempty"`
}

// SeedService is one service of a World.
type SeedService struct {
	// Project and Region default to "local-project" and "us-central1".
	Project string `json:"project,omitempty"`
	Region  string `json:"region,omitempty"`
	// Name is the service's short name ("api").
	Name string `json:"name"`
	// Revisions, oldest first; at least one. The service's template is the
	// newest revision's container.
	Revisions []SeedRevision `json:"revisions"`
	// Traffic is the split; empty means 100% to LATEST.
	Traffic     []SeedTarget      `json:"traffic,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// SeedRevision is one revision of a SeedService. Name is kept verbatim and
// must start with "<service>-". Image defaults to
// us-docker.pkg.dev/<project>/app/<service>:<APP_VERSION or "latest">.
type SeedRevision struct {
	Name  string            `json:"name"`
	Image string            `json:"image,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
}

// SeedTarget is one traffic target: a revision (short name) or Latest.
type SeedTarget struct {
	Revision string `json:"revision,omitempty"`
	Percent  int32  `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	Latest   bool   `json:"latest,omitempty"`
}

const (
	defaultProject = "local-project"
	defaultRegion  = "us-central1"
)

// DefaultWorld is the world of `runrollback test --local` and
// `runrollback fake`: in project local-project, region us-central1,
//   - api: api-00001-abc (1.0.0), api-00002-def (1.1.0), 100% pinned to api-00002-def;
//   - web: web-00001-aaa (1.0.0), 100% LATEST;
//   - checkout: checkout-00002-bbb (2.0.0) at 90%, checkout-00003-ccc (2.1.0) at 10% with tag "canary".
//
// Each revision's image, us-docker.pkg.dev/local-project/app/SERVICE:VERSION,
// is in the registry as an image of that APP_VERSION, and the revision's env
// sets APP_VERSION too.
func DefaultWorld() World {
	images := map[string]Image{}
	rev := func(svc, name, version string) SeedRevision {
		image := fmt.Sprintf("us-docker.pkg.dev/%s/app/%s:%s", defaultProject, svc, version)
		images[image] = Image{AppVersion: version}
		return SeedRevision{
			Name:  name,
			Image: image,
			Env:   map[string]string{"APP_VERSION": version},
		}
	}
	return World{Images: images, Services: []SeedService{
		{
			Project: defaultProject, Region: defaultRegion, Name: "api",
			Revisions: []SeedRevision{rev("api", "api-00001-abc", "1.0.0"), rev("api", "api-00002-def", "1.1.0")},
			Traffic:   []SeedTarget{{Revision: "api-00002-def", Percent: 100}},
		},
		{
			Project: defaultProject, Region: defaultRegion, Name: "web",
			Revisions: []SeedRevision{rev("web", "web-00001-aaa", "1.0.0")},
			Traffic:   []SeedTarget{{Latest: true, Percent: 100}},
		},
		{
			Project: defaultProject, Region: defaultRegion, Name: "checkout",
			Revisions: []SeedRevision{rev("checkout", "checkout-00002-bbb", "2.0.0"), rev("checkout", "checkout-00003-ccc", "2.1.0")},
			Traffic: []SeedTarget{
				{Revision: "checkout-00002-bbb", Percent: 90},
				{Revision: "checkout-00003-ccc", Percent: 10, Tag: "canary"},
			},
		},
	}}
}

// MaxWorldBytes bounds a world file: LoadWorld reads no more than this, so
// that a path such as /dev/zero fails at once instead of filling memory.
const MaxWorldBytes = 8 << 20

// LoadWorld reads a World from a JSON file of at most MaxWorldBytes. Unknown
// fields are an error.
func LoadWorld(path string) (World, error) {
	// Non-blocking: a FIFO nobody writes to would hold the open forever; it
	// reads as empty instead. Reads from anything but a regular file get 10 s.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return World{}, fmt.Errorf("load world: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return World{}, fmt.Errorf("load world: %s is a directory", path)
	} else if err == nil && !st.Mode().IsRegular() {
		_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxWorldBytes+1))
	if err != nil {
		return World{}, fmt.Errorf("load world %s: %w", path, err)
	}
	if len(data) > MaxWorldBytes {
		return World{}, fmt.Errorf("load world %s: the file is larger than %d MiB; a world file is JSON (see fakes/README.md)", path, MaxWorldBytes>>20)
	}
	w, err := ParseWorld(data)
	if err != nil {
		return World{}, fmt.Errorf("load world %s: %w", path, err)
	}
	return w, nil
}

// ParseWorld decodes a World from JSON. Unknown fields are an error.
func ParseWorld(data []byte) (World, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w World
	if err := dec.Decode(&w); err != nil {
		return World{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return World{}, errors.New("unexpected data after the world's JSON object")
	}
	return w, nil
}

// Seed adds the services of w, each with its revisions settled and its split
// served (observed_generation == generation == 1). It adds nothing if any
// service is invalid or already exists.
func (s *Server) Seed(w World) error {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	rollout := f.rollout
	if w.Rollout != nil {
		r, err := w.Rollout.apply(rollout)
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		rollout = r
	}
	// The services resolve their images against the registry with the
	// world's images in it; on an error the registry is left as it was.
	before := f.registry
	f.registry = before.clone()
	if err := seedImages(f.registry, w.Images); err != nil {
		f.registry = before
		return fmt.Errorf("seed images: %w", err)
	}
	added := map[string]*service{}
	for i, ss := range w.Services {
		st, err := f.seedService(ss)
		if err == nil && (f.services[st.ref.fullName()] != nil || added[st.ref.fullName()] != nil) {
			err = fmt.Errorf("%s already exists", st.ref.fullName())
		}
		if err != nil {
			f.registry = before
			return fmt.Errorf("seed service %d (%q): %w", i, ss.Name, err)
		}
		added[st.ref.fullName()] = st
	}
	for name, st := range added {
		f.services[name] = st
	}
	f.rollout = rollout
	return nil
}

// seedService builds one service without storing it.
func (f *fake) seedService(ss SeedService) (*service, error) {
	ref := serviceRef{project: ss.Project, region: ss.Region, id: ss.Name}
	if ref.project == "" {
		ref.project = defaultProject
	}
	if ref.region == "" {
		ref.region = defaultRegion
	}
	if !serviceIDRE.MatchString(ref.id) {
		return nil, fmt.Errorf("invalid service name %q: use lowercase letters, digits and hyphens, start with a letter, at most 49 characters", ref.id)
	}
	if len(ss.Revisions) == 0 {
		return nil, errors.New("a service needs at least one revision")
	}
	seq := f.nextSeq()
	now := f.now()
	svc := &runpb.Service{
		Name:        ref.fullName(),
		Uid:         uuidFrom("service", ref.fullName(), fmt.Sprint(seq)),
		Generation:  1,
		Labels:      copyMap(ss.Labels),
		Annotations: copyMap(ss.Annotations),
		CreateTime:  timestamppb.New(now.Add(-time.Duration(len(ss.Revisions)) * time.Minute)),
		UpdateTime:  timestamppb.New(now),
	}
	if uri := f.urlFunc(ref.fullName(), ""); uri != "" {
		svc.Uri = uri
		svc.Urls = []string{uri}
	}
	if vs := checkMetadata(svc, false); len(vs) > 0 {
		return nil, errors.New(vs[0].GetDescription())
	}
	st := &service{ref: ref, seq: seq, svc: svc, revs: map[string]*revision{}}
	for _, sr := range ss.Revisions {
		if !revisionIDRE.MatchString(sr.Name) || len(sr.Name) <= len(ref.id)+1 || sr.Name[:len(ref.id)+1] != ref.id+"-" {
			return nil, fmt.Errorf("invalid revision name %q: it must start with %q and be a DNS label", sr.Name, ref.id+"-")
		}
		if st.revs[sr.Name] != nil {
			return nil, fmt.Errorf("revision %q is listed twice", sr.Name)
		}
		svc.Template = seedTemplate(ref, sr)
		r := f.addRevision(st, sr.Name, true)
		r.rev.CreateTime = timestamppb.New(now.Add(-time.Duration(len(ss.Revisions)-len(st.revs)) * time.Minute))
		r.rev.UpdateTime = r.rev.CreateTime
	}
	svc.Traffic = normalizeTraffic(seedTraffic(ss.Traffic))
	if vs := checkTraffic(ref.id, svc.Traffic, knownRevision(st, "")); len(vs) > 0 {
		return nil, errors.New(status.Convert(badRequest(vs)).Message())
	}
	f.newEtag(st)
	if fail := f.reconcile(st, rollout{gen: 1, traffic: cloneTraffic(svc.Traffic)}); fail != nil {
		return nil, errors.New(fail.Message())
	}
	return st, nil
}

// seedTemplate is the revision template of a seeded revision.
func seedTemplate(ref serviceRef, sr SeedRevision) *runpb.RevisionTemplate {
	image := sr.Image
	if image == "" {
		version := sr.Env["APP_VERSION"]
		if version == "" {
			version = "latest"
		}
		image = fmt.Sprintf("us-docker.pkg.dev/%s/app/%s:%s", ref.project, ref.id, version)
	}
	c := &runpb.Container{Image: image}
	keys := make([]string, 0, len(sr.Env))
	for k := range sr.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c.Env = append(c.Env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: sr.Env[k]}})
	}
	return &runpb.RevisionTemplate{Containers: []*runpb.Container{c}}
}

func seedTraffic(ts []SeedTarget) []*runpb.TrafficTarget {
	var out []*runpb.TrafficTarget
	for _, t := range ts {
		out = append(out, t.proto())
	}
	return out
}

func (t SeedTarget) proto() *runpb.TrafficTarget {
	p := &runpb.TrafficTarget{Type: typeRevision, Revision: t.Revision, Percent: t.Percent, Tag: t.Tag}
	if t.Latest {
		p.Type = typeLatest
	}
	return p
}
