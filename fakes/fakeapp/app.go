package fakeapp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

// Environment variables a revision's container reads.
const (
	EnvVersion = "APP_VERSION"       // version the app reports
	EnvBreak   = "RUNROLLBACK_BREAK" // drill switch: health|version|slow[:D]|flaky[:P]|startup
)

// HealthPath is the app's health endpoint; any path ending in it (with or
// without the trailing slash) is treated as the health endpoint.
const HealthPath = "/api/v1/health/"

// defaultVersion is reported when APP_VERSION is unset.
const defaultVersion = "0.0.0"

// Break modes.
const (
	modeHealthy = ""
	modeHealth  = "health"
	modeVersion = "version"
	modeSlow    = "slow"
	modeFlaky   = "flaky"
	modeStartup = "startup"
)

// behaviour is what a revision's container does, from its env.
type behaviour struct {
	version      string
	mode         string
	delay        time.Duration // slow
	flakyPercent int           // flaky
}

// parseBehaviour derives a revision's behaviour from its env. Unknown break
// modes are ignored (a real app would not know them either).
func parseBehaviour(env map[string]string, defaultDelay time.Duration) behaviour {
	b := behaviour{version: env[EnvVersion]}
	if b.version == "" {
		b.version = defaultVersion
	}
	raw := strings.TrimSpace(env[EnvBreak])
	mode, arg, hasArg := strings.Cut(raw, ":")
	mode = strings.ToLower(strings.TrimSpace(mode))
	arg = strings.TrimSpace(arg)
	switch mode {
	case modeHealth, modeVersion, modeStartup:
		b.mode = mode
	case modeSlow:
		b.mode = mode
		b.delay = defaultDelay
		if hasArg {
			if d, err := time.ParseDuration(arg); err == nil && d >= 0 {
				b.delay = d
			} else if s, err := strconv.ParseFloat(arg, 64); err == nil && s >= 0 {
				b.delay = time.Duration(s * float64(time.Second))
			}
		}
	case modeFlaky:
		b.mode = mode
		b.flakyPercent = 50
		if hasArg {
			if n, err := strconv.Atoi(strings.TrimSuffix(arg, "%")); err == nil {
				b.flakyPercent = min(max(n, 0), 100)
			}
		}
	default:
		b.mode = modeHealthy
	}
	return b
}

// healthBody is the JSON the health endpoint answers.
type healthBody struct {
	Status   string `json:"status"`
	Version  string `json:"version"`
	Revision string `json:"revision"`
}

// shortName returns the last element of a revision name, so both
// "api-00002-def" and "projects/…/revisions/api-00002-def" give "api-00002-def".
func shortName(revision string) string {
	if i := strings.LastIndexByte(revision, '/'); i >= 0 {
		return revision[i+1:]
	}
	return revision
}

func isHealthPath(path string) bool {
	return strings.HasSuffix(path, HealthPath) || strings.HasSuffix(path, strings.TrimSuffix(HealthPath, "/"))
}

// handler serves one (service, tag) URL.
func (p *Plane) handler(service, tag string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := p.service(service)
		if want, ok := p.tokens[service]; ok && r.Header.Get("Authorization") != "Bearer "+want {
			st.count("", http.StatusUnauthorized)
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
			frontEnd(w, http.StatusUnauthorized)
			return
		}
		routes, ok := p.router.Routes(service, tag)
		if !ok {
			st.count("", http.StatusNotFound)
			frontEnd(w, http.StatusNotFound)
			return
		}
		var route fakerun.Route
		if tag != "" && len(routes) > 0 {
			route, ok = routes[0], true // a tag URL always reaches its revision
		} else {
			route, ok = st.pick(routes)
		}
		if !ok {
			st.count("", http.StatusServiceUnavailable)
			frontEnd(w, http.StatusServiceUnavailable)
			return
		}
		p.serveRevision(w, r, st, route)
	})
}

// frontEnd writes an answer of the fake Google front end (no revision).
func frontEnd(w http.ResponseWriter, status int) {
	http.Error(w, http.StatusText(status), status)
}

// serveRevision answers as the revision's container would.
func (p *Plane) serveRevision(w http.ResponseWriter, r *http.Request, st *serviceState, route fakerun.Route) {
	rev := shortName(route.Revision)
	b := parseBehaviour(route.Env, p.slowDelay)
	w.Header().Set("X-Served-By", rev)

	if !route.Ready || b.mode == modeStartup {
		st.count(rev, http.StatusServiceUnavailable)
		frontEnd(w, http.StatusServiceUnavailable)
		return
	}

	if wait := st.coldStartWait(rev, p.coldStart, time.Now()); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.Context().Done(): // client gone, or the plane is closing
			t.Stop()
			st.count(rev, 0)
			panic(http.ErrAbortHandler) // the instance never answered
		}
	}

	status, healthy, version := http.StatusOK, true, b.version
	switch b.mode {
	case modeHealth:
		status, healthy = http.StatusServiceUnavailable, false
	case modeVersion:
		version += "-broken"
	case modeSlow:
		if b.delay > 0 {
			t := time.NewTimer(b.delay)
			if p.slowHook != nil {
				p.slowHook()
			}
			select {
			case <-t.C:
			case <-r.Context().Done(): // client gone, or the plane is closing
				t.Stop()
				st.count(rev, 0)
				// Drop the connection rather than let net/http send an
				// empty 200: the app never answered.
				panic(http.ErrAbortHandler)
			}
		}
	case modeFlaky:
		if st.failFlaky(b.flakyPercent) {
			status, healthy = http.StatusInternalServerError, false
		}
	}
	st.count(rev, status)

	if isHealthPath(r.URL.Path) {
		hb := healthBody{Status: "healthy", Version: version, Revision: rev}
		if !healthy {
			hb.Status = "unhealthy"
		}
		body, _ := json.Marshal(hb)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	if healthy {
		_, _ = w.Write([]byte("hello from " + rev + "\n"))
		return
	}
	_, _ = w.Write([]byte(http.StatusText(status) + " from " + rev + "\n"))
}
