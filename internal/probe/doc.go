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
// # Over attempts: the detector
//
// [Checker.WaitHealthy] and [Checker.WaitFailure] decide on evidence, not on a
// streak. Each attempt is evidence ([Attempt.Evidence]): Good (healthy or
// warn), Bad (it proves failure: unhealthy, wrong version, or a timeout after
// connecting), or none (no connection, refused, DNS, TLS, token, an answer
// from a revision outside [Expect.Revisions]: the target is not there yet).
//
// The verdict is an m-of-n sequential test ([Rule]): among the last
// Successes+Failures-1 answers that are evidence, Failures Bad ones make the
// target broken and Successes Good ones make it healthy; the window is just
// long enough that a full one is always decided. The defaults, 10 good of the
// last 11 and 2 failing, judge a target that fails half of its answers
// healthy with probability 0.59%, and flag one that fails 1% of them with
// probability 0.52% ([Rule.PassProbability] gives the exact figures for any
// rule). A healthy target never fails an answer, so it is never flagged.
//
// Evidence is taken as fast as the target gives it: while it answers, up to
// [Policy.Parallel] attempts are in flight (default 4), with no pause, no
// backoff after a failing answer, and no fixed wait between healthy ones. A
// hang counts as a failure the moment its own deadline ([Checker.Timeout])
// passes, and the attempts in flight hang together, so a hanging target is
// broken after one timeout. Answers are used in the order their attempts
// started, whatever order they end in: a quick healthy answer cannot
// overtake a slow failure, so the error rates above hold as if the target
// were probed one attempt at a time. When the verdict is reached, attempts
// still in flight are cancelled.
//
// Only attempts that prove nothing are paced: after one, attempts go one at a
// time with a capped exponential backoff from [Policy.RetryDelay] (±20%
// jitter), and the [Policy.Retries]+1-th ends the wait undecided (attempts
// started together count once). [Policy.Deadline] bounds the whole wait.
//
// WaitHealthy stops at the first verdict (after at most Successes+Failures-1
// answers that are evidence); Verdict.Healthy is true for a healthy one.
// WaitFailure stops at a broken verdict (Verdict.Detected) and otherwise lets
// the window slide on, for at most (Retries+1) windows of answers, so a
// failure only part of the answers show (a partial traffic shift) is still
// met; when nothing was detected, Verdict.Healthy says whether the window
// ended healthy. Both take time (Sleep, Rand) from the Policy and the clock
// from [Checker.Now], so tests need not sleep.
//
// The zero values of [Checker] and [Policy] are usable. A Checker is safe for
// concurrent use.
package probe
