// Package cloudrun adapts runrollback's domain (package rollback) to the Cloud Run
// Admin API v2 through Google's generated client, cloud.google.com/go/run/apiv2.
// It is the only package that sees runpb.
//
// The adapter owns what the generated client leaves to its caller:
//   - a deadline on every call and an AIP-194 retry policy: only UNAVAILABLE is
//     retried (reads always; writes because every write carries an etag, so a
//     duplicate cannot apply twice), and RESOURCE_EXHAUSTED (a quota refills)
//     no sooner than the server asks, with capped, jittered backoff;
//   - an ambiguous write (the reply lost after the change applied) is settled by
//     re-reading the service, never by writing blindly again;
//   - long-running operations are polled by our own loop, resumable by name
//     (ResumeOperation), tolerant of failed polls, and paced: WaitOperation
//     may answer early ("including immediately", google.longrunning), and
//     an early answer that is not done is followed by a backoff pause;
//   - a write whose outcome cannot be learned (its operation's poll fails
//     with NOT_FOUND or UNAUTHENTICATED, a lost reply that no read can
//     settle, time running out) is a rollback.PendingError that satisfies
//     errors.Is(err, ErrOutcomeUnknown) and never a refusal's kind
//     (ErrNotFound, ErrUnauthenticated, ...): read the service to decide;
//   - gRPC codes map to the domain errors of package rollback in one function
//     (mapErr); over REST the code is read from the JSON error body's
//     "status" (the HTTP status alone folds codes together), and a call that
//     got no answer is UNAVAILABLE, as over gRPC;
//   - reads and writes are counted for the report.
//
// New dials Cloud Run with Application Default Credentials, or, given an emulator
// host, plaintext without credentials (the fake started by `runrollback fake`),
// over gRPC (the default) or the REST transport (HTTP/JSON, the generated REST
// clients), for networks that pass HTTPS but not gRPC.
package cloudrun
