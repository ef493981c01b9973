package rollback

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The version a guard expects when it is given no --expect-version: what the
// judged revision's own configuration says it is. Without this, a guard
// would move last-good onto a revision reporting any version at all.

// versionEnv are the environment variables taken to carry the revision's
// version, in order: APP_VERSION is the one the drill's convention (and the
// fake) uses.
var versionEnv = []string{"APP_VERSION", "VERSION"}

// versionTag is an image tag that reads as a release version: 1.2, 1.2.3,
// v1.2.3, 1.2.3-rc.1, 1.2.3+build. "latest", dates and commit hashes are not.
var versionTag = regexp.MustCompile(`^[vV]?[0-9]+(\.[0-9]+){1,3}([-+][0-9A-Za-z.+-]+)?$`)

// RevisionVersion is the version rev's configuration names, and where from:
// an APP_VERSION or VERSION environment variable, else an image tag that
// reads as a version. It returns "" and why not when there is none.
func RevisionVersion(rev Revision) (version, from string) {
	for _, k := range versionEnv {
		if v := strings.TrimSpace(rev.Env[k]); v != "" {
			return v, fmt.Sprintf("%s=%s in the environment of %s", k, v, rev.Name)
		}
	}
	tag := imageTag(rev.Image)
	if versionTag.MatchString(tag) {
		return tag, fmt.Sprintf("the image tag %q of %s", tag, rev.Name)
	}
	why := "no image tag"
	if tag != "" {
		why = fmt.Sprintf("the image tag %q, which is not a version", tag)
	}
	return "", fmt.Sprintf("%s has no %s in its environment and %s", rev.Name, strings.Join(versionEnv, " or "), why)
}

// imageTag is the tag of an image reference (repo:tag, repo:tag@sha256:…),
// or "" (repo, repo@sha256:…).
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	slash := strings.LastIndexByte(image, '/')
	if i := strings.LastIndexByte(image, ':'); i > slash {
		return image[i+1:]
	}
	return ""
}

// SameVersion reports whether a reported version is the expected one: equal,
// or equal but for a leading "v" on one side (tag v1.2.0, version 1.2.0).
func SameVersion(reported, expected string) bool {
	trim := func(s string) string { return strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V") }
	return reported == expected || trim(reported) == trim(expected)
}

// revision returns the revision named name, from the service's template when
// the template built it, else from a list of the service's revisions.
func revisionOf(ctx context.Context, cloud CloudRun, svc *Service, name string) (Revision, error) {
	if name != "" && name == svc.LatestCreatedRevision {
		return Revision{Name: name, Image: svc.Template.Image, Env: svc.Template.Env}, nil
	}
	revs, err := cloud.ListRevisions(ctx, svc.Ref)
	if err != nil {
		return Revision{}, err
	}
	if i := slices.IndexFunc(revs, func(r Revision) bool { return r.Name == name }); i >= 0 {
		return revs[i], nil
	}
	return Revision{}, fmt.Errorf("revision %s is not among the revisions of %q", name, svc.Ref.Name)
}

// checkVersion judges a healthy answer's version when no --expect-version
// was given: against what the judged revision's configuration names. It
// returns a note for the step's detail, and an error when the version is
// wrong. When the version cannot be known (the configuration names none,
// or the app reports none) it says so in a warning and accepts the answer.
func (gr *guardRun) checkVersion(ctx context.Context, step, revision string, res ProbeResult) (string, error) {
	if gr.o.ExpectVersion != "" {
		return "", nil // the probe checked it
	}
	rev, err := revisionOf(ctx, gr.g.Cloud, gr.svc, revision)
	if err != nil {
		gr.warn(step, fmt.Sprintf("version not checked: %v; pass --expect-version", err))
		return "", nil
	}
	want, from := RevisionVersion(rev)
	switch {
	case want == "":
		gr.warn(step, fmt.Sprintf("version not checked: %s; pass --expect-version", from))
		return "", nil
	case res.Version == "":
		gr.warn(step, fmt.Sprintf("version not checked: %s is expected (from %s), but the health endpoint reports no version", want, from))
		return "", nil
	case !SameVersion(res.Version, want):
		return "", fmt.Errorf("%s answers healthy but reports version %s, not %s (from %s)", revision, res.Version, want, from)
	}
	return fmt.Sprintf("; version %s as %s says", res.Version, from), nil
}
