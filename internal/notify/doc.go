// Package notify posts one JSON summary of a finished run to a webhook
// (--notify-url): a Slack-compatible "text" line, and the result, exit code,
// command, service, exposure, timings, error and hint of the run's reports
// (schema runrollback.notify/v1, documented in docs/commands.md).
//
// Contract:
//   - The webhook URL is a secret (a Slack or chat webhook carries its key in
//     its path or query): Target never shows more than its scheme and host,
//     every error Post returns is redacted, and any text of the summary that
//     contains the URL, its path, its query or one of its query values has
//     them replaced by "[redacted]".
//   - The summary holds what the report holds, minus anything secret: no
//     header, token, environment variable or credential is ever in it.
//   - Post is bounded: Timeout (default 10 s) for everything, one retry on a
//     connection error or a 5xx answer, no redirects followed, no cookies.
//     Callers post after the run has put everything back, so a notification
//     never delays or skips a restore, and treat a failed post as a warning.
//   - Only https URLs are accepted, or http to a loopback host (a relay on
//     the same machine, a test).
//
// It imports the standard library, internal/rollback (report types) and
// internal/report (text sanitizing) only.
package notify
