package cloudrun

import (
	"context"
	"errors"
	"net/url"
	"syscall"
	"testing"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeOf reads REST errors the way Cloud Run writes them, and classifies what
// a REST call can fail with the way gRPC would.
func TestCodeOfBothTransports(t *testing.T) {
	wrapped := func(ge *googleapi.Error) error {
		ae, ok := apierror.FromError(ge)
		if !ok {
			t.Fatalf("apierror.FromError(%v) failed", ge)
		}
		return ae
	}
	precondition := &googleapi.Error{Code: 400, Body: `{"error":{"code":400,"message":"Revision 'x' is not ready","status":"FAILED_PRECONDITION"}}`}
	exists := &googleapi.Error{Code: 409, Body: `{"error":{"code":409,"message":"exists","status":"ALREADY_EXISTS"}}`}
	for _, c := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"gRPC status", status.Error(codes.Aborted, "etag"), codes.Aborted},
		{"REST 400 FAILED_PRECONDITION", precondition, codes.FailedPrecondition},
		{"REST 400 FAILED_PRECONDITION via apierror", wrapped(precondition), codes.FailedPrecondition},
		{"REST 409 ALREADY_EXISTS via apierror", wrapped(exists), codes.AlreadyExists},
		{"REST 409 without a status", &googleapi.Error{Code: 409, Body: "conflict"}, codes.Aborted},
		{"REST 502 from a proxy", &googleapi.Error{Code: 502, Body: "<html>bad gateway</html>"}, codes.Unavailable},
		{"REST unknown status name", &googleapi.Error{Code: 503, Body: `{"error":{"code":503,"status":"NOPE"}}`}, codes.Unavailable},
		{"connection refused", &url.Error{Op: "Get", URL: "http://x", Err: syscall.ECONNREFUSED}, codes.Unavailable},
		{"caller's deadline over REST", &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, codes.DeadlineExceeded},
		{"caller gave up over REST", &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}, codes.Canceled},
		{"anything else", errors.New("boom"), codes.Unknown},
	} {
		if got := codeOf(c.err); got != c.want {
			t.Errorf("%s: codeOf(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	if _, ok := statusOf(&url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}); ok {
		t.Errorf("statusOf(a context's end over REST) has a status; want none, so mapErr sees the context's error")
	}
}
