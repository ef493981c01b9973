package fakerun

import (
	"context"
	"fmt"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// servicesServer implements google.cloud.run.v2.Services.
type servicesServer struct {
	runpb.UnimplementedServicesServer
	f *fake
}

var replaceAll = &fieldmaskpb.FieldMask{Paths: []string{"*"}}

func invalidServiceName(name string) error {
	return status.Errorf(codes.InvalidArgument, "Invalid service name %q; want projects/PROJECT/locations/REGION/services/SERVICE.", name)
}

func (s *servicesServer) CreateService(ctx context.Context, req *runpb.CreateServiceRequest) (*longrunningpb.Operation, error) {
	project, region, ok := parseLocation(req.GetParent())
	if !ok || region == "-" {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid parent %q; want projects/PROJECT/locations/REGION.", req.GetParent())
	}
	id := req.GetServiceId()
	if !serviceIDRE.MatchString(id) {
		return nil, badRequest([]*errdetails.BadRequest_FieldViolation{violation("service_id",
			"Service name %q is invalid: it must use only lowercase letters, digits and hyphens, begin with a letter, not end with a hyphen, and be at most 49 characters long.", id)})
	}
	ref := serviceRef{project: project, region: region, id: id}
	if n := req.GetService().GetName(); n != "" && n != ref.fullName() {
		return nil, status.Errorf(codes.InvalidArgument, "service.name must be empty or %q; got %q.", ref.fullName(), n)
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services[ref.fullName()] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "Resource '%s' already exists.", id)
	}
	return f.create(ref, req.GetService(), req.GetValidateOnly())
}

// create makes a new service from in (CreateService, or UpdateService with
// allow_missing).
func (f *fake) create(ref serviceRef, in *runpb.Service, validateOnly bool) (*longrunningpb.Operation, error) {
	next := &runpb.Service{}
	if in != nil {
		if err := applyMask(next, in, replaceAll); err != nil {
			return nil, err
		}
	}
	next.Name = ref.fullName()
	vs := checkMetadata(next, true)
	newRev, err := f.planRevision(nil, ref, nil, next, false)
	if err != nil {
		return nil, err
	}
	vs = append(vs, checkTemplate(next.GetTemplate())...)
	next.Traffic = normalizeTraffic(next.GetTraffic())
	vs = append(vs, checkTraffic(ref.id, next.Traffic, knownRevision(nil, newRev))...)
	if len(vs) > 0 {
		return nil, badRequest(vs)
	}

	seq := f.nextSeq()
	now := timestamppb.New(f.now())
	next.Uid = uuidFrom("service", ref.fullName(), fmt.Sprint(seq))
	next.Generation = 1
	next.CreateTime = now
	next.UpdateTime = now
	if uri := f.urlFunc(ref.fullName(), ""); uri != "" {
		next.Uri = uri
		next.Urls = []string{uri}
	}
	st := &service{ref: ref, seq: seq, svc: next, revs: map[string]*revision{}}
	f.newEtag(st)
	if validateOnly {
		next.LatestCreatedRevision = revisionFullName(ref.fullName(), newRev)
		return f.resultOperation(ref, next), nil
	}
	f.writes++
	defer f.registry.wrote() // after the write is applied
	if op := f.failedOperation(ref, next, writeCreate); op != nil {
		return op, nil
	}
	f.services[ref.fullName()] = st
	f.addRevision(st, newRev, false)
	f.markReconciling(st)
	op := f.newOperation(ref, opRollout, cloneService(st.svc))
	op.ro = rollout{gen: 1, traffic: cloneTraffic(next.Traffic), newRev: newRev}
	f.start(op, writeCreate)
	return proto.Clone(op.proto).(*longrunningpb.Operation), nil
}

// resultOperation is a done operation with resp as response and metadata
// (validate_only).
func (f *fake) resultOperation(ref serviceRef, resp proto.Message) *longrunningpb.Operation {
	op := f.newOperation(ref, opResult, resp)
	op.response = resp
	f.complete(op)
	return proto.Clone(op.proto).(*longrunningpb.Operation)
}

// failedOperation consumes one FailOperations fault, if any, and returns the
// operation that will end with it; nil if there is none.
func (f *fake) failedOperation(ref serviceRef, meta proto.Message, kind writeKind) *longrunningpb.Operation {
	if len(f.failOps) == 0 {
		return nil
	}
	op := f.newOperation(ref, opFail, meta)
	op.fail = f.failOps[0]
	f.failOps = f.failOps[1:]
	f.start(op, kind)
	return proto.Clone(op.proto).(*longrunningpb.Operation)
}

// lookupService finds the service a request names. f.mu must be held.
func (f *fake) lookupService(name string) (serviceRef, *service, error) {
	ref, ok := parseService(name)
	if !ok {
		return ref, nil, invalidServiceName(name)
	}
	st := f.services[ref.fullName()]
	if st == nil {
		return ref, nil, notFoundService(ref)
	}
	return ref, st, nil
}

func cloneTraffic(t []*runpb.TrafficTarget) []*runpb.TrafficTarget {
	out := make([]*runpb.TrafficTarget, len(t))
	for i, x := range t {
		out[i] = proto.Clone(x).(*runpb.TrafficTarget)
	}
	return out
}

func (s *servicesServer) GetService(ctx context.Context, req *runpb.GetServiceRequest) (*runpb.Service, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	_, st, err := f.lookupService(req.GetName())
	if err != nil {
		return nil, err
	}
	return cloneService(st.svc), nil
}

func (s *servicesServer) ListServices(ctx context.Context, req *runpb.ListServicesRequest) (*runpb.ListServicesResponse, error) {
	project, region, ok := parseLocation(req.GetParent())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid parent %q; want projects/PROJECT/locations/REGION (REGION may be \"-\").", req.GetParent())
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []*service
	for _, st := range f.sortedServices() {
		if st.ref.project == project && (region == "-" || st.ref.region == region) {
			match = append(match, st)
		}
	}
	got, next, err := page(match, func(st *service) int64 { return st.seq }, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &runpb.ListServicesResponse{NextPageToken: next}
	for _, st := range got {
		resp.Services = append(resp.Services, cloneService(st.svc))
	}
	return resp, nil
}

func (s *servicesServer) UpdateService(ctx context.Context, req *runpb.UpdateServiceRequest) (*longrunningpb.Operation, error) {
	in := req.GetService()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "service is required.")
	}
	ref, ok := parseService(in.GetName())
	if !ok {
		return nil, invalidServiceName(in.GetName())
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.services[ref.fullName()]
	if st == nil {
		if !req.GetAllowMissing() {
			return nil, notFoundService(ref)
		}
		if !serviceIDRE.MatchString(ref.id) {
			return nil, invalidServiceName(in.GetName())
		}
		return f.create(ref, in, req.GetValidateOnly())
	}
	if bw := f.beforeWrite; bw != nil && (bw.service == "" || bw.service == ref.fullName()) {
		f.beforeWrite = nil
		if err := f.foreignWrite(st, bw.fn); err != nil {
			return nil, err
		}
	}
	if e := in.GetEtag(); e != "" && e != st.svc.GetEtag() {
		return nil, status.Errorf(codes.Aborted, "The etag %s in the request does not match the current etag %s of service '%s': it was changed since it was read. Read the service again and retry.", e, st.svc.GetEtag(), ref.id)
	}
	next := cloneService(st.svc)
	if err := applyMask(next, in, req.GetUpdateMask()); err != nil {
		return nil, err
	}
	newRev, err := f.checkUpdate(st, next, req.GetForceNewRevision())
	if err != nil {
		return nil, err
	}
	if req.GetValidateOnly() {
		next.Generation++
		if newRev != "" {
			next.LatestCreatedRevision = revisionFullName(ref.fullName(), newRev)
		}
		return f.resultOperation(ref, next), nil
	}
	f.writes++
	defer f.registry.wrote() // after the write is applied
	kind := writeUpdate
	if newRev != "" {
		kind = writeDeploy
	}
	if op := f.failedOperation(ref, cloneService(st.svc), kind); op != nil {
		return op, nil
	}
	ro := f.apply(st, next, newRev)
	f.markReconciling(st)
	op := f.newOperation(ref, opRollout, cloneService(st.svc))
	op.ro = ro
	f.start(op, kind)
	return proto.Clone(op.proto).(*longrunningpb.Operation), nil
}

// checkUpdate validates next as the new version of a stored service, and
// returns the name of the revision it creates ("" for none). It normalizes
// next.Traffic.
func (f *fake) checkUpdate(st *service, next *runpb.Service, force bool) (string, error) {
	newRev, err := f.planRevision(st, st.ref, st.svc, next, force)
	if err != nil {
		return "", err
	}
	vs := checkMetadata(next, newRev != "")
	if newRev != "" {
		vs = append(vs, checkTemplate(next.GetTemplate())...)
	}
	next.Traffic = normalizeTraffic(next.GetTraffic())
	vs = append(vs, checkTraffic(st.ref.id, next.Traffic, knownRevision(st, newRev))...)
	if len(vs) > 0 {
		return "", badRequest(vs)
	}
	return newRev, nil
}

// apply stores next as the service's new generation, creates newRev if it is
// set, and returns the rollout to reconcile.
func (f *fake) apply(st *service, next *runpb.Service, newRev string) rollout {
	next.Generation = st.svc.GetGeneration() + 1
	next.UpdateTime = timestamppb.New(f.now())
	st.svc = next
	f.newEtag(st)
	if newRev != "" {
		f.addRevision(st, newRev, false)
	}
	return rollout{gen: next.Generation, traffic: cloneTraffic(next.Traffic), newRev: newRev}
}

// foreignWrite lets fn change the stored service, as another writer would,
// and stores the change at once.
func (f *fake) foreignWrite(st *service, fn func(*runpb.Service)) error {
	f.completeService(st.ref.fullName())
	changed := cloneService(st.svc)
	fn(changed)
	if proto.Equal(changed, st.svc) {
		return nil
	}
	next := cloneService(st.svc)
	if err := applyMask(next, changed, replaceAll); err != nil {
		return status.Errorf(codes.Internal, "fakerun: the concurrent write is invalid: %v", err)
	}
	newRev, err := f.checkUpdate(st, next, false)
	if err != nil {
		return status.Errorf(codes.Internal, "fakerun: the concurrent write is invalid: %v", err)
	}
	ro := f.apply(st, next, newRev)
	f.reconcile(st, ro)
	st.svc.Reconciling = false
	return nil
}

func (s *servicesServer) DeleteService(ctx context.Context, req *runpb.DeleteServiceRequest) (*longrunningpb.Operation, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	ref, st, err := f.lookupService(req.GetName())
	if err != nil {
		return nil, err
	}
	if e := req.GetEtag(); e != "" && e != st.svc.GetEtag() {
		return nil, status.Errorf(codes.Aborted, "The etag %s in the request does not match the current etag %s of service '%s'.", e, st.svc.GetEtag(), ref.id)
	}
	if req.GetValidateOnly() {
		return f.resultOperation(ref, cloneService(st.svc)), nil
	}
	f.writes++
	defer f.registry.wrote() // after the write is applied
	if op := f.failedOperation(ref, cloneService(st.svc), writeDelete); op != nil {
		return op, nil
	}
	f.completeService(ref.fullName())
	delete(f.services, ref.fullName())
	gone := cloneService(st.svc)
	gone.DeleteTime = timestamppb.New(f.now())
	op := f.newOperation(ref, opResult, gone)
	op.response = gone
	f.start(op, writeDelete)
	return proto.Clone(op.proto).(*longrunningpb.Operation), nil
}
