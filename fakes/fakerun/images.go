package fakerun

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
)

// The fake's image registry.
//
// Cloud Run resolves an image reference to a digest when it creates a
// revision, and the revision keeps running that digest: "If you deploy from a
// container image tag, it will be resolved to a digest and the revision will
// always serve this particular digest"
// (https://cloud.google.com/artifact-registry/docs/integrate-cloud-run). So a
// template written back unchanged builds a revision that runs whatever its tag
// points to by then. The registry maps tags to images; a revision takes what
// its tag points to at the moment it is created (PushImage moves a tag), and
// its app behaves as that image does, the container's env overriding the
// image's. An image the registry does not know keeps its name and the
// container's env as all there is to it.

// Image is a container image in the fake's registry.
type Image struct {
	// Digest is "sha256:" and 64 lowercase hex digits. PushImage derives one
	// from the repository, AppVersion and Env when it is empty.
	Digest string `json:"digest,omitempty"`
	// AppVersion is the APP_VERSION the image's app reports when the
	// container's env does not set one.
	AppVersion string `json:"app_version,omitempty"`
	// Env is the environment baked into the image (a Dockerfile's ENV), such
	// as RUNROLLBACK_BREAK; the container's env overrides it.
	Env map[string]string `json:"env,omitempty"`
}

// registry is the fake's image registry. f.mu guards it.
type registry struct {
	tags   map[string]string // "repo:tag" → digest
	images map[string]Image  // "repo@sha256:…" → image
	// pushes are PushImageAfterWrites calls waiting for their writes.
	pushes []pendingPush
}

type pendingPush struct {
	writes int // accepted writes still to come before the push
	ref    string
	img    Image
}

func newRegistry() *registry {
	return &registry{tags: map[string]string{}, images: map[string]Image{}}
}

// clone is a copy of g that shares nothing it could change.
func (g *registry) clone() *registry {
	return &registry{tags: maps.Clone(g.tags), images: maps.Clone(g.images), pushes: slices.Clone(g.pushes)}
}

var (
	digestRE   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	imageTagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// imageRef is a parsed image reference: repo with a tag, or with a digest.
type imageRef struct {
	repo, tag, digest string
}

// parseImageRef reads repo[:tag][@digest]; a reference with neither a tag nor
// a digest means the tag "latest", as docker pull does. A digest wins over a
// tag given with it.
func parseImageRef(ref string) (imageRef, error) {
	r := imageRef{}
	rest := ref
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest, r.digest = rest[:i], rest[i+1:]
		if !digestRE.MatchString(r.digest) {
			return r, fmt.Errorf("image %q: digest %q is not sha256: and 64 lowercase hex digits", ref, r.digest)
		}
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		rest, r.tag = rest[:i], rest[i+1:]
		if !imageTagRE.MatchString(r.tag) {
			return r, fmt.Errorf("image %q: tag %q is invalid", ref, r.tag)
		}
	}
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	if rest == "" || strings.ContainsAny(rest, " \t\n@") {
		return r, fmt.Errorf("image %q: no repository", ref)
	}
	r.repo = rest
	return r, nil
}

func (r imageRef) tagKey() string    { return r.repo + ":" + r.tag }
func (r imageRef) digestKey() string { return r.repo + "@" + r.digest }

// resolve returns the image a reference points to now.
func (g *registry) resolve(ref string) (Image, bool) {
	r, err := parseImageRef(ref)
	if err != nil {
		return Image{}, false
	}
	if r.digest == "" {
		d, ok := g.tags[r.tagKey()]
		if !ok {
			return Image{}, false
		}
		r.digest = d
	}
	img, ok := g.images[r.digestKey()]
	return cloneImage(img), ok
}

// push points the tag of ref at img, storing img, and returns its digest.
func (g *registry) push(ref string, img Image) (string, error) {
	r, err := parseImageRef(ref)
	if err != nil {
		return "", err
	}
	if r.digest != "" {
		return "", fmt.Errorf("image %q: push to a tag (repo:tag), not a digest", ref)
	}
	img = cloneImage(img)
	if img.Digest == "" {
		img.Digest = deriveDigest(r.repo, img)
	} else if !digestRE.MatchString(img.Digest) {
		return "", fmt.Errorf("image %q: digest %q is not sha256: and 64 lowercase hex digits", ref, img.Digest)
	}
	r.digest = img.Digest
	if old, ok := g.images[r.digestKey()]; ok {
		if img.AppVersion == "" && len(img.Env) == 0 {
			img = old // tag an image pushed before, by its digest
		} else if old.AppVersion != img.AppVersion || !maps.Equal(old.Env, img.Env) {
			return "", fmt.Errorf("image %q: digest %s already names another image (app_version %q)", ref, img.Digest, old.AppVersion)
		}
	}
	g.images[r.digestKey()] = img
	g.tags[r.tagKey()] = img.Digest
	return img.Digest, nil
}

// deriveDigest is a stable digest for an image's content.
func deriveDigest(repo string, img Image) string {
	parts := []string{"image", repo, img.AppVersion}
	for _, k := range slices.Sorted(maps.Keys(img.Env)) {
		parts = append(parts, k, img.Env[k])
	}
	d := digest(parts...)
	return "sha256:" + hex.EncodeToString(d[:])
}

// wrote counts one accepted write against the pushes waiting for writes, and
// makes those that are due.
func (g *registry) wrote() {
	var keep []pendingPush
	for _, p := range g.pushes {
		if p.writes--; p.writes > 0 {
			keep = append(keep, p)
			continue
		}
		_, _ = g.push(p.ref, p.img) // checked when it was queued
	}
	g.pushes = keep
}

func cloneImage(img Image) Image {
	img.Env = copyMap(img.Env)
	return img
}

// resolvedImage is what one container of a revision resolved to.
type resolvedImage struct {
	image string // the reference as the template gave it
	img   Image
	found bool // false when the registry does not know the image
}

// resolveContainers resolves the image of each container of tpl.
func (f *fake) resolveContainers(tpl *runpb.RevisionTemplate) []resolvedImage {
	out := make([]resolvedImage, len(tpl.GetContainers()))
	for i, c := range tpl.GetContainers() {
		img, ok := f.registry.resolve(c.GetImage())
		out[i] = resolvedImage{image: c.GetImage(), img: img, found: ok}
	}
	return out
}

// runtimeEnv is the environment a container's app sees: the image's env and
// APP_VERSION, overridden by the container's plain env values.
func runtimeEnv(c *runpb.Container, ri resolvedImage) map[string]string {
	env := map[string]string{}
	if ri.found {
		maps.Copy(env, ri.img.Env)
		if ri.img.AppVersion != "" {
			env["APP_VERSION"] = ri.img.AppVersion
		}
	}
	for _, e := range c.GetEnv() {
		if v, ok := e.GetValues().(*runpb.EnvVar_Value); ok {
			env[e.GetName()] = v.Value
		}
	}
	return env
}

// servingContainer is the index of the container that serves requests: the
// first one that declares a port, else the first one; -1 if there is none.
func servingContainer(cs []*runpb.Container) int {
	if len(cs) == 0 {
		return -1
	}
	for i, c := range cs {
		if len(c.GetPorts()) > 0 {
			return i
		}
	}
	return 0
}

// breaks reports whether a revision with these containers fails to start: a
// container whose app sees RUNROLLBACK_BREAK=startup (from its env or its
// image's), or an image whose name contains "crash-on-start".
func breaks(cs []*runpb.Container, resolved []resolvedImage) bool {
	for i, c := range cs {
		if strings.Contains(c.GetImage(), "crash-on-start") {
			return true
		}
		if runtimeEnv(c, resolved[i])["RUNROLLBACK_BREAK"] == "startup" {
			return true
		}
	}
	return false
}

// PushImage points the tag of ref (repo:tag; a reference without a tag means
// :latest) at img, as pushing an image does: a tag that pointed at another
// image moves, and revisions created from then on run img. Revisions created
// before keep the image they resolved to. img.Digest may name an image pushed
// before (its other fields empty) to move the tag back to it. It returns the
// image's digest.
func (s *Server) PushImage(ref string, img Image) (string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.registry.push(ref, img)
}

// PushImageAfterWrites is PushImage once n more writes have been accepted
// and applied (a revision they create still resolves the tag as it was): "CI
// pushes the tag during the drill". n <= 0 pushes now. The push is checked
// now; the digest it will have is returned.
func (s *Server) PushImageAfterWrites(n int, ref string, img Image) (string, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if n <= 0 {
		return s.f.registry.push(ref, img)
	}
	d, err := s.f.registry.clone().push(ref, img)
	if err != nil {
		return "", err
	}
	img.Digest = d
	s.f.registry.pushes = append(s.f.registry.pushes, pendingPush{writes: n, ref: ref, img: cloneImage(img)})
	return d, nil
}

// Images returns what every tag of the registry points to now: repo:tag →
// image.
func (s *Server) Images() map[string]Image {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	out := make(map[string]Image, len(s.f.registry.tags))
	for tag := range s.f.registry.tags {
		out[tag], _ = s.f.registry.resolve(tag)
	}
	return out
}

// ResolveImage returns the image ref (repo:tag or repo@digest) points to now.
func (s *Server) ResolveImage(ref string) (Image, bool) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.registry.resolve(ref)
}

// RevisionImage returns the image the serving container of a revision (by
// full resource name) resolved to when the revision was created; false when
// there is no such revision or its image was not in the registry.
func (s *Server) RevisionImage(revisionFullName string) (Image, bool) {
	ref, rev, ok := parseRevision(revisionFullName)
	if !ok {
		return Image{}, false
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	st := s.f.services[ref.fullName()]
	if st == nil || st.revs[rev] == nil {
		return Image{}, false
	}
	r := st.revs[rev]
	i := servingContainer(r.rev.GetContainers())
	if i < 0 || !r.images[i].found {
		return Image{}, false
	}
	return cloneImage(r.images[i].img), true
}

// seedImages checks and adds the images of a world: tag → image.
func seedImages(g *registry, images map[string]Image) error {
	var errs []error
	for _, ref := range slices.Sorted(maps.Keys(images)) {
		if _, err := g.push(ref, images[ref]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
