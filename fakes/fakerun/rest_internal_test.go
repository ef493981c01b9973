package fakerun

import (
	stdcmp "cmp"
	"strings"
	"testing"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The REST routes of Services and Revisions are exactly the google.api.http
// rules compiled into runpb, additional bindings included.
func TestRESTBindingsAreTheProtoHTTPRules(t *testing.T) {
	var want []restBinding
	for _, fd := range []protoreflect.FileDescriptor{runpb.File_google_cloud_run_v2_service_proto, runpb.File_google_cloud_run_v2_revision_proto} {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					t.Errorf("%s has no google.api.http rule", m.FullName())
					continue
				}
				method := "/" + string(svc.FullName()) + "/" + string(m.Name())
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					want = append(want, restBinding{verb: ruleVerb(r), template: rulePath(r), body: r.GetBody(), method: method})
				}
			}
		}
	}
	var got []restBinding
	for _, b := range restBindings {
		if strings.HasPrefix(b.method, "/google.cloud.run.v2.") {
			got = append(got, b)
		}
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(restBinding{})); diff != "" {
		t.Errorf("REST bindings differ from the protos' google.api.http rules (-proto +fake):\n%s", diff)
	}
}

func ruleVerb(r *annotations.HttpRule) string {
	switch r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET"
	case *annotations.HttpRule_Post:
		return "POST"
	case *annotations.HttpRule_Patch:
		return "PATCH"
	case *annotations.HttpRule_Put:
		return "PUT"
	case *annotations.HttpRule_Delete:
		return "DELETE"
	}
	return "?"
}

func rulePath(r *annotations.HttpRule) string {
	return stdcmp.Or(r.GetGet(), r.GetPost(), r.GetPatch(), r.GetPut(), r.GetDelete())
}

func TestPathTemplateMatch(t *testing.T) {
	for _, c := range []struct {
		tmpl, path, want string
		ok               bool
	}{
		{"/v2/{name=projects/*/locations/*/services/*}", "/v2/projects/p/locations/r/services/s", "projects/p/locations/r/services/s", true},
		{"/v2/{name=projects/*/locations/*/services/*}", "/v2/projects/p/locations/r/services/s/revisions/x", "", false},
		{"/v2/{name=projects/*/locations/*/services/*}", "/v2/projects/p/locations/r/services/", "", false},
		{"/v2/{name=projects/*/locations/*/services/*}", "/v2/projects/p/locations/r/services/s:getIamPolicy", "", false},
		{"/v2/{name=projects/*/locations/*/services/*}", "/v2/projects/p/locations/r/jobs/s", "", false},
		{"/v2/{resource=projects/*/locations/*/services/*}:getIamPolicy", "/v2/projects/p/locations/r/services/s:getIamPolicy", "projects/p/locations/r/services/s", true},
		{"/v2/{resource=projects/*/locations/*/services/*}:getIamPolicy", "/v2/projects/p/locations/r/services/s", "", false},
		{"/v2/{parent=projects/*/locations/*}/services", "/v2/projects/p/locations/-/services", "projects/p/locations/-", true},
		{"/v2/{name=projects/*/locations/*/operations/*}:wait", "/v2/projects/p/locations/r/operations/o:wait", "projects/p/locations/r/operations/o", true},
		{"/v2/{name=projects/*/locations/*}/operations", "/v1/projects/p/locations/r/operations", "", false},
	} {
		got, ok := mustParseTemplate(c.tmpl).match(c.path)
		if got != c.want || ok != c.ok {
			t.Errorf("%s.match(%s) = %q, %v; want %q, %v", c.tmpl, c.path, got, ok, c.want, c.ok)
		}
	}
}

func TestCamelMask(t *testing.T) {
	for in, want := range map[string]string{
		"traffic":          "traffic",
		"template,traffic": "template,traffic",
		"template.max_instance_request_concurrency,launch_stage": "template.maxInstanceRequestConcurrency,launchStage",
		"launchStage": "launchStage",
	} {
		if got := camelMask(in); got != want {
			t.Errorf("camelMask(%q) = %q, want %q", in, got, want)
		}
	}
}
