package fakerun

import (
	"net/url"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
)

// Route is where a share of a URL's requests goes, for a serving plane.
type Route struct {
	// Revision is the short revision name.
	Revision string
	// Percent is the share of requests, 1–100.
	Percent int32
	// Env is the environment the revision's app sees: the env of the image
	// its serving container resolved to when the revision was created (with
	// the image's APP_VERSION), overridden by the container's plain env
	// values. For an image the registry does not know, the container's env.
	Env map[string]string
	// Image is the serving container's image as the template gave it, and
	// Digest what it resolved to ("" when the registry does not know it).
	Image, Digest string
	// Ready reports whether the revision is Ready.
	Ready bool
}

// Routes returns how requests to a service's URL (tag == "") or to one of its
// tag URLs are routed now. For the service it is the actual split
// (traffic_statuses, LATEST resolved), without 0% entries; for a tag it is
// the one revision the tag points at, with Percent 100. ok is false if the
// service or the tag does not exist.
func (s *Server) Routes(serviceFullName, tag string) (routes []Route, ok bool) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.services[serviceFullName]
	if st == nil {
		return nil, false
	}
	route := func(rev string, percent int32) Route {
		r := Route{Revision: rev, Percent: percent}
		if sr := st.revs[rev]; sr != nil {
			r.Env = copyMap(sr.env)
			r.Ready = sr.settled && sr.ready
			if i := servingContainer(sr.rev.GetContainers()); i >= 0 {
				r.Image, r.Digest = sr.images[i].image, sr.images[i].img.Digest
			}
		}
		return r
	}
	for _, ts := range st.svc.GetTrafficStatuses() {
		switch {
		case tag == "" && ts.GetPercent() > 0:
			routes = append(routes, route(ts.GetRevision(), ts.GetPercent()))
		case tag != "" && ts.GetTag() == tag:
			return []Route{route(ts.GetRevision(), 100)}, true
		}
	}
	if tag != "" {
		return nil, false
	}
	return routes, true
}

// containerEnv is the plain-value environment of the serving container: the
// first one that declares a port, else the first one.
func containerEnv(cs []*runpb.Container) map[string]string {
	if len(cs) == 0 {
		return nil
	}
	c := cs[0]
	for _, x := range cs {
		if len(x.GetPorts()) > 0 {
			c = x
			break
		}
	}
	env := map[string]string{}
	for _, e := range c.GetEnv() {
		if v, ok := e.GetValues().(*runpb.EnvVar_Value); ok {
			env[e.GetName()] = v.Value
		}
	}
	return env
}

// FindURL finds the service, and the tag ("" for the service's own URL), that
// a URL belongs to. Only the scheme and host (with port) of rawURL matter.
func (s *Server) FindURL(rawURL string) (serviceFullName, tag string, ok bool) {
	want, ok := urlKey(rawURL)
	if !ok {
		return "", "", false
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, st := range f.sortedServices() {
		for _, u := range append([]string{st.svc.GetUri()}, st.svc.GetUrls()...) {
			if k, ok := urlKey(u); ok && k == want {
				return st.ref.fullName(), "", true
			}
		}
		for _, ts := range st.svc.GetTrafficStatuses() {
			if k, ok := urlKey(ts.GetUri()); ok && ts.GetTag() != "" && k == want {
				return st.ref.fullName(), ts.GetTag(), true
			}
		}
	}
	return "", "", false
}

func urlKey(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}
