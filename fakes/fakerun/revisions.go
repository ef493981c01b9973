package fakerun

import (
	"context"
	"fmt"
	"slices"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// revisionsServer implements google.cloud.run.v2.Revisions.
type revisionsServer struct {
	runpb.UnimplementedRevisionsServer
	f *fake
}

// lookupRevision finds the service and the revision (short name) a request
// names. f.mu must be held.
func (f *fake) lookupRevision(name string) (*service, string, error) {
	ref, rev, ok := parseRevision(name)
	if !ok {
		return nil, "", invalidRevisionName(name)
	}
	st := f.services[ref.fullName()]
	if st == nil || st.revs[rev] == nil {
		return nil, "", notFoundRevision(ref, rev)
	}
	return st, rev, nil
}

func invalidRevisionName(name string) error {
	return status.Errorf(codes.InvalidArgument, "Invalid revision name %q; want projects/PROJECT/locations/REGION/services/SERVICE/revisions/REVISION.", name)
}

func (s *revisionsServer) GetRevision(ctx context.Context, req *runpb.GetRevisionRequest) (*runpb.Revision, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	st, rev, err := f.lookupRevision(req.GetName())
	if err != nil {
		return nil, err
	}
	return proto.Clone(st.revs[rev].rev).(*runpb.Revision), nil
}

// ListRevisions lists the revisions of one service, newest first. As in Cloud
// Run, the service (and the region) may be "-" to list across them.
func (s *revisionsServer) ListRevisions(ctx context.Context, req *runpb.ListRevisionsRequest) (*runpb.ListRevisionsResponse, error) {
	ref, ok := parseService(req.GetParent())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid parent %q; want projects/PROJECT/locations/REGION/services/SERVICE (SERVICE may be \"-\").", req.GetParent())
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref.id != "-" && ref.region != "-" && f.services[ref.fullName()] == nil {
		return nil, notFoundService(ref)
	}
	var revs []*revision
	for _, st := range f.services {
		if st.ref.project == ref.project && (ref.region == "-" || st.ref.region == ref.region) && (ref.id == "-" || st.ref.id == ref.id) {
			for _, r := range st.revs {
				revs = append(revs, r)
			}
		}
	}
	slices.SortFunc(revs, func(a, b *revision) int { return compareSeqDesc(a.seq, b.seq) })
	got, next, err := page(revs, func(r *revision) int64 { return r.seq }, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &runpb.ListRevisionsResponse{NextPageToken: next}
	for _, r := range got {
		resp.Revisions = append(resp.Revisions, proto.Clone(r.rev).(*runpb.Revision))
	}
	return resp, nil
}

func (s *revisionsServer) DeleteRevision(ctx context.Context, req *runpb.DeleteRevisionRequest) (*longrunningpb.Operation, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	st, rev, err := f.lookupRevision(req.GetName())
	if err != nil {
		return nil, err
	}
	ref := st.ref
	r := st.revs[rev]
	if e := req.GetEtag(); e != "" && e != r.rev.GetEtag() {
		return nil, status.Errorf(codes.Aborted, "The etag %s in the request does not match the current etag %s of revision '%s'.", e, r.rev.GetEtag(), rev)
	}
	if reason := deleteRefusal(st, rev); reason != "" {
		return nil, status.Error(codes.FailedPrecondition, reason)
	}
	if req.GetValidateOnly() {
		return f.resultOperation(ref, proto.Clone(r.rev)), nil
	}
	f.writes++
	defer f.registry.wrote() // after the write is applied
	if op := f.failedOperation(ref, proto.Clone(r.rev), writeDelete); op != nil {
		return op, nil
	}
	delete(st.revs, rev)
	gone := proto.Clone(r.rev).(*runpb.Revision)
	gone.DeleteTime = timestamppb.New(f.now())
	op := f.newOperation(ref, opResult, gone)
	op.response = gone
	f.start(op, writeDelete)
	return proto.Clone(op.proto).(*longrunningpb.Operation), nil
}

// deleteRefusal says why Cloud Run would refuse to delete a revision, or "".
func deleteRefusal(st *service, rev string) string {
	prefix := fmt.Sprintf("Revision '%s' cannot be deleted because", rev)
	if len(st.revs) == 1 {
		return fmt.Sprintf("%s it is the only revision of service '%s'. Delete the service instead.", prefix, st.ref.id)
	}
	if rev == st.latestCreated() {
		return fmt.Sprintf("%s it is the latest created revision of service '%s'. Deploy a newer revision first.", prefix, st.ref.id)
	}
	for _, ts := range st.svc.GetTrafficStatuses() {
		if ts.GetRevision() != rev {
			continue
		}
		if ts.GetPercent() > 0 {
			return fmt.Sprintf("%s it is serving %d%% of the traffic of service '%s'. Move its traffic to other revisions first.", prefix, ts.GetPercent(), st.ref.id)
		}
		if ts.GetTag() != "" {
			return fmt.Sprintf("%s it is tagged '%s' in the traffic of service '%s'. Remove the tag first.", prefix, ts.GetTag(), st.ref.id)
		}
	}
	for _, t := range st.svc.GetTraffic() {
		if t.GetRevision() == rev {
			return fmt.Sprintf("%s the traffic configuration of service '%s' names it. Remove it from the traffic first.", prefix, st.ref.id)
		}
	}
	return ""
}
