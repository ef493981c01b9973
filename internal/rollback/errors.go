package rollback

import "errors"

// Domain errors. Adapters wrap their own errors so that callers can use errors.Is;
// callers act on these, never on message text.
var (
	// ErrNotFound: the service or revision does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: someone else changed the service since we read it (stale etag).
	ErrConflict = errors.New("conflict: the service changed since it was read")
	// ErrNotReady: a revision is not ready and cannot serve traffic.
	ErrNotReady = errors.New("revision not ready")
	// ErrPermission: the caller lacks a permission.
	ErrPermission = errors.New("permission denied")
	// ErrUnauthenticated: credentials are missing or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnavailable: the API did not answer in time, after retries.
	ErrUnavailable = errors.New("unavailable: the Cloud Run API did not answer")
	// ErrQuota: a quota or rate limit was hit, after retries.
	ErrQuota = errors.New("quota exceeded")
	// ErrInvalid: Cloud Run rejected the request as invalid.
	ErrInvalid = errors.New("invalid request")
	// ErrPending: a long-running operation had not finished when we stopped waiting.
	ErrPending = errors.New("operation still pending")

	// ErrAborted: the run stopped safely before finishing; the service is as it was.
	ErrAborted = errors.New("aborted")
	// ErrNotRestored: the run stopped and the prior split could not be confirmed restored.
	ErrNotRestored = errors.New("restore not confirmed")
)

// ErrRefused: Cloud Run refused the request in the service's current state
// (FAILED_PRECONDITION), e.g. deleting a revision that can still receive traffic.
var ErrRefused = errors.New("refused by Cloud Run")
