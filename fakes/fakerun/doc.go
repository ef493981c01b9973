// Package fakerun is a fake of the Cloud Run Admin API v2 that speaks real
// gRPC: google.cloud.run.v2.Services, google.cloud.run.v2.Revisions and
// google.longrunning.Operations, registered on one grpc.Server on a loopback
// port. Drive it with Google's own client, cloud.google.com/go/run/apiv2, the
// way production code drives Cloud Run, minus credentials:
//
//	srv := fakerun.NewTestServer(t)
//	if err := srv.Seed(fakerun.DefaultWorld()); err != nil {
//		t.Fatal(err)
//	}
//	c, err := run.NewServicesClient(ctx,
//		option.WithEndpoint(srv.Addr),
//		option.WithoutAuthentication(),
//		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
//
// The same port speaks the API's HTTP/JSON mapping (REST), the paths and
// bodies of the methods' google.api.http rules, so the REST clients work too:
//
//	c, err := run.NewServicesRESTClient(ctx,
//		option.WithEndpoint("http://"+srv.Addr),
//		option.WithoutAuthentication())
//
// REST calls go through the same handlers as gRPC calls, so counts and
// injected faults apply to both; errors come back as Google's JSON error
// body, {"error":{"code":409,"message":…,"status":"ABORTED","details":[…]}},
// with the HTTP status google/rpc/code.proto gives each code. Each connection
// is sniffed: one that opens with the HTTP/2 preface is gRPC, any other is
// HTTP/1.1 REST. See fakes/README.md (REST) for the paths.
//
// NewServer returns a server already serving. To register more gRPC services
// on Server.GRPC, use NewUnstartedServer, register, then Start.
//
// # What it models
//
//   - Resource names projects/P/locations/R/services/S[/revisions/REV];
//     short revision names in traffic and traffic_statuses; lists newest
//     first, with page_size and page_token; ListRevisions of one service, or
//     of all with service "-"; ListServices of all regions with region "-".
//   - generation +1 and a new opaque etag on every accepted write (a
//     traffic-only write too, and a write that changes nothing); a request
//     whose etag is set and stale fails with ABORTED.
//   - A template change creates a revision <service>-NNNNN-xyz (NNNNN counts
//     the revisions created for the service; xyz is derived from the service
//     name and NNNNN, so names repeat from run to run). template.revision may
//     name it, if the name starts with "<service>-" (else INVALID_ARGUMENT);
//     naming an existing revision with a different template, or an older
//     revision at all, is ALREADY_EXISTS; naming the latest revision with the
//     same template creates none. force_new_revision creates one even when
//     the template is unchanged (changing a template annotation, such as a
//     client timestamp, does too). A traffic-only change creates none.
//   - update_mask (any field path of Service; "*" replaces every mutable
//     field). An empty mask copies the mutable fields the request sets
//     (non-empty); traffic left empty then stays as it is, while an empty
//     traffic under mask "traffic" means 100% LATEST. validate_only stores
//     nothing and answers with the would-be resource. allow_missing creates
//     a missing service on UpdateService; without it the answer is NOT_FOUND
//     "Resource 'S' of kind 'SERVICE' in region 'R' in project 'P' does not exist."
//   - Traffic validation, INVALID_ARGUMENT with a google.rpc.BadRequest whose
//     field violations are on "service.traffic": percents not summing to
//     100, a percent outside 0–100, an unknown or deleted revision, a
//     duplicate or malformed tag, more than one LATEST target, a target with
//     neither a revision nor type LATEST.
//   - traffic (desired) and traffic_statuses (actual: LATEST resolved, tag
//     URIs from the URLFunc), latest_ready_revision, latest_created_revision,
//     observed_generation, reconciling, conditions (RoutesReady,
//     ConfigurationsReady), terminal_condition (Ready), uri, urls, uid,
//     create and update times.
//   - A revision whose container has RUNROLLBACK_BREAK=startup, or whose
//     image contains "crash-on-start", never becomes Ready. The operation
//     that created it, and any later one whose traffic names it, ends with
//     FAILED_PRECONDITION "Revision '…' is not ready and cannot serve
//     traffic. …"; the desired traffic is stored as requested but
//     traffic_statuses, observed_generation and latest_ready_revision stay
//     on the last serving state, and terminal_condition is FAILED (reason
//     REVISION_FAILED). It stays FAILED, even after later writes that build
//     no revision roll out, until a later revision becomes Ready
//     (unverified: the stricter reading; Rollout.ReadyDespiteFailedRevision
//     relaxes it).
//   - LATEST resolves to the latest Ready revision: never to one that failed
//     to start, nor to one whose rollout has not finished.
//   - An image registry (PushImage, the world's images): a revision resolves
//     each container's image tag when it is created and runs that image from
//     then on, whatever the tag later points to; its app sees the image's env
//     and APP_VERSION under the container's env. An image the registry does
//     not know is only its name. The Revision shows the image as given
//     (the v2 Revision has no digest field); RevisionImage tells the digest.
//   - DeleteRevision refuses (FAILED_PRECONDITION) to delete a revision that
//     serves traffic, is tagged, is named in the desired traffic, is the
//     latest created revision, or is the only one.
//   - A tag whose length plus the service name's exceeds 46 characters is
//     INVALID_ARGUMENT "traffic tag 'T' and service name 'S' together are too
//     long. Combined traffic tag and service name cannot exceed 46
//     characters." (the tag URL's host starts with the DNS label
//     T---S-…; the message is Cloud Run's, as gcloud prints it).
//   - Annotations of the service and of its template follow Kubernetes
//     rules, as the v2 Service and RevisionTemplate field comments say ("This
//     field follows Kubernetes annotations' namespacing, limits, and rules"):
//     a key is an optional DNS-1123 subdomain prefix (at most 253 characters)
//     and "/", then a name of at most 63 of [A-Za-z0-9-_.], starting and
//     ending alphanumeric; keys and values together at most 256 KiB. Keys and
//     labels in the namespaces the same comments reserve —
//     run.googleapis.com, cloud.googleapis.com, serving.knative.dev,
//     autoscaling.knative.dev, and their subdomains — are refused;
//     client.knative.dev/user-image, which gcloud leaves, is accepted. Labels
//     follow Google Cloud's label rules (at most 64; lowercase keys and
//     values of at most 63 characters). Violations are INVALID_ARGUMENT with a
//     field violation on service.annotations, service.labels,
//     service.template.annotations or service.template.labels.
//   - Operations projects/P/locations/R/operations/ID, done when returned
//     unless HoldOperations is on, with the Service (the Revision for
//     DeleteRevision) as metadata and response, or an error. GetOperation,
//     ListOperations, DeleteOperation and WaitOperation work.
//
// # Faults, seeding and inspection
//
// Seed and DefaultWorld set up services and images; Service, Revisions,
// RevisionImage, Images, ResolveImage, Calls, Writes, Routes and FindURL
// inspect them; PushImage and PushImageAfterWrites move image tags. FailNext, FailNextWithDetails, FailAfter
// (fail the Nth call), LoseReply, SetLatency, HoldOperations,
// HoldOperationsAfter (hold from the Nth write on), FailOperations and
// BeforeWrite inject faults, counted and deterministic, never random. ControlHandler offers the same to
// other processes as JSON over HTTP (see fakes/README.md).
//
// # What it does not model
//
// IAM (the IAM RPCs answer UNIMPLEMENTED) and authentication; Jobs,
// Executions, Tasks, Builds and worker pools; real container builds, image
// pulls and startup (readiness comes from the env, the registry's image env
// and the image name only); real rollout durations (Rollout's delays are
// milliseconds); regions beyond string matching, and project numbers; quotas
// and rate limits unless injected; the v1 (Knative) API and its reserved
// annotations on templates; show_deleted, list filters, and CancelOperation;
// the serving plane itself (see package fakeapp).
//
// The package imports no runrollback code: it models Google, not us.
package fakerun
