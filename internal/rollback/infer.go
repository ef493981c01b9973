package rollback

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// infer works out an interrupted drill from the service's own state, for
// recover, when no copy of its journal can be read: the drill's tag is
// drill-<id> and its revision <service>-drill-<id>, so what is the drill's can
// be told from what is not. id is the run the lease names, when it can be read.
//
// What the drill found is known only as far as the service shows it: its
// entries taken out, the rest is the split before the drill (pinned). When the
// drill had users on its revision and more than one revision could take them
// back, the split before it is unknown: infer stops with the commands that
// finish the job. It returns a nil journal when nothing of a drill is there.
func (rr *recoverRun) infer(ctx context.Context, id string) (*Journal, string, error) {
	svc, ref := rr.svc, rr.o.Service
	prefix := ref.Name + "-drill-"
	if id == "" {
		ids := map[string]bool{}
		for _, t := range svc.Traffic {
			if rest, ok := strings.CutPrefix(t.Tag, "drill-"); ok {
				ids[rest] = true
			}
			if rest, ok := strings.CutPrefix(t.Revision, prefix); ok {
				ids[rest] = true
			}
		}
		if rest, ok := strings.CutPrefix(svc.Template.Revision, prefix); ok {
			ids[rest] = true
		}
		switch len(ids) {
		case 0:
			if HasRunAnnotations(svc.Annotations) {
				return nil, "", nil
			}
			return nil, "nothing in flight", nil
		case 1:
			for k := range ids {
				id = k
			}
		default:
			rr.hint = fmt.Sprintf("several drills' entries are on %q (%v): check 'runrollback status' and move users back by hand (runrollback rollback --to REVISION)", ref.Name, slices.Sorted(maps.Keys(ids)))
			return nil, "", fmt.Errorf("%w: no journal can be read, and the service carries entries of several drills", ErrNotRestored)
		}
	}
	broken := prefix + id
	tag, _, _, _ := DrillNames(ref.Name, id)
	ours := func(t Target) bool { return t.Revision == broken || t.Tag == tag }
	var rest Split
	var share int32
	for _, t := range svc.Traffic {
		if ours(t) {
			share += t.Percent
			continue
		}
		rest = append(rest, t)
	}
	var candidates []string
	for _, t := range Resolve(rest, svc.LatestReadyRevision) {
		if t.Revision != broken {
			candidates = appendNew(candidates, t.Revision)
		}
	}
	if share > 0 && len(candidates) != 1 {
		cmds := make([]string, 0, len(candidates))
		for _, c := range candidates {
			cmds = append(cmds, fmt.Sprintf("runrollback rollback --project %s --region %s --service %s --to %s", ref.Project, ref.Region, ref.Name, c))
		}
		rr.hint = fmt.Sprintf("put users back by hand on the revision(s) that served before the drill (one of: %s), then run 'runrollback recover --force --project %s --region %s --service %s' to remove the rest",
			strings.Join(cmds, "; "), ref.Project, ref.Region, ref.Name)
		if len(cmds) == 0 {
			rr.hint = fmt.Sprintf("users are on the drill's revision %s only: send them to a good revision (runrollback status; runrollback rollback --to REVISION), then run 'runrollback recover --force'", broken)
		}
		return nil, "", fmt.Errorf("%w: %d%% of the traffic of %q is on %s, a revision of interrupted drill %s, and no copy of its journal can be read, so the split before the drill is unknown",
			ErrNotRestored, share, ref.Name, broken, id)
	}
	if share > 0 {
		// One revision can take users back: the drill moved them from it.
		placed := false
		for i := range rest {
			if !placed && !rest[i].Latest && rest[i].Revision == candidates[0] && rest[i].Tag == "" {
				rest[i].Percent += share
				placed = true
			}
		}
		if !placed {
			rest = append(Split{{Revision: candidates[0], Percent: share}}, rest...)
		}
	}
	j := &Journal{Schema: JournalSchema, ID: id, Command: "test", Tag: tag, BrokenRevision: broken,
		Expect: svc.Traffic,
		Snapshot: Snapshot{Schema: SnapshotSchema, Service: ref, URI: svc.URI, Traffic: rest,
			LatestReady: svc.LatestReadyRevision, Template: Template{Hash: svc.Template.Hash}}}
	if svc.Template.Revision == broken {
		j.TemplateChanged = true
		j.Snapshot.Template.Hash = "" // the template before the drill is not known; it is not this one
		if v, ok := svc.Template.Env[BreakEnvVar]; ok {
			j.Mark = &Mark{Env: map[string]string{BreakEnvVar: v}, Absent: []string{BreakEnvVar}}
		} else {
			rr.left = append(rr.left, fmt.Sprintf("the template of %q, which still builds the drill's revision %s", ref.Name, broken))
			rr.fixes = append(rr.fixes, fmt.Sprintf("redeploy the configuration from before the drill (gcloud run services update %s --region %s ...)", ref.Name, ref.Region))
		}
	}
	rr.warn(StepJournal, fmt.Sprintf("no copy of the journal could be read: recovering drill %s from the service's state; the split before it taken as %s", id, rest))
	if rev := rr.newestBefore(ctx, broken); rev != "" && slices.ContainsFunc(rest, func(t Target) bool {
		return t.Revision == rev && t.Tag == "" && !t.Latest && t.Percent > 0
	}) {
		// A drill pins LATEST before it deploys: a service that followed
		// LATEST and one pinned to its newest revision look the same after,
		// and only the journal said which it was.
		rr.left = append(rr.left, fmt.Sprintf("traffic pinned to %s: no copy of the drill's journal could be read, so whether %q followed LATEST before the drill is unknown", rev, ref.Name))
		rr.fixes = append(rr.fixes, fmt.Sprintf("if it did: gcloud run services update-traffic %s --region %s --to-latest", ref.Name, ref.Region))
	}
	return j, "drill " + id, nil
}

// newestBefore is the newest Ready revision, other than a drill's, created
// before the revision broken: what LATEST resolved to when the drill began ("" when the revisions cannot be listed, or broken is
// not among them).
func (rr *recoverRun) newestBefore(ctx context.Context, broken string) string {
	revs, err := rr.rc.Cloud.ListRevisions(ctx, rr.o.Service)
	if err != nil {
		return ""
	}
	i := slices.IndexFunc(revs, func(r Revision) bool { return r.Name == broken })
	if i < 0 {
		return ""
	}
	newest := ""
	var at time.Time
	for _, r := range revs {
		if strings.Contains(r.Name, "-drill-") || !r.Ready || !r.CreateTime.Before(revs[i].CreateTime) {
			continue
		}
		if newest == "" || r.CreateTime.After(at) {
			newest, at = r.Name, r.CreateTime
		}
	}
	return newest
}
