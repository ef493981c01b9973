package fakerun

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// service is one stored service with its revisions.
type service struct {
	ref  serviceRef
	seq  int64
	svc  *runpb.Service // stored, with status fields kept current
	revs map[string]*revision
	// revCount is the NNNNN of the last revision created for the service.
	revCount int
	// failure is the message of the last failed rollout; "" once a later
	// generation has been served.
	failure string
}

// revision is one stored revision.
type revision struct {
	seq int64
	rev *runpb.Revision
	// tpl is the template the revision was built from, revision name cleared.
	tpl *runpb.RevisionTemplate
	// ready says whether the revision becomes Ready once it settles.
	ready bool
	// images is what each container's image resolved to when the revision
	// was created; env is what the serving container's app sees.
	images []resolvedImage
	env    map[string]string
	// settled is false while the operation that created it is pending.
	settled bool
}

func (st *service) sortedRevisions() []*revision {
	out := make([]*revision, 0, len(st.revs))
	for _, r := range st.revs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *revision) int { return compareSeqDesc(a.seq, b.seq) })
	return out
}

// latestCreated is the short name of the newest revision, or "".
func (st *service) latestCreated() string {
	return shortName(st.svc.GetLatestCreatedRevision())
}

// latestReady is the newest settled, Ready revision, or "".
func (st *service) latestReady() string {
	for _, r := range st.sortedRevisions() {
		if r.settled && r.ready {
			return shortName(r.rev.Name)
		}
	}
	return ""
}

// notReadyMessage is Cloud Run's message for a revision that failed to start.
func notReadyMessage(ref serviceRef, rev string) string {
	return fmt.Sprintf("Revision '%s' is not ready and cannot serve traffic. "+
		"The user-provided container failed to start and listen on the port defined provided by "+
		"the PORT=8080 environment variable within the allocated timeout. "+
		"This can happen when the container port is misconfigured or if the timeout is too short. "+
		"The health check timeout can be extended. Logs for this revision might contain more information.\n\n"+
		"Logs URL: https://console.cloud.google.com/logs/viewer?project=%s&resource=cloud_run_revision/service_name/%s/revision_name/%s\n"+
		"For more troubleshooting guidance, see https://cloud.google.com/run/docs/troubleshooting#container-failed-to-start",
		rev, ref.project, ref.id, rev)
}

func notFoundService(ref serviceRef) error {
	return status.Errorf(codes.NotFound, "Resource '%s' of kind 'SERVICE' in region '%s' in project '%s' does not exist.", ref.id, ref.region, ref.project)
}

func notFoundRevision(ref serviceRef, rev string) error {
	return status.Errorf(codes.NotFound, "Resource '%s' of kind 'REVISION' in region '%s' in project '%s' does not exist.", rev, ref.region, ref.project)
}

// badRequest is INVALID_ARGUMENT with a google.rpc.BadRequest detail.
func badRequest(violations []*errdetails.BadRequest_FieldViolation) error {
	descs := make([]string, len(violations))
	for i, v := range violations {
		descs[i] = v.GetDescription()
	}
	st := status.New(codes.InvalidArgument, strings.Join(descs, " "))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: violations}); err == nil {
		st = d
	}
	return st.Err()
}

func violation(field, format string, args ...any) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)}
}

// checkTemplate validates what a new revision needs.
func checkTemplate(tpl *runpb.RevisionTemplate) []*errdetails.BadRequest_FieldViolation {
	if tpl == nil {
		return []*errdetails.BadRequest_FieldViolation{violation("service.template", "A revision template is required.")}
	}
	if len(tpl.GetContainers()) == 0 {
		return []*errdetails.BadRequest_FieldViolation{violation("service.template.containers", "At least one container is required.")}
	}
	var vs []*errdetails.BadRequest_FieldViolation
	for i, c := range tpl.GetContainers() {
		if c.GetImage() == "" {
			vs = append(vs, violation(fmt.Sprintf("service.template.containers[%d].image", i), "Container %d has no image.", i))
		}
	}
	return vs
}

const (
	typeLatest   = runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
	typeRevision = runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
)

// normalizeTraffic returns the traffic to store: empty means 100% LATEST, and
// a target with an unspecified type that names a revision is a REVISION
// target.
func normalizeTraffic(traffic []*runpb.TrafficTarget) []*runpb.TrafficTarget {
	if len(traffic) == 0 {
		return []*runpb.TrafficTarget{{Type: typeLatest, Percent: 100}}
	}
	out := make([]*runpb.TrafficTarget, len(traffic))
	for i, t := range traffic {
		t = proto.Clone(t).(*runpb.TrafficTarget)
		if t.Type == runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED && t.Revision != "" {
			t.Type = typeRevision
		}
		out[i] = t
	}
	return out
}

// maxTagAndServiceLen bounds a tag plus the service's name: the tag URL's
// host starts with the DNS label <tag>---<service>-<hash>, and Cloud Run
// refuses longer pairs ("Combined traffic tag and service name cannot exceed
// 46 characters").
const maxTagAndServiceLen = 46

// checkTraffic validates a (normalized) traffic list of service serviceID.
// exists reports whether a short revision name exists (or is being created by
// the same request).
func checkTraffic(serviceID string, traffic []*runpb.TrafficTarget, exists func(rev string) bool) []*errdetails.BadRequest_FieldViolation {
	const field = "service.traffic"
	var vs []*errdetails.BadRequest_FieldViolation
	var sum int32
	latest := 0
	tags := map[string]bool{}
	for i, t := range traffic {
		switch t.GetType() {
		case typeLatest:
			latest++
			if t.GetRevision() != "" {
				vs = append(vs, violation(field, "Traffic target %d is of type TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST and must not name a revision (got %q).", i, t.GetRevision()))
			}
		case typeRevision:
			switch {
			case t.GetRevision() == "":
				vs = append(vs, violation(field, "Traffic target %d is of type TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION but names no revision.", i))
			case !exists(t.GetRevision()):
				vs = append(vs, violation(field, "Revision %q referenced in traffic not found.", t.GetRevision()))
			}
		default:
			vs = append(vs, violation(field, "Traffic target %d names neither a revision nor type TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST.", i))
		}
		if p := t.GetPercent(); p < 0 || p > 100 {
			vs = append(vs, violation(field, "Traffic target %d has percent %d; a percent must be between 0 and 100.", i, p))
		}
		sum += t.GetPercent()
		if tag := t.GetTag(); tag != "" {
			if !tagRE.MatchString(tag) {
				vs = append(vs, violation(field, "Tag %q is invalid: a tag must consist of lowercase letters, digits and hyphens, start with a letter, not end with a hyphen, and be at most 46 characters long.", tag))
			}
			if tagRE.MatchString(tag) && len(tag)+len(serviceID) > maxTagAndServiceLen {
				vs = append(vs, violation(field, "traffic tag '%s' and service name '%s' together are too long. Combined traffic tag and service name cannot exceed %d characters.", tag, serviceID, maxTagAndServiceLen))
			}
			if tags[tag] {
				vs = append(vs, violation(field, "Multiple definitions for tag %q.", tag))
			}
			tags[tag] = true
		}
	}
	if latest > 1 {
		vs = append(vs, violation(field, "Only one traffic target may be of type TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST; got %d.", latest))
	}
	if sum != 100 {
		vs = append(vs, violation(field, "Traffic targets sum to %d, want 100.", sum))
	}
	return vs
}

// outputOnly are the Service fields a client cannot set. "name" and "etag"
// identify the resource and its version rather than being updated.
var outputOnly = map[protoreflect.Name]bool{
	"name": true, "uid": true, "generation": true, "create_time": true, "update_time": true,
	"delete_time": true, "expire_time": true, "creator": true, "last_modifier": true,
	"observed_generation": true, "terminal_condition": true, "conditions": true,
	"latest_ready_revision": true, "latest_created_revision": true, "traffic_statuses": true,
	"uri": true, "urls": true, "satisfies_pzs": true, "reconciling": true, "etag": true,
}

// applyMask copies the fields of src named by mask into dst. An empty mask
// copies every mutable field src sets; "*" replaces every mutable field.
func applyMask(dst, src *runpb.Service, mask *fieldmaskpb.FieldMask) error {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	fields := d.Descriptor().Fields()
	copyField := func(dm, sm protoreflect.Message, fd protoreflect.FieldDescriptor) {
		if sm.Has(fd) {
			dm.Set(fd, sm.Get(fd))
		} else {
			dm.Clear(fd)
		}
	}
	paths := mask.GetPaths()
	if len(paths) == 0 {
		for i := range fields.Len() {
			if fd := fields.Get(i); !outputOnly[fd.Name()] && s.Has(fd) {
				d.Set(fd, s.Get(fd))
			}
		}
		return nil
	}
	for _, p := range paths {
		if p == "*" {
			for i := range fields.Len() {
				if fd := fields.Get(i); !outputOnly[fd.Name()] {
					copyField(d, s, fd)
				}
			}
			continue
		}
		parts := strings.Split(p, ".")
		dm, sm := d, s
		for i, part := range parts {
			fd := dm.Descriptor().Fields().ByName(protoreflect.Name(part))
			if fd == nil {
				fd = dm.Descriptor().Fields().ByJSONName(part)
			}
			if fd == nil {
				return status.Errorf(codes.InvalidArgument, "update_mask path %q: no field %q in %s.", p, part, dm.Descriptor().Name())
			}
			if i == 0 && outputOnly[fd.Name()] {
				return status.Errorf(codes.InvalidArgument, "update_mask path %q names an output-only field.", p)
			}
			if i == len(parts)-1 {
				copyField(dm, sm, fd)
				break
			}
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				return status.Errorf(codes.InvalidArgument, "update_mask path %q: %q is not a message field.", p, part)
			}
			dm = dm.Mutable(fd).Message()
			sm = sm.Get(fd).Message()
		}
	}
	return nil
}

// templateKey is a template without its revision name, for comparisons.
func templateKey(tpl *runpb.RevisionTemplate) *runpb.RevisionTemplate {
	if tpl == nil {
		return &runpb.RevisionTemplate{}
	}
	c := proto.Clone(tpl).(*runpb.RevisionTemplate)
	c.Revision = ""
	return c
}

// planRevision decides whether writing next over the stored service (cur may
// be nil for a new service) creates a revision, and what it is called.
func (f *fake) planRevision(st *service, ref serviceRef, cur, next *runpb.Service, force bool) (string, error) {
	tpl := next.GetTemplate()
	if named := tpl.GetRevision(); named != "" {
		if !strings.HasPrefix(named, ref.id+"-") || !revisionIDRE.MatchString(named) {
			return "", badRequest([]*errdetails.BadRequest_FieldViolation{violation("service.template.revision",
				"Revision name %q must start with the service name followed by a hyphen (%q), and be a valid DNS label of at most 63 characters.", named, ref.id+"-")})
		}
		if st != nil {
			if existing := st.revs[named]; existing != nil {
				if !proto.Equal(existing.tpl, templateKey(tpl)) {
					return "", status.Errorf(codes.AlreadyExists, "Revision named '%s' with different configuration already exists.", named)
				}
				if named != st.latestCreated() {
					return "", status.Errorf(codes.AlreadyExists, "Revision named '%s' already exists and is not the latest revision of service '%s'; an older revision cannot become the latest again. Name a new revision or leave template.revision empty.", named, ref.id)
				}
				if force {
					return "", status.Errorf(codes.AlreadyExists, "Revision named '%s' already exists; force_new_revision needs a new revision name.", named)
				}
				return "", nil
			}
		}
		return named, nil
	}
	if cur != nil && !force && proto.Equal(templateKey(cur.GetTemplate()), templateKey(tpl)) {
		return "", nil
	}
	n := 1
	if st != nil {
		n = st.revCount + 1
	}
	return generatedRevisionName(ref.fullName(), ref.id, n), nil
}

// addRevision stores a new revision built from the service's template. It
// settles at once unless settle is false.
func (f *fake) addRevision(st *service, name string, settle bool) *revision {
	now := timestamppb.New(f.now())
	seq := f.nextSeq()
	tpl := st.svc.GetTemplate()
	full := revisionFullName(st.ref.fullName(), name)
	rev := &runpb.Revision{
		Name:        full,
		Uid:         uuidFrom("revision", full, strconv.FormatInt(seq, 10)),
		Generation:  1,
		Labels:      copyMap(tpl.GetLabels()),
		Annotations: copyMap(tpl.GetAnnotations()),
		CreateTime:  now,
		UpdateTime:  now,
		Service:     st.ref.fullName(),
		Etag:        etagFrom("revision", full, strconv.FormatInt(seq, 10)),
		LogUri: fmt.Sprintf("https://console.cloud.google.com/logs/viewer?project=%s&resource=cloud_run_revision/service_name/%s/revision_name/%s",
			st.ref.project, st.ref.id, name),
	}
	copySameNamedFields(rev, tpl)
	resolved := f.resolveContainers(tpl)
	r := &revision{seq: seq, rev: rev, tpl: templateKey(tpl), ready: !breaks(tpl.GetContainers(), resolved), images: resolved}
	if i := servingContainer(tpl.GetContainers()); i >= 0 {
		r.env = runtimeEnv(tpl.GetContainers()[i], resolved[i])
	}
	st.revs[name] = r
	st.revCount = max(st.revCount+1, generatedNumber(st.ref.id, name))
	st.svc.LatestCreatedRevision = full
	f.setRevisionConditions(st, r, settle)
	return r
}

// setRevisionConditions fills a revision's status: pending, Ready, or failed.
func (f *fake) setRevisionConditions(st *service, r *revision, settled bool) {
	now := timestamppb.New(f.now())
	r.settled = settled
	r.rev.ObservedGeneration = 1
	r.rev.Reconciling = !settled
	name := shortName(r.rev.Name)
	switch {
	case !settled:
		r.rev.ObservedGeneration = 0
		r.rev.Conditions = []*runpb.Condition{
			{Type: "Ready", State: runpb.Condition_CONDITION_RECONCILING, LastTransitionTime: now},
			{Type: "ContainerHealthy", State: runpb.Condition_CONDITION_RECONCILING, LastTransitionTime: now},
			{Type: "ResourcesAvailable", State: runpb.Condition_CONDITION_RECONCILING, LastTransitionTime: now},
		}
	case r.ready:
		r.rev.Conditions = []*runpb.Condition{
			{Type: "Ready", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now},
			{Type: "ContainerHealthy", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now},
			{Type: "ResourcesAvailable", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now},
		}
	default:
		msg := notReadyMessage(st.ref, name)
		r.rev.Conditions = []*runpb.Condition{
			{Type: "Ready", State: runpb.Condition_CONDITION_FAILED, Message: msg, LastTransitionTime: now, Severity: runpb.Condition_ERROR,
				Reasons: &runpb.Condition_RevisionReason_{RevisionReason: runpb.Condition_HEALTH_CHECK_CONTAINER_ERROR}},
			{Type: "ContainerHealthy", State: runpb.Condition_CONDITION_FAILED, Message: msg, LastTransitionTime: now, Severity: runpb.Condition_ERROR},
			{Type: "ResourcesAvailable", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now},
		}
	}
}

// copySameNamedFields copies every field of tpl into rev whose name and type
// match (containers, scaling, timeout, service_account, ...), except labels,
// annotations and the revision name.
func copySameNamedFields(rev *runpb.Revision, tpl *runpb.RevisionTemplate) {
	if tpl == nil {
		return
	}
	// Copy from a clone so that rev shares nothing with tpl.
	r, t := rev.ProtoReflect(), proto.Clone(tpl).ProtoReflect()
	tf := t.Descriptor().Fields()
	for i := range tf.Len() {
		fd := tf.Get(i)
		switch fd.Name() {
		case "revision", "labels", "annotations":
			continue
		}
		rd := r.Descriptor().Fields().ByName(fd.Name())
		if rd == nil || rd.Kind() != fd.Kind() || rd.Cardinality() != fd.Cardinality() || rd.IsMap() != fd.IsMap() {
			continue
		}
		if fd.Kind() == protoreflect.MessageKind && rd.Message().FullName() != fd.Message().FullName() {
			continue
		}
		if fd.Kind() == protoreflect.EnumKind && rd.Enum().FullName() != fd.Enum().FullName() {
			continue
		}
		if t.Has(fd) {
			r.Set(rd, t.Get(fd))
		}
	}
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// rollout is what one accepted write asks Cloud Run to serve.
type rollout struct {
	gen     int64
	traffic []*runpb.TrafficTarget
	newRev  string // revision created by the write, or ""
}

// reconcile settles a rollout: the new revision becomes Ready or fails, and
// the actual split follows the desired one unless a revision it needs is not
// Ready. A LATEST target resolves to the latest Ready revision at that moment
// ("Allocates instances to the Service's latest ready Revision",
// TrafficTargetAllocationType in traffic_target.proto; v1's latestRevision
// "uses the status.latestReadyRevisionName of the Service"): never to a
// revision that failed to start, nor to one whose rollout has not finished.
// It returns the failure, if any, as a status.
func (f *fake) reconcile(st *service, ro rollout) *status.Status {
	if r := st.revs[ro.newRev]; r != nil && !r.settled {
		f.setRevisionConditions(st, r, true)
	}
	// Find a revision the rollout needs that is not Ready.
	var broken string
	if r := st.revs[ro.newRev]; r != nil && !r.ready {
		broken = ro.newRev
	}
	latest := st.latestReady()
	if latest == "" {
		latest = st.latestCreated() // none is Ready: LATEST cannot be served
	}
	statuses := make([]*runpb.TrafficTargetStatus, 0, len(ro.traffic))
	for _, t := range ro.traffic {
		rev := t.GetRevision()
		if t.GetType() == typeLatest {
			rev = latest
		}
		if r := st.revs[rev]; broken == "" && (r == nil || !r.ready) && (t.GetPercent() > 0 || t.GetTag() != "") {
			broken = rev
		}
		ts := &runpb.TrafficTargetStatus{Type: t.GetType(), Revision: rev, Percent: t.GetPercent(), Tag: t.GetTag()}
		if t.GetTag() != "" {
			ts.Uri = f.urlFunc(st.ref.fullName(), t.GetTag())
		}
		statuses = append(statuses, ts)
	}
	now := timestamppb.New(f.now())
	svc := st.svc
	if broken != "" {
		msg := notReadyMessage(st.ref, broken)
		st.failure = msg
		svc.TerminalCondition = revisionFailed(msg, now)
		f.setServiceConditions(st, now, msg)
		return status.New(codes.FailedPrecondition, msg)
	}
	st.failure = ""
	svc.TrafficStatuses = statuses
	svc.ObservedGeneration = ro.gen
	if lr := st.latestReady(); lr != "" {
		svc.LatestReadyRevision = revisionFullName(st.ref.fullName(), lr)
	}
	svc.TerminalCondition = &runpb.Condition{Type: "Ready", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now}
	if lc := st.latestCreated(); !f.rollout.ReadyDespiteFailedRevision {
		if r := st.revs[lc]; r != nil && r.settled && !r.ready {
			// The rollout served, but the latest created revision failed:
			// not Ready until a later revision is (see Rollout).
			svc.TerminalCondition = revisionFailed(notReadyMessage(st.ref, lc), now)
		}
	}
	f.setServiceConditions(st, now, "")
	return nil
}

// revisionFailed is a service's Ready condition after a revision failed.
func revisionFailed(msg string, now *timestamppb.Timestamp) *runpb.Condition {
	return &runpb.Condition{Type: "Ready", State: runpb.Condition_CONDITION_FAILED, Message: msg,
		LastTransitionTime: now, Severity: runpb.Condition_ERROR,
		Reasons: &runpb.Condition_Reason{Reason: runpb.Condition_REVISION_FAILED}}
}

// setServiceConditions sets the RoutesReady and ConfigurationsReady
// conditions; routeFailure is the message of a failed rollout, or "".
func (f *fake) setServiceConditions(st *service, now *timestamppb.Timestamp, routeFailure string) {
	routes := &runpb.Condition{Type: "RoutesReady", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now}
	if routeFailure != "" {
		routes = &runpb.Condition{Type: "RoutesReady", State: runpb.Condition_CONDITION_FAILED, Message: routeFailure, LastTransitionTime: now, Severity: runpb.Condition_ERROR}
	}
	configs := &runpb.Condition{Type: "ConfigurationsReady", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: now}
	if r := st.revs[st.latestCreated()]; r != nil && r.settled && !r.ready {
		configs = &runpb.Condition{Type: "ConfigurationsReady", State: runpb.Condition_CONDITION_FAILED,
			Message: notReadyMessage(st.ref, st.latestCreated()), LastTransitionTime: now, Severity: runpb.Condition_ERROR}
	}
	st.svc.Conditions = []*runpb.Condition{routes, configs}
}

// markReconciling shows a service as rolling out.
func (f *fake) markReconciling(st *service) {
	now := timestamppb.New(f.now())
	st.svc.Reconciling = true
	st.svc.TerminalCondition = &runpb.Condition{Type: "Ready", State: runpb.Condition_CONDITION_RECONCILING, LastTransitionTime: now}
}

// newEtag gives the service a fresh etag.
func (f *fake) newEtag(st *service) {
	st.svc.Etag = etagFrom("service", st.ref.fullName(), strconv.FormatInt(st.svc.Generation, 10), strconv.FormatInt(f.nextSeq(), 10))
}

// knownRevision returns an exists func for checkTraffic over the stored
// revisions plus extra (a revision being created).
func knownRevision(st *service, extra string) func(string) bool {
	return func(rev string) bool {
		if rev == extra && extra != "" {
			return true
		}
		return st != nil && st.revs[rev] != nil
	}
}
