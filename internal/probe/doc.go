// Package probe checks a service's health endpoint over HTTP and decides, over a
// series of attempts, whether the service is healthy or broken.
//
// It imports the standard library, google.golang.org/api/idtoken and
// golang.org/x/oauth2 only; it knows nothing of Cloud Run or of the rest of
// runrollback.
//
// # One attempt
//
// [Checker.Check] sends one GET to the base URL's path plus [Checker.HealthPath]
// (default "/api/v1/health/": base https://x/app probes https://x/app/api/v1/health/)
// and classifies the answer as an [Outcome]:
//
//   - HTTP 2xx with a non-JSON body, or a JSON body whose "status" is healthy, ok,
//     pass or up (any case), or has no "status" at all: [Healthy].
//   - HTTP 2xx whose JSON "status" is warn: [Warn]. Warn counts as healthy.
//   - Any other status code (3xx included: redirects are never followed), any
//     other JSON status ("fail", "DOWN", "unhealthy", a non-string), a body that
//     claims to be JSON but does not parse, or a body larger than
//     [Checker.MaxBody]: [Unhealthy].
//   - A healthy answer from a revision outside [Expect.Revisions]:
//     [WrongRevision] ("not converged"). This has precedence over the version
//     check, because an old revision answering with its old version is a
//     convergence problem, not a broken deploy. An answer that names no
//     revision (real Cloud Run adds no header) is not judged by revision.
//   - A healthy answer whose version differs from [Expect.Version]: [WrongVersion].
//   - No answer (DNS, refused, TLS, timeout, body read error), a bad URL, a host
//     not in [Checker.AllowedHosts], or an ID token that could not be fetched:
//     [ProbeError]. When the attempt connected but got no complete answer within
//     [Checker.Timeout], [Attempt.Err] wraps [ErrTimeout].
//
// A body is JSON when its Content-Type is application/json,
// application/health+json or any other "+json" type, or when it starts with '{'.
// The version is read from the JSON pointer [Checker.VersionField] when set; else
// from "releaseId" and then "version" for application/health+json (the IETF
// health check draft); else from "version". The answering revision is the
// X-Served-By header, else the JSON "revision". Real Cloud Run adds no
// X-Served-By header, so [Expect.Revisions] is only useful against apps that
// report their revision (the fake does both).
//
// Bodies over [Checker.MaxBody] are not parsed: the attempt is [Unhealthy] with
// a Detail that says so. A health endpoint has no reason to answer with
// megabytes, and a truncated JSON document cannot prove anything. Reading stops
// at the cap, so a 1 GiB answer costs at most MaxBody of memory.
//
// # Hardening
//
// Each attempt uses a fresh connection (a new transport with keep-alives off, no
// proxy, no compression, TLS 1.2+), no cookie jar, no redirects, a deadline
// ([Checker.Timeout]), a capped body, a cache-busting "_rr" query parameter and
// "Cache-Control: no-cache". Requests go only to the base URL's own host, or to
// [Checker.AllowedHosts] when set; an ID token from [Checker.TokenSource] is sent
// as "Authorization: Bearer" only on such requests. Tokens are never logged,
// stored or included in errors.
//
// Every string an attempt carries from the server (Detail, Status, Version,
// Revision) is escaped and truncated by the same rule: one line of at most 200
// runes, control characters and bidi controls shown as escapes (ESC is \x1b),
// and never beginning with "::" or "##[", so it cannot become a GitHub Actions
// workflow command.
//
// # Over attempts
//
// [Checker.WaitHealthy] and [Checker.WaitFailure] repeat Check under a [Policy]:
// at most Retries+1 attempts, an optional overall Deadline, and between attempts
// a capped exponential backoff with ±20% jitter. The delay grows with each
// consecutive answer that is not OK and falls back to RetryDelay after an OK one,
// so a healthy service is polled at a steady pace and a struggling one gently.
// WaitHealthy wants Successes consecutive OK answers; WaitFailure stops at the
// first answer that proves breakage ([Attempt.ProvesFailure]: Unhealthy,
// WrongVersion or a timeout). Both take time (Sleep, Rand) from the Policy and
// the clock from [Checker.Now], so tests need not sleep.
//
// The zero values of [Checker] and [Policy] are usable. A Checker is safe for
// concurrent use.
package probe
