package fakerun_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/runrollback/runrollback/fakes/fakerun"
)

func TestDefaultWorld(t *testing.T) {
	e := newEnv(t)

	api := e.get(t, apiName)
	if diff := diffProto([]*runpb.TrafficTarget{pin("api-00002-def", 100)}, api.GetTraffic()); diff != "" {
		t.Errorf("api traffic (-want +got):\n%s", diff)
	}
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeRevision, "api-00002-def", 100, "", "")}, api.GetTrafficStatuses()); diff != "" {
		t.Errorf("api traffic_statuses (-want +got):\n%s", diff)
	}
	if got, want := api.GetLatestReadyRevision(), apiName+"/revisions/api-00002-def"; got != want {
		t.Errorf("api latest_ready_revision = %q, want %q", got, want)
	}
	if got, want := api.GetLatestCreatedRevision(), apiName+"/revisions/api-00002-def"; got != want {
		t.Errorf("api latest_created_revision = %q, want %q", got, want)
	}
	if api.GetGeneration() != 1 || api.GetObservedGeneration() != 1 || api.GetReconciling() {
		t.Errorf("api generation, observed_generation, reconciling = %d, %d, %v; want 1, 1, false", api.GetGeneration(), api.GetObservedGeneration(), api.GetReconciling())
	}
	if got := api.GetTerminalCondition(); got.GetType() != "Ready" || got.GetState() != runpb.Condition_CONDITION_SUCCEEDED {
		t.Errorf("api terminal_condition = %v, want Ready SUCCEEDED", got)
	}
	if got, want := api.GetUri(), fakerun.DefaultURL(apiName, ""); got != want || !regexp.MustCompile(`^https://api-[0-9a-f]{10}-uc\.a\.run\.app$`).MatchString(got) {
		t.Errorf("api uri = %q, want %q in Cloud Run's shape", got, want)
	}
	if api.GetEtag() == "" || api.GetUid() == "" || api.GetCreateTime() == nil || api.GetUpdateTime() == nil {
		t.Errorf("api etag, uid, create_time, update_time = %q, %q, %v, %v; want all set", api.GetEtag(), api.GetUid(), api.GetCreateTime(), api.GetUpdateTime())
	}
	wantTpl := template("us-docker.pkg.dev/local-project/app/api:1.1.0", "APP_VERSION", "1.1.0")
	if diff := diffProto(wantTpl, api.GetTemplate()); diff != "" {
		t.Errorf("api template (-want +got):\n%s", diff)
	}

	web := e.get(t, webName)
	if diff := diffProto([]*runpb.TrafficTarget{latest(100)}, web.GetTraffic()); diff != "" {
		t.Errorf("web traffic (-want +got):\n%s", diff)
	}
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeLatest, "web-00001-aaa", 100, "", "")}, web.GetTrafficStatuses()); diff != "" {
		t.Errorf("web traffic_statuses (-want +got):\n%s", diff)
	}

	checkout := e.get(t, checkoutName)
	wantStatuses := []*runpb.TrafficTargetStatus{
		statusOf(typeRevision, "checkout-00002-bbb", 90, "", ""),
		statusOf(typeRevision, "checkout-00003-ccc", 10, "canary", fakerun.DefaultURL(checkoutName, "canary")),
	}
	if diff := diffProto(wantStatuses, checkout.GetTrafficStatuses()); diff != "" {
		t.Errorf("checkout traffic_statuses (-want +got):\n%s", diff)
	}
	if got := wantStatuses[1].GetUri(); !strings.HasPrefix(got, "https://canary---checkout-") {
		t.Errorf("canary uri = %q, want https://canary---checkout-…", got)
	}

	if got, want := e.revisionNames(t, checkoutName), []string{"checkout-00003-ccc", "checkout-00002-bbb"}; !slices.Equal(got, want) {
		t.Errorf("checkout revisions = %v, want %v", got, want)
	}
}

func TestListServicesNewestFirstWithPaging(t *testing.T) {
	e := newEnv(t)
	var got []string
	it := e.svcs.ListServices(t.Context(), &runpb.ListServicesRequest{Parent: loc, PageSize: 1})
	for {
		svc, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatalf("ListServices(%s).Next() = %v", loc, err)
		}
		got = append(got, shortName(svc.GetName()))
	}
	if want := []string{"checkout", "web", "api"}; !slices.Equal(got, want) {
		t.Errorf("ListServices(%s) = %v, want %v", loc, got, want)
	}
	if got, want := e.srv.Calls()["ListServices"], 3; got != want {
		t.Errorf("ListServices calls with page_size 1 = %d, want %d", got, want)
	}

	raw, _ := rawClients(t, e.srv)
	resp, err := raw.ListServices(t.Context(), &runpb.ListServicesRequest{Parent: "projects/local-project/locations/-"})
	if err != nil || len(resp.GetServices()) != 3 || resp.GetNextPageToken() != "" {
		t.Errorf("ListServices(locations/-) = %d services, token %q, %v; want 3, \"\", nil", len(resp.GetServices()), resp.GetNextPageToken(), err)
	}
	resp, err = raw.ListServices(t.Context(), &runpb.ListServicesRequest{Parent: "projects/other/locations/us-central1"})
	if err != nil || len(resp.GetServices()) != 0 {
		t.Errorf("ListServices(other project) = %v, %v; want none", resp.GetServices(), err)
	}
	_, err = raw.ListServices(t.Context(), &runpb.ListServicesRequest{Parent: loc, PageToken: "bogus"})
	wantCode(t, "ListServices(bad page_token)", err, codes.InvalidArgument, "page_token")
}

func TestGetServiceNotFound(t *testing.T) {
	e := newEnv(t)
	_, err := e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: loc + "/services/nope"})
	wantCode(t, "GetService(nope)", err, codes.NotFound,
		"Resource 'nope' of kind 'SERVICE' in region 'us-central1' in project 'local-project' does not exist.")
	_, err = e.svcs.GetService(t.Context(), &runpb.GetServiceRequest{Name: "services/api"})
	wantCode(t, "GetService(services/api)", err, codes.InvalidArgument)
}

func TestTrafficOnlyUpdate(t *testing.T) {
	e := newEnv(t)
	before := e.get(t, apiName)

	got, err := e.setTraffic(t, apiName, pin("api-00001-abc", 50), tagged("api-00002-def", 50, "current"))
	if err != nil {
		t.Fatalf("traffic-only update = %v", err)
	}
	if got.GetGeneration() != 2 || got.GetObservedGeneration() != 2 {
		t.Errorf("generation, observed_generation = %d, %d; want 2, 2", got.GetGeneration(), got.GetObservedGeneration())
	}
	if got.GetEtag() == before.GetEtag() || got.GetEtag() == "" {
		t.Errorf("etag = %q after a write, want a new one (was %q)", got.GetEtag(), before.GetEtag())
	}
	wantStatuses := []*runpb.TrafficTargetStatus{
		statusOf(typeRevision, "api-00001-abc", 50, "", ""),
		statusOf(typeRevision, "api-00002-def", 50, "current", fakerun.DefaultURL(apiName, "current")),
	}
	if diff := diffProto(wantStatuses, got.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses (-want +got):\n%s", diff)
	}
	if diff := diffProto(got, e.get(t, apiName)); diff != "" {
		t.Errorf("operation response differs from GetService (-op +get):\n%s", diff)
	}
	if n := len(e.srv.Revisions(apiName)); n != 2 {
		t.Errorf("revisions after a traffic-only update = %d, want 2 (none created)", n)
	}
	if got, want := e.srv.Writes(), 1; got != want {
		t.Errorf("Writes() = %d, want %d", got, want)
	}

	// Another traffic-only write: generation moves again.
	got, err = e.setTraffic(t, apiName, pin("api-00002-def", 100))
	if err != nil || got.GetGeneration() != 3 {
		t.Errorf("second traffic-only update = generation %d, %v; want 3, nil", got.GetGeneration(), err)
	}
}

func TestStaleEtagIsAborted(t *testing.T) {
	e := newEnv(t)
	old := e.get(t, apiName)
	if _, err := e.setTraffic(t, apiName, pin("api-00001-abc", 100)); err != nil {
		t.Fatalf("first update = %v", err)
	}
	_, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Etag: old.GetEtag(), Traffic: []*runpb.TrafficTarget{pin("api-00002-def", 100)}},
		UpdateMask: mask("traffic"),
	})
	wantCode(t, "UpdateService(stale etag)", err, codes.Aborted, "etag", "does not match")
	if got := e.get(t, apiName); got.GetGeneration() != 2 || got.GetTraffic()[0].GetRevision() != "api-00001-abc" {
		t.Errorf("after the ABORTED write: generation %d, traffic %v; want 2, api-00001-abc", got.GetGeneration(), got.GetTraffic())
	}
	// No etag: last writer wins.
	if _, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00002-def", 100)}},
		UpdateMask: mask("traffic"),
	}); err != nil {
		t.Errorf("UpdateService(no etag) = %v", err)
	}
}

func TestTemplateChangeCreatesRevision(t *testing.T) {
	e := newEnv(t)
	cur := e.get(t, apiName)
	tpl := template("us-docker.pkg.dev/local-project/app/api:1.2.0", "APP_VERSION", "1.2.0")
	got := e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Etag: cur.GetEtag(), Template: tpl},
		UpdateMask: mask("template"),
	})
	newRev := shortName(got.GetLatestCreatedRevision())
	if !regexp.MustCompile(`^api-00003-[a-z0-9]{3}$`).MatchString(newRev) {
		t.Fatalf("latest_created_revision = %q, want api-00003-xyz", newRev)
	}
	if got.GetLatestReadyRevision() != got.GetLatestCreatedRevision() {
		t.Errorf("latest_ready_revision = %q, want %q", got.GetLatestReadyRevision(), got.GetLatestCreatedRevision())
	}
	// Pinned traffic stays where it was.
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeRevision, "api-00002-def", 100, "", "")}, got.GetTrafficStatuses()); diff != "" {
		t.Errorf("traffic_statuses (-want +got):\n%s", diff)
	}
	rev, err := e.revs.GetRevision(t.Context(), &runpb.GetRevisionRequest{Name: got.GetLatestCreatedRevision()})
	if err != nil {
		t.Fatalf("GetRevision(%s) = %v", newRev, err)
	}
	if diff := diffProto(tpl.GetContainers(), rev.GetContainers()); diff != "" {
		t.Errorf("revision containers (-want +got):\n%s", diff)
	}
	if rev.GetService() != apiName || rev.GetConditions()[0].GetType() != "Ready" || rev.GetConditions()[0].GetState() != runpb.Condition_CONDITION_SUCCEEDED {
		t.Errorf("revision service, first condition = %q, %v; want %q, Ready SUCCEEDED", rev.GetService(), rev.GetConditions()[0], apiName)
	}

	// The same names come out of another fake doing the same thing.
	e2 := newEnv(t)
	got2 := e2.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: tpl}, UpdateMask: mask("template")})
	if shortName(got2.GetLatestCreatedRevision()) != newRev {
		t.Errorf("revision name on a second fake = %q, want %q (deterministic)", shortName(got2.GetLatestCreatedRevision()), newRev)
	}

	// Re-sending the same template creates nothing; LATEST follows new revisions.
	again := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: tpl}, UpdateMask: mask("template")})
	if again.GetLatestCreatedRevision() != got.GetLatestCreatedRevision() || again.GetGeneration() != got.GetGeneration()+1 {
		t.Errorf("same template again: latest created %q, generation %d; want %q, %d", again.GetLatestCreatedRevision(), again.GetGeneration(), got.GetLatestCreatedRevision(), got.GetGeneration()+1)
	}
	web := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: webName, Template: template("web:2", "APP_VERSION", "2.0.0")}})
	webRev := shortName(web.GetLatestCreatedRevision())
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeLatest, webRev, 100, "", "")}, web.GetTrafficStatuses()); diff != "" {
		t.Errorf("web traffic_statuses after deploy (-want +got):\n%s", diff)
	}
	if r, ok := e.srv.Routes(webName, ""); !ok || len(r) != 1 || r[0].Env["APP_VERSION"] != "2.0.0" {
		t.Errorf("Routes(web) = %v, %v; want 100%% to %s with APP_VERSION 2.0.0", r, ok, webRev)
	}
}

func TestNamedRevisions(t *testing.T) {
	e := newEnv(t)
	tpl := template("api:named", "APP_VERSION", "3.0.0")
	tpl.Revision = "api-v3"
	got := e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Template: tpl, Traffic: []*runpb.TrafficTarget{pin("api-00002-def", 100), tagged("api-v3", 0, "next")}},
		UpdateMask: mask("template", "traffic"),
	})
	if got.GetLatestCreatedRevision() != apiName+"/revisions/api-v3" {
		t.Fatalf("latest_created_revision = %q, want …/api-v3", got.GetLatestCreatedRevision())
	}
	n := len(e.srv.Revisions(apiName))

	// Same name, same template: nothing new.
	e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: tpl}, UpdateMask: mask("template")})
	if got := len(e.srv.Revisions(apiName)); got != n {
		t.Errorf("revisions after re-sending api-v3 = %d, want %d", got, n)
	}

	// Same name, different template.
	changed := proto.Clone(tpl).(*runpb.RevisionTemplate)
	changed.Containers[0].Image = "api:other"
	_, err := e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: changed}, UpdateMask: mask("template")})
	wantCode(t, "UpdateService(api-v3 with another template)", err, codes.AlreadyExists, "api-v3")

	// An older revision cannot become the latest again.
	old := template("us-docker.pkg.dev/local-project/app/api:1.0.0", "APP_VERSION", "1.0.0")
	old.Revision = "api-00001-abc"
	_, err = e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: old}, UpdateMask: mask("template")})
	wantCode(t, "UpdateService(template.revision = api-00001-abc)", err, codes.AlreadyExists, "api-00001-abc")

	// The name must start with the service's.
	bad := proto.Clone(tpl).(*runpb.RevisionTemplate)
	bad.Revision = "web-v3"
	_, err = e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: bad}, UpdateMask: mask("template")})
	wantCode(t, "UpdateService(template.revision = web-v3)", err, codes.InvalidArgument, `"api-"`)

	// force_new_revision builds one from an unchanged template.
	plain := proto.Clone(tpl).(*runpb.RevisionTemplate)
	plain.Revision = ""
	e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: plain}, UpdateMask: mask("template")})
	before := len(e.srv.Revisions(apiName))
	forced := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: plain}, UpdateMask: mask("template"), ForceNewRevision: true})
	if got := len(e.srv.Revisions(apiName)); got != before+1 {
		t.Errorf("revisions after force_new_revision = %d, want %d", got, before+1)
	}
	// api-v3 counts as the third revision; dropping its name from an
	// otherwise equal template built nothing.
	if !strings.HasPrefix(shortName(forced.GetLatestCreatedRevision()), "api-00004-") {
		t.Errorf("forced revision = %q, want api-00004-…", shortName(forced.GetLatestCreatedRevision()))
	}
}

func TestUpdateMask(t *testing.T) {
	e := newEnv(t)
	// Only annotations change, although the request carries other traffic.
	got := e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service: &runpb.Service{
			Name:        apiName,
			Annotations: map[string]string{"runrollback.dev/journal": "{}"},
			Traffic:     []*runpb.TrafficTarget{pin("api-00001-abc", 100)},
		},
		UpdateMask: mask("annotations"),
	})
	if got.GetAnnotations()["runrollback.dev/journal"] != "{}" || got.GetTraffic()[0].GetRevision() != "api-00002-def" || got.GetGeneration() != 2 {
		t.Errorf("mask annotations: annotations %v, traffic %v, generation %d; want the journal, api-00002-def, 2", got.GetAnnotations(), got.GetTraffic(), got.GetGeneration())
	}
	got = e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Labels: map[string]string{"team": "a"}},
		UpdateMask: mask("labels"),
	})
	if got.GetLabels()["team"] != "a" || got.GetAnnotations()["runrollback.dev/journal"] != "{}" {
		t.Errorf("mask labels: labels %v, annotations %v", got.GetLabels(), got.GetAnnotations())
	}
	// Clearing through the mask.
	got = e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName}, UpdateMask: mask("annotations")})
	if len(got.GetAnnotations()) != 0 {
		t.Errorf("mask annotations with none = %v, want none", got.GetAnnotations())
	}
	// A nested path.
	got = e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Template: &runpb.RevisionTemplate{ServiceAccount: "sa@example.com"}},
		UpdateMask: mask("template.service_account"),
	})
	if got.GetTemplate().GetServiceAccount() != "sa@example.com" || got.GetTemplate().GetContainers()[0].GetImage() == "" {
		t.Errorf("mask template.service_account: template = %v", got.GetTemplate())
	}
	// Empty mask: the fields given replace, the others stay.
	got = e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Description: "hello"}})
	if got.GetDescription() != "hello" || got.GetTraffic()[0].GetRevision() != "api-00002-def" || got.GetLabels()["team"] != "a" {
		t.Errorf("empty mask: description %q, traffic %v, labels %v", got.GetDescription(), got.GetTraffic(), got.GetLabels())
	}
	// Mask traffic with no targets: 100% LATEST.
	got = e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName}, UpdateMask: mask("traffic")})
	if diff := diffProto([]*runpb.TrafficTarget{latest(100)}, got.GetTraffic()); diff != "" {
		t.Errorf("mask traffic, empty (-want +got):\n%s", diff)
	}
	_, err := e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName}, UpdateMask: mask("no_such_field")})
	wantCode(t, "UpdateService(mask no_such_field)", err, codes.InvalidArgument, "no_such_field")
	_, err = e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName}, UpdateMask: mask("etag")})
	wantCode(t, "UpdateService(mask etag)", err, codes.InvalidArgument, "output-only")
}

func TestValidateOnly(t *testing.T) {
	e := newEnv(t)
	before := e.get(t, apiName)
	got := e.mustUpdate(t, &runpb.UpdateServiceRequest{
		Service:      &runpb.Service{Name: apiName, Template: template("api:2", "APP_VERSION", "2.0.0")},
		UpdateMask:   mask("template"),
		ValidateOnly: true,
	})
	if got.GetGeneration() != 2 || !strings.HasPrefix(shortName(got.GetLatestCreatedRevision()), "api-00003-") {
		t.Errorf("validate_only response: generation %d, latest created %q; want 2, api-00003-…", got.GetGeneration(), got.GetLatestCreatedRevision())
	}
	if diff := diffProto(before, e.get(t, apiName)); diff != "" {
		t.Errorf("validate_only changed the service (-before +after):\n%s", diff)
	}
	if n := len(e.srv.Revisions(apiName)); n != 2 || e.srv.Writes() != 0 {
		t.Errorf("after validate_only: %d revisions, %d writes; want 2, 0", n, e.srv.Writes())
	}
	_, err := e.update(t, &runpb.UpdateServiceRequest{
		Service: &runpb.Service{Name: apiName, Traffic: []*runpb.TrafficTarget{pin("api-00002-def", 90)}}, UpdateMask: mask("traffic"), ValidateOnly: true,
	})
	wantCode(t, "validate_only with bad traffic", err, codes.InvalidArgument, "sum to 90")
}

func TestCreateServiceAndAllowMissing(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEnv(t, fakerun.WithClock(func() time.Time { return now }))
	op, err := e.svcs.CreateService(t.Context(), &runpb.CreateServiceRequest{
		Parent: loc, ServiceId: "shop",
		Service: &runpb.Service{Template: template("shop:1", "APP_VERSION", "1.0.0"), Labels: map[string]string{"team": "b"}},
	})
	if err != nil {
		t.Fatalf("CreateService(shop) = %v", err)
	}
	got, err := waitOp(t, op)
	if err != nil {
		t.Fatalf("CreateService(shop).Wait() = %v", err)
	}
	rev := shortName(got.GetLatestReadyRevision())
	if !regexp.MustCompile(`^shop-00001-[a-z0-9]{3}$`).MatchString(rev) || got.GetGeneration() != 1 || got.GetObservedGeneration() != 1 {
		t.Errorf("created: latest ready %q, generation %d, observed %d; want shop-00001-xyz, 1, 1", rev, got.GetGeneration(), got.GetObservedGeneration())
	}
	if diff := diffProto([]*runpb.TrafficTargetStatus{statusOf(typeLatest, rev, 100, "", "")}, got.GetTrafficStatuses()); diff != "" {
		t.Errorf("created traffic_statuses (-want +got):\n%s", diff)
	}
	if diff := diffProto(timestamppb.New(now), got.GetCreateTime()); diff != "" {
		t.Errorf("create_time from WithClock (-want +got):\n%s", diff)
	}
	if got.GetUri() != fakerun.DefaultURL(loc+"/services/shop", "") || got.GetUid() == "" {
		t.Errorf("uri, uid = %q, %q", got.GetUri(), got.GetUid())
	}
	if names := e.revisionNames(t, loc+"/services/shop"); !slices.Equal(names, []string{rev}) {
		t.Errorf("revisions of shop = %v, want [%s]", names, rev)
	}

	_, err = e.svcs.CreateService(t.Context(), &runpb.CreateServiceRequest{Parent: loc, ServiceId: "shop", Service: &runpb.Service{Template: template("x")}})
	wantCode(t, "CreateService(shop again)", err, codes.AlreadyExists, "shop")
	_, err = e.svcs.CreateService(t.Context(), &runpb.CreateServiceRequest{Parent: loc, ServiceId: "Bad_Name", Service: &runpb.Service{Template: template("x")}})
	wantCode(t, "CreateService(Bad_Name)", err, codes.InvalidArgument)
	_, err = e.svcs.CreateService(t.Context(), &runpb.CreateServiceRequest{Parent: loc, ServiceId: "empty", Service: &runpb.Service{}})
	wantCode(t, "CreateService(no template)", err, codes.InvalidArgument, "template")

	missing := loc + "/services/new"
	_, err = e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: missing, Template: template("new:1")}})
	wantCode(t, "UpdateService(missing)", err, codes.NotFound,
		"Resource 'new' of kind 'SERVICE' in region 'us-central1' in project 'local-project' does not exist.")
	created := e.mustUpdate(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: missing, Template: template("new:1")}, AllowMissing: true})
	if created.GetName() != missing || !strings.HasPrefix(shortName(created.GetLatestReadyRevision()), "new-00001-") {
		t.Errorf("allow_missing created %q with %q", created.GetName(), created.GetLatestReadyRevision())
	}
	if got, want := e.srv.Writes(), 2; got != want {
		t.Errorf("Writes() = %d, want %d", got, want)
	}
}

func TestTrafficValidation(t *testing.T) {
	tests := []struct {
		name    string
		traffic []*runpb.TrafficTarget
		want    string
	}{
		{"sum below 100", []*runpb.TrafficTarget{pin("api-00002-def", 90)}, "Traffic targets sum to 90, want 100."},
		{"sum above 100", []*runpb.TrafficTarget{pin("api-00002-def", 90), pin("api-00001-abc", 20)}, "sum to 110"},
		{"negative percent", []*runpb.TrafficTarget{pin("api-00002-def", 110), pin("api-00001-abc", -10)}, "between 0 and 100"},
		{"unknown revision", []*runpb.TrafficTarget{pin("api-00009-zzz", 100)}, `Revision "api-00009-zzz" referenced in traffic not found.`},
		{"other service's revision", []*runpb.TrafficTarget{pin("web-00001-aaa", 100)}, `"web-00001-aaa" referenced in traffic not found`},
		{"duplicate tag", []*runpb.TrafficTarget{tagged("api-00002-def", 100, "x"), tagged("api-00001-abc", 0, "x")}, `Multiple definitions for tag "x".`},
		{"two LATEST", []*runpb.TrafficTarget{latest(50), latest(50)}, "Only one traffic target may be of type TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"},
		{"tag with capitals", []*runpb.TrafficTarget{tagged("api-00002-def", 100, "Canary")}, `Tag "Canary" is invalid`},
		{"tag starting with a digit", []*runpb.TrafficTarget{tagged("api-00002-def", 100, "1st")}, `Tag "1st" is invalid`},
		{"tag ending with a hyphen", []*runpb.TrafficTarget{tagged("api-00002-def", 100, "a-")}, `Tag "a-" is invalid`},
		{"tag too long", []*runpb.TrafficTarget{tagged("api-00002-def", 100, strings.Repeat("a", 47))}, "is invalid"},
		{"tag and service name over 46", []*runpb.TrafficTarget{tagged("api-00002-def", 100, strings.Repeat("a", 44))},
			"traffic tag '" + strings.Repeat("a", 44) + "' and service name 'api' together are too long. Combined traffic tag and service name cannot exceed 46 characters."},
		{"neither revision nor LATEST", []*runpb.TrafficTarget{{Percent: 100}}, "names neither a revision nor type TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"},
		{"REVISION without a name", []*runpb.TrafficTarget{{Type: typeRevision, Percent: 100}}, "names no revision"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.setTraffic(t, apiName, tt.traffic...)
			st := wantCode(t, "UpdateService(traffic)", err, codes.InvalidArgument, tt.want)
			vs := fieldViolations(st)
			if len(vs) == 0 {
				t.Fatalf("details = %v, want a google.rpc.BadRequest", st.Details())
			}
			for _, v := range vs {
				if v.GetField() != "service.traffic" {
					t.Errorf("field violation on %q, want service.traffic", v.GetField())
				}
			}
		})
	}
	if got := e.get(t, apiName).GetGeneration(); got != 1 {
		t.Errorf("generation after rejected writes = %d, want 1", got)
	}
	// A tag of 46 characters with the service name, and an unspecified type
	// naming a revision, are fine.
	ok := &runpb.TrafficTarget{Revision: "api-00002-def", Percent: 100, Tag: strings.Repeat("a", 43)}
	got, err := e.setTraffic(t, apiName, ok)
	if err != nil {
		t.Fatalf("UpdateService(43-character tag on api) = %v", err)
	}
	if got.GetTraffic()[0].GetType() != typeRevision {
		t.Errorf("stored type = %v, want REVISION", got.GetTraffic()[0].GetType())
	}
}

func TestReservedAnnotationsAndLabels(t *testing.T) {
	e := newEnv(t)
	for _, svc := range []*runpb.Service{
		{Name: apiName, Annotations: map[string]string{"run.googleapis.com/ingress": "all"}},
		{Name: apiName, Annotations: map[string]string{"serving.knative.dev/creator": "me"}},
		{Name: apiName, Annotations: map[string]string{"cloud.googleapis.com/location": "x"}},
		{Name: apiName, Annotations: map[string]string{"autoscaling.knative.dev/maxScale": "3"}},
		{Name: apiName, Labels: map[string]string{"run.googleapis.com/x": "3"}},
	} {
		_, err := e.update(t, &runpb.UpdateServiceRequest{Service: svc, UpdateMask: mask("annotations", "labels")})
		wantCode(t, "UpdateService(reserved key)", err, codes.InvalidArgument, "reserved namespace")
	}
	// gcloud leaves client.knative.dev/user-image on the services it deploys:
	// client.knative.dev is not reserved.
	got, err := e.update(t, &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: apiName, Annotations: map[string]string{"client.knative.dev/user-image": "us-docker.pkg.dev/p/app/api:1.1.0"}},
		UpdateMask: mask("annotations"),
	})
	if err != nil || got.GetAnnotations()["client.knative.dev/user-image"] == "" {
		t.Errorf("UpdateService(client.knative.dev/user-image) = %v, %v; want it stored", got.GetAnnotations(), err)
	}
	// The template is checked too, when the write builds a revision from it.
	tpl := template("us-docker.pkg.dev/local-project/app/api:1.1.0", "APP_VERSION", "1.1.0")
	tpl.Annotations = map[string]string{"run.googleapis.com/startup-cpu-boost": "true"}
	_, err = e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Template: tpl}, UpdateMask: mask("template")})
	st := wantCode(t, "UpdateService(template annotation run.googleapis.com/…)", err, codes.InvalidArgument, "reserved namespace")
	if vs := fieldViolations(st); len(vs) != 1 || vs[0].GetField() != "service.template.annotations" {
		t.Errorf("field violations = %v, want one on service.template.annotations", vs)
	}
}

func TestAnnotationRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		ann  map[string]string
		want string // "" = accepted
	}{
		{"plain name", map[string]string{"owner": "team-a"}, ""},
		{"prefix and name", map[string]string{"example.com/My_Name.v1": "x"}, ""},
		{"uppercase prefix, as Kubernetes lowercases it", map[string]string{"Example.COM/x": "y"}, ""},
		{"63-character name", map[string]string{long(63): "x"}, ""},
		{"64-character name", map[string]string{long(64): "x"}, "name part must be no more than 63 characters"},
		{"253-character prefix", map[string]string{strings.Repeat("a.", 126) + "a/x": "y"}, ""},
		{"254-character prefix", map[string]string{strings.Repeat("a.", 126) + "ab/x": "y"}, "prefix part must be no more than 253 characters"},
		{"empty prefix", map[string]string{"/x": "y"}, "prefix part must be non-empty"},
		{"empty name", map[string]string{"example.com/": "y"}, "name part must be non-empty"},
		{"two slashes", map[string]string{"a/b/c": "y"}, "optional DNS subdomain prefix"},
		{"name starting with a dot", map[string]string{".x": "y"}, "must start and end with an alphanumeric character"},
		{"name with a space", map[string]string{"a b": "y"}, "must start and end with an alphanumeric character"},
		{"prefix with an underscore", map[string]string{"a_b.com/x": "y"}, "RFC 1123 subdomain"},
		{"256 KiB in all", map[string]string{"a": strings.Repeat("v", 256<<10-1)}, ""},
		{"over 256 KiB in all", map[string]string{"a": strings.Repeat("v", 128<<10), "b": strings.Repeat("v", 128<<10)}, "must have at most 262144 bytes"},
		{"reserved subdomain", map[string]string{"foo.run.googleapis.com/x": "y"}, "reserved namespace"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.get(t, apiName)
			got, err := e.update(t, &runpb.UpdateServiceRequest{
				Service:    &runpb.Service{Name: apiName, Etag: before.GetEtag(), Annotations: tt.ann},
				UpdateMask: mask("annotations"),
			})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("UpdateService(annotations) = %v, want success", err)
				}
				if diff := cmp.Diff(tt.ann, got.GetAnnotations()); diff != "" {
					t.Errorf("stored annotations (-want +got):\n%s", diff)
				}
				return
			}
			st := wantCode(t, "UpdateService(annotations)", err, codes.InvalidArgument, tt.want)
			if vs := fieldViolations(st); len(vs) == 0 || vs[0].GetField() != "service.annotations" {
				t.Errorf("field violations = %v, want one on service.annotations", vs)
			}
			if after := e.get(t, apiName); after.GetEtag() != before.GetEtag() {
				t.Errorf("a rejected write changed the service")
			}
		})
	}
}

func TestLabelRules(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"fine", map[string]string{"env": "dev", "team_a-1": "", "é": "ü"}, ""},
		{"uppercase key", map[string]string{"Env": "dev"}, "keys must start with a lowercase letter"},
		{"key starting with a digit", map[string]string{"1env": "dev"}, "keys must start with a lowercase letter"},
		{"dot in key", map[string]string{"app.kubernetes.io": "x"}, "keys may contain only"},
		{"uppercase value", map[string]string{"env": "Dev"}, "values may contain only"},
		{"64-character value", map[string]string{"env": strings.Repeat("a", 64)}, "values must be at most 63"},
		{"64-character key", map[string]string{strings.Repeat("a", 64): ""}, "keys must be at most 63"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Labels: tt.labels}, UpdateMask: mask("labels")})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("UpdateService(labels) = %v, want success", err)
				}
				return
			}
			wantCode(t, "UpdateService(labels)", err, codes.InvalidArgument, tt.want)
		})
	}
	many := map[string]string{}
	for i := range 65 {
		many[fmt.Sprintf("k%d", i)] = ""
	}
	_, err := e.update(t, &runpb.UpdateServiceRequest{Service: &runpb.Service{Name: apiName, Labels: many}, UpdateMask: mask("labels")})
	wantCode(t, "UpdateService(65 labels)", err, codes.InvalidArgument, "at most 64 labels")
}

func TestUnimplemented(t *testing.T) {
	e := newEnv(t)
	_, err := e.svcs.GetIamPolicy(t.Context(), nil)
	wantCode(t, "GetIamPolicy", err, codes.Unimplemented, "does not model IAM")
}
