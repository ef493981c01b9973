package cloudrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Error is a failed Cloud Run call: the operation, the domain kind (for errors.Is)
// and what the API said.
type Error struct {
	Op      string     // what we were doing, e.g. `update traffic of "api"`
	Kind    error      // a rollback.Err* value
	Code    codes.Code // the gRPC code
	Message string     // the API's message
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (%s)", e.Op, e.Message, e.Code)
}

// Unwrap lets errors.Is match the domain kind.
func (e *Error) Unwrap() error { return e.Kind }

// mapErr converts an error from the generated client, of either transport,
// into an *Error with a domain kind. It is the one place gRPC codes are
// interpreted (statusOf reads them from REST errors).
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := statusOf(err)
	if !ok {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return &Error{Op: op, Kind: rollback.ErrUnavailable, Code: codes.DeadlineExceeded, Message: err.Error()}
		case errors.Is(err, context.Canceled):
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &Error{Op: op, Code: st.Code(), Message: st.Message()}
	switch st.Code() {
	case codes.NotFound:
		e.Kind = rollback.ErrNotFound
	case codes.Aborted:
		e.Kind = rollback.ErrConflict
	case codes.FailedPrecondition:
		msg := strings.ToLower(st.Message())
		switch {
		case strings.Contains(msg, "etag"):
			e.Kind = rollback.ErrConflict
		case strings.Contains(msg, "not ready"):
			e.Kind = rollback.ErrNotReady
		default:
			e.Kind = rollback.ErrRefused
		}
	case codes.PermissionDenied:
		e.Kind = rollback.ErrPermission
	case codes.Unauthenticated:
		e.Kind = rollback.ErrUnauthenticated
	case codes.Unavailable, codes.DeadlineExceeded:
		e.Kind = rollback.ErrUnavailable
	case codes.ResourceExhausted:
		e.Kind = rollback.ErrQuota
	case codes.InvalidArgument, codes.AlreadyExists, codes.OutOfRange:
		e.Kind = rollback.ErrInvalid
		if bad := badRequest(st); bad != "" {
			e.Message += ": " + bad
		}
	case codes.Canceled:
		return fmt.Errorf("%s: %w", op, context.Canceled)
	default:
		e.Kind = errors.New(strings.ToLower(st.Code().String()))
	}
	return e
}

// badRequest renders google.rpc.BadRequest field violations, if any.
func badRequest(st *status.Status) string {
	var parts []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				parts = append(parts, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	return strings.Join(parts, "; ")
}

// retryDelay is the delay a RESOURCE_EXHAUSTED or UNAVAILABLE error asks for
// through google.rpc.RetryInfo, or 0.
func retryDelay(err error) time.Duration {
	st, ok := statusOf(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// statusOf is the google.rpc.Status an error of either transport carries.
//
// A gRPC error carries it as is. A REST error (an apierror.APIError wrapping
// a googleapi.Error) carries it in its JSON body,
// {"error":{"code":409,"message":…,"status":"ABORTED","details":[…]}}; the
// code is read from "status", because the HTTP status folds codes together
// (400 is INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE; 409 ABORTED or
// ALREADY_EXISTS), and the details are decoded as gRPC's are. A REST body
// without a status (a proxy's page) falls back on the HTTP status, where a
// gateway's 502, 503 or 504 is UNAVAILABLE as gRPC reports them. A REST
// call that got no answer at all (connection refused or reset) is
// UNAVAILABLE, as it is over gRPC; a context's error is not a status.
func statusOf(err error) (*status.Status, bool) {
	if err == nil {
		return nil, false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return restStatus(ge), true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
			return st, true // gRPC's own status for a context's end
		}
		return nil, false
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) {
		return status.New(codes.Unavailable, err.Error()), true
	}
	return status.FromError(err)
}

// codeOf is the code of err as statusOf reads it; a context's end is
// DEADLINE_EXCEEDED or CANCELLED, any other error UNKNOWN.
func codeOf(err error) codes.Code {
	if st, ok := statusOf(err); ok {
		return st.Code()
	}
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// restStatus decodes the status in a REST error's body.
func restStatus(ge *googleapi.Error) *status.Status {
	var body struct {
		Error struct {
			Message string            `json:"message"`
			Status  string            `json:"status"`
			Details []json.RawMessage `json:"details"`
		} `json:"error"`
	}
	c, known := int32(0), false
	if json.Unmarshal([]byte(ge.Body), &body) == nil {
		c, known = code.Code_value[body.Error.Status]
	}
	if !known {
		switch ge.Code {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return status.New(codes.Unavailable, ge.Error())
		}
		if ae, ok := apierror.ParseError(ge, false); ok {
			return ae.GRPCStatus()
		}
		return status.New(codes.Unknown, ge.Error())
	}
	sp := &spb.Status{Code: c, Message: body.Error.Message}
	for _, raw := range body.Error.Details {
		var a anypb.Any
		if protojson.Unmarshal(raw, &a) == nil {
			sp.Details = append(sp.Details, &a)
		}
	}
	return status.FromProto(sp)
}
