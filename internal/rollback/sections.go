package rollback

// Sections are the parts of a report that only some commands fill: who
// produced it (every command), and the command-specific sections of status,
// snapshot and probe. Report embeds Sections, so in JSON they are fields of
// the one report object; empty sections are left out. docs/report.md
// documents every field.
type Sections struct {
	// Tool names the runrollback build that wrote the report.
	Tool *Tool `json:"tool,omitempty"`
	// CI describes the CI run the report comes from (GitHub Actions).
	CI *CIRun `json:"ci,omitempty"`
	// Status is the "status" command's view of the service.
	Status *ServiceStatus `json:"status,omitempty"`
	// Snapshot is what the "snapshot" command recorded, and where.
	Snapshot *SnapshotSection `json:"snapshot,omitempty"`
	// Probe is the "probe" command's verdict.
	Probe *ProbeSection `json:"probe,omitempty"`
	// Shard is the part of a sharded fleet drill (--shard) this report is
	// from (shard.go).
	Shard *ShardSection `json:"shard,omitempty"`
}

// Tool is the build of runrollback: module version, VCS commit and Go version.
type Tool struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// CIRun identifies a CI run: the repository, the commit it runs on and a
// link to the run.
type CIRun struct {
	Provider   string `json:"provider"`
	Repository string `json:"repository,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Workflow   string `json:"workflow,omitempty"`
	Job        string `json:"job,omitempty"`
	RunURL     string `json:"run_url,omitempty"`
}

// SnapshotSection is what "snapshot" recorded: the file written (empty when
// the snapshot went to stdout), when it was taken, the traffic list as read,
// what LATEST meant then, and the etag and generation of the read. The
// template, which the snapshot file holds, is left out of the report.
type SnapshotSection struct {
	File        string `json:"file,omitempty"`
	TakenAt     string `json:"taken_at"`
	Traffic     Split  `json:"traffic"`
	LatestReady string `json:"latest_ready_revision,omitempty"`
	Etag        string `json:"etag"`
	Generation  int64  `json:"generation"`
}

// ProbeSection is the verdict of probing one URL.
type ProbeSection struct {
	// URL is the base URL given; HealthURL the URL requested (health path
	// appended, no cache-busting query).
	URL          string `json:"url"`
	HealthURL    string `json:"health_url,omitempty"`
	Healthy      bool   `json:"healthy"`
	Attempts     int    `json:"attempts"`
	Errors       int    `json:"errors"`
	Unhealthy    int    `json:"unhealthy"`
	NotConverged int    `json:"not_converged"`
	ElapsedMS    int64  `json:"elapsed_ms"`
	Version      string `json:"version,omitempty"`
	Revision     string `json:"revision,omitempty"`
	// Last describes the last answer, one line, safe to print.
	Last string `json:"last"`
}
