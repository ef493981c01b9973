package rollback

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRevisionVersion(t *testing.T) {
	for _, tt := range []struct {
		env   map[string]string
		image string
		want  string
		from  string
	}{
		{map[string]string{"APP_VERSION": "1.2.0", "VERSION": "9"}, "app:3.0.0", "1.2.0", "APP_VERSION=1.2.0 in the environment"},
		{map[string]string{"VERSION": "2024.06"}, "app:3.0.0", "2024.06", "VERSION=2024.06"},
		{nil, "us-docker.pkg.dev/p/app/api:1.2.3", "1.2.3", `the image tag "1.2.3"`},
		{nil, "app:v1.2.3-rc.1@sha256:0123abcd", "v1.2.3-rc.1", `the image tag "v1.2.3-rc.1"`},
		{nil, "localhost:5000/app:1.2", "1.2", `the image tag "1.2"`},
		{nil, "app:latest", "", `the image tag "latest", which is not a version`},
		{nil, "app:3f2a9c1", "", `the image tag "3f2a9c1", which is not a version`},
		{nil, "localhost:5000/app", "", "no image tag"},
		{nil, "app@sha256:0123abcd", "", "no image tag"},
		{map[string]string{"APP_VERSION": " "}, "app:7", "", `the image tag "7", which is not a version`},
	} {
		got, from := RevisionVersion(Revision{Name: "api-00003-new", Env: tt.env, Image: tt.image})
		if got != tt.want || !strings.Contains(from, tt.from) {
			t.Errorf("RevisionVersion(env %v, image %s) = %q (%s), want %q (%s)", tt.env, tt.image, got, from, tt.want, tt.from)
		}
	}
}

func TestSameVersion(t *testing.T) {
	for _, tt := range []struct {
		reported, expected string
		want               bool
	}{
		{"1.2.0", "1.2.0", true},
		{"1.2.0", "v1.2.0", true},
		{"v1.2.0", "1.2.0", true},
		{"1.2.0-broken", "1.2.0", false},
		{"1.2", "1.2.0", false},
		{"", "1.2.0", false},
	} {
		if got := SameVersion(tt.reported, tt.expected); got != tt.want {
			t.Errorf("SameVersion(%q, %q) = %v, want %v", tt.reported, tt.expected, got, tt.want)
		}
	}
}

// versionProbe answers healthy everywhere, reporting version.
type versionProbe struct {
	m       *memRun
	version string
}

func (p versionProbe) WaitHealthy(_ context.Context, url string, exp Expect) ProbeResult {
	rev := ""
	if r := p.m.servingRevision(url); r != nil {
		rev = r.Name
	}
	ok := exp.Version == "" || SameVersion(p.version, exp.Version)
	return ProbeResult{OK: ok, Version: p.version, Revision: rev, Attempts: 10, Detail: "answered " + p.version}
}

func (p versionProbe) WaitFailure(context.Context, string, Expect) ProbeResult { return ProbeResult{} }

// TestGuardChecksTheVersionTheRevisionNames: with no --expect-version, the
// guard judges the deploy's answers against the version its revision's
// configuration names, and says so when it cannot.
func TestGuardChecksTheVersionTheRevisionNames(t *testing.T) {
	for _, tt := range []struct {
		name     string
		env      map[string]string
		image    string
		reported string
		expect   string // --expect-version
		result   string
		detail   string // in the probe step's detail
		warning  string
	}{
		{"APP_VERSION agrees", map[string]string{"APP_VERSION": "1.2.0"}, "", "1.2.0", "", ResultPass, "version 1.2.0 as APP_VERSION=1.2.0 in the environment of api-00003-new says", ""},
		{"APP_VERSION disagrees: rolled back", map[string]string{"APP_VERSION": "1.2.0"}, "", "1.1.9", "", ResultFail, "reports version 1.1.9, not 1.2.0", ""},
		{"the image tag, with a v", map[string]string{"APP_VERSION": ""}, "app:v2.0.0", "2.0.0", "", ResultPass, `as the image tag "v2.0.0" of api-00003-new says`, ""},
		{"nothing names a version", map[string]string{"APP_VERSION": ""}, "app:latest", "7", "", ResultPass, "healthy 7", `version not checked: api-00003-new has no APP_VERSION or VERSION in its environment and the image tag "latest", which is not a version; pass --expect-version`},
		{"the app reports none", map[string]string{"APP_VERSION": "1.2.0"}, "", "", "", ResultPass, "healthy", "version not checked: 1.2.0 is expected (from APP_VERSION=1.2.0 in the environment of api-00003-new), but the health endpoint reports no version"},
		{"--expect-version wins", map[string]string{"APP_VERSION": "1.2.0"}, "", "5.0.0", "5.0.0", ResultPass, "healthy 5.0.0", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := apiWorld()
			snap := TakeSnapshot(m.Service(), time.Now())
			s := m.Service()
			if _, err := m.DeployRevision(t.Context(), s.Ref, s.Etag, Deploy{Revision: "api-00003-new", Env: tt.env, Image: tt.image,
				Traffic: Split{{Revision: "api-00003-new", Percent: 100}}}); err != nil {
				t.Fatal(err)
			}
			g := &Guard{Cloud: m, Probe: versionProbe{m: m, version: tt.reported}, Journal: testJournal(t)}
			rep := g.Run(t.Context(), GuardOptions{Service: snap.Service, RestoreFrom: &snap, Owner: "me", ExpectVersion: tt.expect})
			if rep.Result != tt.result {
				t.Fatalf("result %s (%s), want %s; steps %+v", rep.Result, rep.Error, tt.result, rep.Steps)
			}
			var probe string
			for _, st := range rep.Steps {
				if st.Name == StepProbe {
					probe = st.Detail
				}
			}
			if !strings.Contains(probe+rep.Error, tt.detail) {
				t.Errorf("probe step %q, error %q; want %q", probe, rep.Error, tt.detail)
			}
			warnings := strings.Join(rep.Warnings, "\n")
			if tt.warning == "" && strings.Contains(warnings, "version not checked") || !strings.Contains(warnings, tt.warning) {
				t.Errorf("warnings %q, want %q", warnings, tt.warning)
			}
			if tt.result == ResultFail && !m.Service().Traffic.Equal(snap.Traffic) {
				t.Errorf("traffic %s after a wrong version, want the snapshot's %s", m.Service().Traffic, snap.Traffic)
			}
		})
	}
}
