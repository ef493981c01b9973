package fakerun

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// Labels and annotations, as the v2 protos describe them.
//
// Service.annotations and RevisionTemplate.annotations: "Cloud Run API v2 does
// not support annotations with `run.googleapis.com`, `cloud.googleapis.com`,
// `serving.knative.dev`, or `autoscaling.knative.dev` namespaces, and they
// will be rejected in new resources [RevisionTemplate: "and they will be
// rejected"]. [...] This field follows Kubernetes annotations' namespacing,
// limits, and rules." (google/cloud/run/v2/service.proto,
// revision_template.proto.)
//
// Service.labels and RevisionTemplate.labels: the same four namespaces "will be
// rejected", and labels follow
// https://cloud.google.com/resource-manager/docs/creating-managing-labels.

// reservedDomains are the annotation and label namespaces the v2 API rejects.
// client.knative.dev, which gcloud writes (client.knative.dev/user-image), is
// not one of them.
var reservedDomains = []string{
	"run.googleapis.com",
	"cloud.googleapis.com",
	"serving.knative.dev",
	"autoscaling.knative.dev",
}

// Kubernetes' limits (k8s.io/apimachinery: validation.IsQualifiedName and
// apivalidation.ValidateAnnotations).
const (
	maxAnnotationNameLen   = 63
	maxAnnotationPrefixLen = 253
	// maxAnnotationsBytes is TotalAnnotationSizeLimitB: the keys and values of
	// all of an object's annotations together.
	maxAnnotationsBytes = 256 << 10
)

var (
	// qualifiedNameRE is the name part of a Kubernetes qualified name.
	qualifiedNameRE = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	// dns1123SubdomainRE is the optional prefix of a qualified name.
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// Google Cloud label limits (resource-manager/docs/creating-managing-labels).
const (
	maxLabels      = 64
	maxLabelKeyLen = 63
	maxLabelValLen = 63
)

// reservedDomain returns the reserved namespace a key's prefix is (or is a
// subdomain of), or "".
func reservedDomain(key string) string {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return ""
	}
	prefix = strings.ToLower(prefix)
	for _, d := range reservedDomains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return d
		}
	}
	return ""
}

// annotationKeyProblem says what is wrong with an annotation key, or "". As
// Kubernetes does, the key is lowercased before its prefix is checked.
func annotationKeyProblem(key string) string {
	name := key
	if prefix, rest, ok := strings.Cut(key, "/"); ok {
		name = rest
		switch p := strings.ToLower(prefix); {
		case p == "":
			return "prefix part must be non-empty"
		case len(p) > maxAnnotationPrefixLen:
			return fmt.Sprintf("prefix part must be no more than %d characters", maxAnnotationPrefixLen)
		case !dns1123SubdomainRE.MatchString(p):
			return "prefix part must be a lowercase RFC 1123 subdomain: lowercase alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character"
		}
		if strings.Contains(rest, "/") {
			return "a qualified name must consist of an optional DNS subdomain prefix and '/', then a name"
		}
	}
	switch {
	case name == "":
		return "name part must be non-empty"
	case len(name) > maxAnnotationNameLen:
		return fmt.Sprintf("name part must be no more than %d characters", maxAnnotationNameLen)
	case !qualifiedNameRE.MatchString(name):
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
	}
	return ""
}

// checkAnnotations validates annotations under field ("service.annotations",
// "service.template.annotations"): key format, total size, and reserved
// namespaces.
func checkAnnotations(field string, m map[string]string) []*errdetails.BadRequest_FieldViolation {
	var vs []*errdetails.BadRequest_FieldViolation
	total := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		total += len(k) + len(m[k])
		if p := annotationKeyProblem(k); p != "" {
			vs = append(vs, violation(field, "Invalid annotation key %q: %s.", k, p))
			continue
		}
		if d := reservedDomain(k); d != "" {
			vs = append(vs, violation(field, "Annotation %q uses the reserved namespace %q: Cloud Run API v2 does not support annotations in the run.googleapis.com, cloud.googleapis.com, serving.knative.dev or autoscaling.knative.dev namespaces.", k, d))
		}
	}
	if total > maxAnnotationsBytes {
		vs = append(vs, violation(field, "Too long: annotations (keys and values together) must have at most %d bytes; got %d.", maxAnnotationsBytes, total))
	}
	return vs
}

// labelProblem says what is wrong with a label, or "".
func labelProblem(k, v string) string {
	if d := reservedDomain(k); d != "" {
		return fmt.Sprintf("it uses the reserved namespace %q: Cloud Run API v2 does not support labels in the run.googleapis.com, cloud.googleapis.com, serving.knative.dev or autoscaling.knative.dev namespaces", d)
	}
	valid := func(s string) bool {
		if !utf8.ValidString(s) {
			return false
		}
		for _, r := range s {
			if !(r == '-' || r == '_' || unicode.IsDigit(r) || unicode.IsLower(r) || (r > unicode.MaxASCII && unicode.IsLetter(r) && !unicode.IsUpper(r))) {
				return false
			}
		}
		return true
	}
	first, _ := utf8.DecodeRuneInString(k)
	switch {
	case k == "":
		return "keys must be at least 1 character long"
	case utf8.RuneCountInString(k) > maxLabelKeyLen:
		return fmt.Sprintf("keys must be at most %d characters long", maxLabelKeyLen)
	case !unicode.IsLower(first) && !(first > unicode.MaxASCII && unicode.IsLetter(first) && !unicode.IsUpper(first)):
		return "keys must start with a lowercase letter or an international character"
	case !valid(k):
		return "keys may contain only lowercase letters, digits, underscores and dashes"
	case utf8.RuneCountInString(v) > maxLabelValLen:
		return fmt.Sprintf("values must be at most %d characters long", maxLabelValLen)
	case !valid(v):
		return "values may contain only lowercase letters, digits, underscores and dashes"
	}
	return ""
}

// checkLabels validates labels under field ("service.labels",
// "service.template.labels").
func checkLabels(field string, m map[string]string) []*errdetails.BadRequest_FieldViolation {
	var vs []*errdetails.BadRequest_FieldViolation
	if len(m) > maxLabels {
		vs = append(vs, violation(field, "A resource can have at most %d labels; got %d.", maxLabels, len(m)))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if p := labelProblem(k, m[k]); p != "" {
			vs = append(vs, violation(field, "Invalid label %q=%q: %s.", k, m[k], p))
		}
	}
	return vs
}

// checkMetadata validates the labels and annotations of next, the service a
// write would store. The proto says reserved annotations are "rejected in new
// resources"; whether an update of an existing service may add one is not
// documented, and the fake, stricter, refuses them on every write. The
// template's labels and annotations are checked when checkTemplate is set (the
// write builds a revision from it).
func checkMetadata(next *runpb.Service, checkTemplate bool) []*errdetails.BadRequest_FieldViolation {
	vs := checkAnnotations("service.annotations", next.GetAnnotations())
	vs = append(vs, checkLabels("service.labels", next.GetLabels())...)
	if checkTemplate {
		vs = append(vs, checkAnnotations("service.template.annotations", next.GetTemplate().GetAnnotations())...)
		vs = append(vs, checkLabels("service.template.labels", next.GetTemplate().GetLabels())...)
	}
	return vs
}
