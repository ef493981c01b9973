package fakerun

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

type opKind int

const (
	opRollout opKind = iota // create or update: reconcile a rollout
	opResult                // delete, validate_only: response is known
	opFail                  // FailOperations: ends with an error
)

// operation is one long-running operation.
type operation struct {
	seq      int64
	proto    *longrunningpb.Operation
	service  string // full name of the service it concerns
	kind     opKind
	timer    *time.Timer // completes it after the rollout's delay, or nil
	ro       rollout
	response proto.Message
	fail     *status.Status
}

// newOperation makes an operation in the service's location, with meta as its
// metadata, and stores it.
func (f *fake) newOperation(ref serviceRef, kind opKind, meta proto.Message) *operation {
	seq := f.nextSeq()
	name := ref.location() + "/operations/" + uuidFrom("operation", ref.fullName(), strconv.FormatInt(seq, 10))
	op := &operation{seq: seq, service: ref.fullName(), kind: kind, proto: &longrunningpb.Operation{Name: name}}
	op.setMetadata(meta)
	f.ops[name] = op
	return op
}

func (op *operation) setMetadata(m proto.Message) {
	if m == nil {
		return
	}
	if a, err := anypb.New(m); err == nil {
		op.proto.Metadata = a
	}
}

// start leaves op pending for the rollout's delay for its kind of write (or
// until released, while operations are held); with no delay it completes now.
func (f *fake) start(op *operation, kind writeKind) {
	if op.kind == opRollout {
		if st := f.services[op.service]; st != nil {
			f.markReconciling(st)
		}
	}
	f.pending = append(f.pending, op)
	switch d := f.rollout.delay(kind); {
	case f.hold:
	case d <= 0:
		f.completeThrough(op)
	default:
		op.timer = time.AfterFunc(d, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			select {
			case <-f.done:
				return
			default:
			}
			f.completeThrough(op)
		})
	}
	if f.holdAfter > 0 {
		f.holdAfter--
		f.hold = f.holdAfter == 0
	}
}

// completeThrough completes op, if it is still pending, and first every
// pending operation of its service started before it: the operations of a
// service complete in order.
func (f *fake) completeThrough(op *operation) {
	if !slices.Contains(f.pending, op) {
		return
	}
	for _, o := range slices.Clone(f.pending) {
		if o.service == op.service && o.seq <= op.seq {
			f.complete(o)
		}
	}
}

// completeService completes the pending operations of one service, oldest first.
func (f *fake) completeService(fullName string) {
	for _, op := range slices.Clone(f.pending) {
		if op.service == fullName {
			f.complete(op)
		}
	}
}

// completeAll completes every pending operation, oldest first.
func (f *fake) completeAll() {
	for len(f.pending) > 0 {
		f.complete(f.pending[0])
	}
}

// hasPendingRollout reports whether a rollout of the service is still
// pending: only rollouts show a service reconciling (a revision's deletion
// pending does not).
func (f *fake) hasPendingRollout(fullName string) bool {
	for _, op := range f.pending {
		if op.service == fullName && op.kind == opRollout {
			return true
		}
	}
	return false
}

// complete finishes a pending operation.
func (f *fake) complete(op *operation) {
	f.pending = slices.DeleteFunc(f.pending, func(o *operation) bool { return o == op })
	if op.timer != nil {
		op.timer.Stop()
	}
	var fail *status.Status
	var resp proto.Message
	switch op.kind {
	case opRollout:
		st := f.services[op.service]
		if st == nil {
			fail = status.New(codes.NotFound, "the service was deleted before the operation completed")
			break
		}
		fail = f.reconcile(st, op.ro)
		if f.hasPendingRollout(op.service) {
			f.markReconciling(st)
		} else {
			st.svc.Reconciling = false
		}
		resp = cloneService(st.svc)
		op.setMetadata(resp)
	case opResult:
		resp = op.response
	case opFail:
		fail = op.fail
	}
	op.proto.Done = true
	if fail != nil {
		op.proto.Result = &longrunningpb.Operation_Error{Error: fail.Proto()}
	} else if resp != nil {
		if a, err := anypb.New(resp); err == nil {
			op.proto.Result = &longrunningpb.Operation_Response{Response: a}
		}
	}
	if d := f.rollout.Retention; d > 0 {
		time.AfterFunc(d, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.ops[op.proto.GetName()] == op {
				delete(f.ops, op.proto.GetName())
			}
		})
	}
	close(f.opChanged)
	f.opChanged = make(chan struct{})
}

// operationsServer implements google.longrunning.Operations.
type operationsServer struct {
	longrunningpb.UnimplementedOperationsServer
	f *fake
}

func (o *operationsServer) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	f := o.f
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getOperation(req.GetName())
}

func (f *fake) getOperation(name string) (*longrunningpb.Operation, error) {
	if !opRE.MatchString(name) {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid operation name %q; want projects/PROJECT/locations/REGION/operations/ID.", name)
	}
	op := f.ops[name]
	if op == nil {
		return nil, status.Errorf(codes.NotFound, "Operation %q not found.", name)
	}
	return proto.Clone(op.proto).(*longrunningpb.Operation), nil
}

func (o *operationsServer) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	f := o.f
	if _, _, ok := parseLocation(req.GetName()); !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid location %q; want projects/PROJECT/locations/REGION.", req.GetName())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ops []*operation
	for name, op := range f.ops {
		if strings.HasPrefix(name, req.GetName()+"/operations/") {
			ops = append(ops, op)
		}
	}
	slices.SortFunc(ops, func(a, b *operation) int { return compareSeqDesc(a.seq, b.seq) })
	got, next, err := page(ops, func(op *operation) int64 { return op.seq }, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &longrunningpb.ListOperationsResponse{NextPageToken: next}
	for _, op := range got {
		resp.Operations = append(resp.Operations, proto.Clone(op.proto).(*longrunningpb.Operation))
	}
	return resp, nil
}

func (o *operationsServer) DeleteOperation(ctx context.Context, req *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	f := o.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.getOperation(req.GetName()); err != nil {
		return nil, err
	}
	delete(f.ops, req.GetName())
	return &emptypb.Empty{}, nil
}

func (o *operationsServer) CancelOperation(ctx context.Context, req *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "fakerun does not model cancelling operations: CancelOperation is not implemented.")
}

// WaitOperation returns when the operation is done, when the wait ends (the
// request's timeout, capped by Rollout.WaitMax; at once when WaitMax is 0),
// with the operation still pending, or when the caller gives up.
func (o *operationsServer) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	f := o.f
	f.mu.Lock()
	wait, capped := f.rollout.WaitMax, f.rollout.WaitMax >= 0
	f.mu.Unlock()
	if d := req.GetTimeout(); d != nil && (!capped || d.AsDuration() < wait) {
		wait, capped = d.AsDuration(), true
	}
	var timeout <-chan time.Time
	if capped {
		t := time.NewTimer(max(wait, 0))
		defer t.Stop()
		timeout = t.C
	}
	for {
		f.mu.Lock()
		op, err := f.getOperation(req.GetName())
		changed := f.opChanged
		f.mu.Unlock()
		if err != nil || op.GetDone() || (capped && wait <= 0) {
			return op, err
		}
		select {
		case <-changed:
		case <-timeout:
			return op, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-f.done:
			return nil, status.Error(codes.Unavailable, "fakerun: the server is shutting down")
		}
	}
}

// defaultPageSize and maxPageSize bound list pages.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page returns one page of items, which are sorted newest first (descending
// seq). A page token names the seq of the last item of the previous page, so
// pages stay consistent while items are added.
func page[T any](items []T, seqOf func(T) int64, size int32, token string) ([]T, string, error) {
	switch {
	case size < 0:
		return nil, "", status.Errorf(codes.InvalidArgument, "page_size must not be negative; got %d.", size)
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	start := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		after, ok := strings.CutPrefix(string(raw), "after:")
		n, perr := strconv.ParseInt(after, 10, 64)
		if err != nil || !ok || perr != nil {
			return nil, "", status.Errorf(codes.InvalidArgument, "Invalid page_token %q.", token)
		}
		start = len(items)
		for i, it := range items {
			if seqOf(it) < n {
				start = i
				break
			}
		}
	}
	end := min(start+int(size), len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("after:" + strconv.FormatInt(seqOf(items[end-1]), 10)))
	}
	return items[start:end], next, nil
}
