package cloudrun

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// mapErr converts an error from the generated client into an *Error with a domain
// kind. It is the one place gRPC codes are interpreted.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
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
	st, ok := status.FromError(err)
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
