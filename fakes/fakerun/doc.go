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
//   - Operations projects/P/locations/R/operations/ID, with the Service (the
//     Revision for DeleteRevision) as metadata and response, or an error.
//     A write returns its operation not done; it completes after the
//     Rollout delay for its kind of write (or when released, while
//     HoldOperations is on), and only then does the service route by it.
//     WaitOperation may answer before its timeout with the operation not
//     done (by default at once); a finished operation is forgotten after
//     Rollout.Retention (NOT_FOUND). GetOperation, ListOperations,
//     DeleteOperation and WaitOperation work.
//
// # Where each behaviour comes from
//
// Where Cloud Run's behaviour is documented, the fake does that; where it is
// not, it takes the stricter plausible reading and says so ("unverified").
// fakes/README.md has the same list as a table.
//
//   - Tag + service name at most 46 characters: Cloud Run's refusal message,
//     "Combined traffic tag and service name cannot exceed 46 characters" (the
//     tag URL's host label TAG---SERVICE-HASH is a 63-character DNS label).
//     No documentation page states it: observed, not documented.
//   - Annotations and labels: the annotations and labels field comments of
//     Service and RevisionTemplate (google/cloud/run/v2/service.proto,
//     revision_template.proto): Kubernetes rules, the four reserved
//     namespaces; labels per
//     https://cloud.google.com/resource-manager/docs/creating-managing-labels.
//     That client.knative.dev/user-image is accepted follows from it not being
//     reserved there.
//   - Asynchronous rollouts: the Service.reconciling comment (service.proto:
//     traffic_statuses, observed_generation and latest_ready_revision keep
//     their values until reconciliation ends) and "traffic routing
//     adjustments are not instantaneous"
//     (https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration).
//     The delays are the fake's own (milliseconds).
//   - WaitOperation answering early: google/longrunning/operations.proto,
//     WaitOperation: "may return the latest state before the specified
//     timeout (including immediately)". Answering at once is the strictest
//     reading.
//   - Forgotten operations: unverified (how long Cloud Run keeps an operation
//     is not documented); the stricter choice is to forget after a minute.
//   - Image tags resolved at revision creation: "If you deploy from a
//     container image tag, it will be resolved to a digest and the revision
//     will always serve this particular digest"
//     (https://cloud.google.com/artifact-registry/docs/integrate-cloud-run);
//     force_new_revision's comment in service.proto names the case ("the
//     image is specified by label, but the underlying image digest has
//     changed"). The v2 Revision message has no digest field (the v1
//     RevisionStatus.imageDigest has; the v2 ContainerStatus.image_digest is
//     on Instance only), so the fake shows containers[].image as given.
//     Whether Cloud Run's v2 answer rewrites it to the digest is unverified:
//     a client must rely on neither.
//   - LATEST is the latest Ready revision: TrafficTargetAllocationType in
//     traffic_target.proto ("Allocates instances to the Service's latest
//     ready Revision"), Service.traffic ("defaults to 100% traffic to the
//     latest Ready Revision"), and v1's TrafficTarget.latestRevision ("Uses
//     the status.latestReadyRevisionName of the Service").
//   - Ready after a failed revision: the Service.reconciling comment (a
//     failed reconciliation keeps the last serving state; a successful one
//     leaves latest_ready_revision equal to latest_created_revision). That
//     Ready stays FAILED after a later write without a revision rolls out is
//     unverified: the stricter reading, relaxed by
//     Rollout.ReadyDespiteFailedRevision. The not-ready message follows
//     Cloud Run's, which points to
//     https://cloud.google.com/run/docs/troubleshooting#container-failed-to-start.
//   - Deletions refused: a revision cannot be deleted while it can receive
//     traffic, is the only revision, or is the latest one
//     (https://cloud.google.com/run/docs/managing/revisions, "Delete a
//     revision"). A tag URL receives traffic, so a tagged revision counts;
//     refusing a revision that only the desired traffic names is
//     unverified: the stricter choice.
//   - Stale etag ABORTED: the etag field comments ("May be used to detect
//     modification conflict during updates") and google/rpc/code.proto
//     (ABORTED when "a client-specified test-and-set fails").
//   - Traffic validation: which splits are refused follows Cloud Run (percents
//     summing to 100, revisions that exist, unique tags, one LATEST); that
//     the fake refuses them at the call with INVALID_ARGUMENT and a
//     BadRequest, and its wording, are unverified (Cloud Run may instead fail
//     the operation, as for "Revision '…' does not exist or is deleted").
//
// # Faults, seeding and inspection
//
// Seed and DefaultWorld set up services and images; Service, Revisions,
// RevisionImage, Images, ResolveImage, Calls, Writes, Routes and FindURL
// inspect them; PushImage and PushImageAfterWrites move image tags. WithRollout
// and SetRollout set the operation delays. FailNext, FailNextWithDetails,
// FailAfter (fail the Nth call), LoseReply, SetLatency, HoldOperations,
// HoldOperationsAfter (hold from the Nth write on), FailOperations and
// BeforeWrite inject faults, counted and deterministic, never random.
// ControlHandler offers the same to other processes as JSON over HTTP (see
// fakes/README.md).
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
