package probe

import (
	"errors"
	"strconv"
	"time"
)

// Outcome classifies one attempt.
type Outcome int

const (
	// Healthy is HTTP 2xx with a JSON status of healthy, ok, pass or up (any
	// case), no JSON status at all, or a body that is not JSON.
	Healthy Outcome = iota
	// Warn is HTTP 2xx with a JSON status of warn. It counts as healthy.
	Warn
	// Unhealthy is a status code outside 2xx (3xx included), a JSON status that
	// is not healthy, malformed JSON, or a body over the size cap.
	Unhealthy
	// WrongVersion is a healthy answer with a version other than Expect.Version.
	WrongVersion
	// WrongRevision is a healthy answer from a revision outside
	// Expect.Revisions: traffic has not converged.
	WrongRevision
	// ProbeError is no answer: DNS, connection refused, TLS, timeout, body read
	// error, a bad URL, a host that is not allowed or a failed ID token fetch.
	ProbeError
)

var outcomeNames = [...]string{
	Healthy:       "healthy",
	Warn:          "warn",
	Unhealthy:     "unhealthy",
	WrongVersion:  "wrong-version",
	WrongRevision: "wrong-revision",
	ProbeError:    "error",
}

// String returns "healthy", "warn", "unhealthy", "wrong-version",
// "wrong-revision" or "error".
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// OK reports whether the outcome counts as healthy: Healthy or Warn.
func (o Outcome) OK() bool { return o == Healthy || o == Warn }

// ErrTimeout is wrapped by Attempt.Err when the attempt reached the server (or
// at least got past connecting) but no complete answer came within
// Checker.Timeout. A slow app shows up this way; a timeout while connecting or
// resolving does not.
var ErrTimeout = errors.New("no answer within the attempt timeout")

// Attempt is the result of one probe.
type Attempt struct {
	// URL is the URL requested, without the cache-busting query parameter.
	URL     string
	Outcome Outcome
	// StatusCode is the HTTP status code; 0 when there was no answer.
	StatusCode int
	// Status is the JSON status as reported ("healthy", "UP", ...), escaped.
	Status string
	// Version is the version the answer reported, escaped.
	Version string
	// Revision is the answering revision: the X-Served-By header, else the
	// JSON "revision"; escaped.
	Revision string
	// Detail is one line that explains the outcome, at most 200 runes, with
	// control characters escaped; it never begins with "::".
	Detail   string
	Duration time.Duration
	// Err is set for ProbeError. It wraps ErrTimeout for a timeout after
	// connecting, and context.Cause of the caller's context when that ended
	// the attempt.
	Err error
}

// OK reports whether the attempt counts as healthy (Healthy or Warn).
func (a Attempt) OK() bool { return a.Outcome.OK() }

// ProvesFailure reports whether the attempt proves the service is broken: an
// Unhealthy or WrongVersion answer, or a ProbeError that is a timeout after
// connecting (ErrTimeout). A refused connection, a DNS or TLS failure, a token
// problem or a WrongRevision answer proves nothing about the app.
func (a Attempt) ProvesFailure() bool {
	switch a.Outcome {
	case Unhealthy, WrongVersion:
		return true
	case ProbeError:
		return errors.Is(a.Err, ErrTimeout)
	}
	return false
}

// Expect says which answers are right beyond being healthy.
type Expect struct {
	// Version is the version the answer must report; "" accepts any.
	Version string
	// Revisions lists the revisions allowed to answer; empty accepts any. An
	// answer that names no revision (no X-Served-By header, no JSON
	// "revision" — real Cloud Run adds no such header) cannot be judged by
	// revision and is judged by health and version alone.
	Revisions []string
}
