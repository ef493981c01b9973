// Package report renders everything a runrollback user reads: progress events
// as text lines (Line) or structured logs (Log), with a live line on terminals
// (Progress) and the probe's progress notes (ProbeWait, ProbeAttempt); the
// final verdict (Verdict, RunText), the status table (Status, StatusAll), the
// probe's verdict (ProbeVerdict), the snapshot line (Snapshot), the fleet
// table (FleetTable), the --version line (VersionLine) and the "report lost"
// line (Lost); the JSON report of docs/report.md (JSON, JSONFleet), JUnit XML
// (JUnit), a GitHub step summary (Markdown, HasSummary), GitHub workflow
// annotations (Annotation, Annotations) and step outputs (GitHubOutputs,
// RunOutputs, Delimiter); and aligned text tables (Table).
//
// Contract:
//   - Rendering never changes the rollback.Report it is given.
//   - Untrusted text (response bodies, error messages, details) goes through
//     Sanitize before it reaches a terminal, a log or a summary: control
//     characters and ANSI escapes are shown escaped ("\x1b"), line breaks
//     become spaces, long text is cut with "…", and the legacy GitHub workflow
//     command opener "##[" is broken up wherever it appears.
//   - No text line this package renders starts with "::", so output cannot
//     issue a GitHub Actions workflow command: event lines start with the
//     level in brackets, verdict lines with the result word. The one
//     exception is Annotation, which renders a workflow command on purpose,
//     with its title and message escaped as the runner expects. JSON, which may
//     go to stdout, writes "##[" inside strings as "#\u0023[" (same value).
//   - JSON output is schema rollback.ReportSchema (runrollback.report/v1);
//     list fields are written as [] rather than null.
//   - Colour (ANSI) is added only when asked for, and only to the level or
//     result word.
//
// It imports the standard library and package rollback only; it does no I/O
// beyond the io.Writer it is handed.
package report
