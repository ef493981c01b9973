package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// converger is the one restore path of every command. It keeps its view of the
// service current after each write, decides every action from the service as
// it is now, does nothing when there is nothing to do, and after a write whose
// outcome was not seen reads the service and decides again (settle), so no one
// else's change is overwritten and running it twice changes nothing. Writes
// that put a service back ride out transient errors with backoff for as long
// as the context's budget lasts.
type converger struct {
	cloud CloudRun
	ref   ServiceRef
	j     *Journal
	svc   *Service
	rep   *Report
	warn  func(string)
	// conflict, when set, says another writer changed the traffic during the run
	// and their change was kept: the run ends aborted, with this as the diff.
	conflict string
	// fold: release the lease in the last write that puts traffic back
	// verbatim, rather than in a write of its own.
	fold bool
	// own is the etag the service had after the run's own last write, when
	// the run knows it (a live drill; "" for recover): a service with another
	// etag has been written by someone else since.
	own string
	// bare: write traffic alone, without annotations (after Cloud Run
	// refused a restore that carried them).
	bare bool
	// left lists what of the run's could not be removed from the service;
	// fixes say how to remove it.
	left  []string
	fixes []string
}

// maxConflicts bounds how often one action decides again after someone else's
// change.
const maxConflicts = 3

func (c *converger) ours(t Target) bool {
	return (c.j.BrokenRevision != "" && t.Revision == c.j.BrokenRevision) || (c.j.Tag != "" && t.Tag == c.j.Tag)
}

func (c *converger) reread(ctx context.Context) error {
	cur, err := c.cloud.GetService(ctx, c.ref)
	if err != nil {
		return err
	}
	c.svc = cur
	return nil
}

// rereadPatiently reads the service, riding out transient errors for as long
// as ctx's budget lasts.
func (c *converger) rereadPatiently(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.reread(ctx)
		if err == nil || !transient(err) {
			return err
		}
		if perr := pause(ctx, attempt); perr != nil {
			return fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt+1, perr)
		}
	}
}

// errChanged says the service changed under a write (someone else's write, or
// a write whose outcome we did not see that turned out to be another's): the
// caller decides again from c.svc.
var errChanged = errors.New("the service changed")

// send is the one way a write that puts a service back is made: fn is sent
// with the etag of c.svc; its outcome is decided by settle (shows says whether
// a service carries the write); a write not applied for a transient reason is
// sent again after a pause, until ctx's budget ends; a write applied but not
// seen to finish is waited for. It returns nil when applied, errChanged when
// the service changed and the caller must decide again, or the error that
// stops it.
func (c *converger) send(ctx context.Context, fn func(etag string) (*Service, error), shows func(*Service) bool) error {
	var first error
	// doubt: an earlier attempt may have applied although it reported an
	// error (a lost reply, a poll that failed): a later attempt refused as
	// stale may be refused because of it.
	doubt := false
	for attempt := 0; ; attempt++ {
		before := c.svc
		svc, err := fn(before.Etag)
		var out Outcome
		var cur *Service
		if err != nil && !doubt && refusedOnCall(err) {
			// Cloud Run refused this very call, and no earlier attempt of ours
			// can have applied: nothing of it is on the service, whatever the
			// service shows now (someone else may have written the same).
			out = NotApplied
			if now, rerr := c.cloud.GetService(ctx, c.ref); rerr == nil {
				cur = now
			}
		} else {
			out, cur = settle(ctx, c.cloud, c.ref, before, svc, err, shows)
		}
		if err != nil && !refusedOnCall(err) {
			doubt = true
		}
		if cur != nil {
			c.svc = cur
		}
		if err != nil && first == nil {
			first = err
		}
		switch {
		case out == Applied && err == nil:
			c.own = c.svc.Etag
			return nil
		case out == Applied && errors.Is(err, ErrNotReady):
			return err // stored, but Cloud Run could not roll it out
		case out == Applied:
			// Applied without our seeing it finish (a lost reply, a poll
			// that failed, or an earlier attempt of ours that this one's
			// stale etag reveals): wait until it is rolled out.
			if rerr := c.rollout(ctx, err); rerr != nil {
				return rerr
			}
			c.own = c.svc.Etag
			return nil
		case cur != nil && cur.Etag != before.Etag:
			return errChanged
		case out == NotApplied && !transient(err):
			return err
		}
		if perr := pause(ctx, attempt); perr != nil {
			return fmt.Errorf("%w (gave up after %d attempts: %v)", err, attempt+1, perr)
		}
		if cur == nil {
			// The outcome is unknown: read before deciding. Sending again with
			// the old etag is safe too: if the first write applied, Cloud Run
			// refuses the second as stale, and settle sees ours.
			_ = c.reread(ctx)
		}
	}
}

// rollout waits, after a write that applied but was not seen to finish (err),
// until the service has rolled it out: by resuming its operation, else by
// reading the service until it has observed its latest generation.
func (c *converger) rollout(ctx context.Context, err error) error {
	op := OperationName(err)
	for attempt := 0; ; attempt++ {
		var werr error
		if op != "" {
			var svc *Service
			svc, werr = c.cloud.ResumeOperation(ctx, op)
			switch {
			case werr == nil:
				if svc != nil {
					c.svc = svc
				}
				return c.reread(ctx)
			case errors.Is(werr, ErrNotFound) || errors.Is(werr, ErrPermission):
				op = "" // forgotten by Cloud Run, or not ours to read: watch the service instead
				continue
			case !transient(werr):
				return werr // the operation ended in an error
			}
		} else if werr = c.reread(ctx); werr == nil {
			switch {
			case c.svc.Reconciling:
				werr = &PendingError{Op: "roll out generation " + fmt.Sprint(c.svc.Generation), Err: err}
			case c.svc.ObservedGeneration < c.svc.Generation:
				return fmt.Errorf("%w: generation %d was not rolled out: %s", ErrNotReady, c.svc.Generation, c.svc.Message)
			default:
				return nil
			}
		}
		if perr := pause(ctx, attempt); perr != nil {
			return fmt.Errorf("%w: %w (%v)", ErrPending, werr, perr)
		}
	}
}

// onlySnapshotAndOurs: every entry is ours, or one of the snapshot's (whose
// percent a drill's shift may have lowered).
func (c *converger) onlySnapshotAndOurs(traffic Split) bool {
	snap := c.j.Snapshot
	same := func(a Target) func(Target) bool {
		return func(b Target) bool { return a.Revision == b.Revision && a.Tag == b.Tag && a.Latest == b.Latest }
	}
	for _, t := range traffic {
		if !c.ours(t) && !slices.ContainsFunc(snap.Pinned(), same(t)) && !slices.ContainsFunc(snap.Traffic, same(t)) {
			return false
		}
	}
	return true
}

// servingRevision is the revision with the largest share in the snapshot.
func servingRevision(s Snapshot) string {
	best := Target{Percent: -1}
	for _, t := range s.Pinned() {
		if t.Percent > best.Percent {
			best = t
		}
	}
	return best.Revision
}

// withoutOurs is traffic with our entries removed and their share given to the
// snapshot's serving revision.
func (c *converger) withoutOurs(traffic Split) Split {
	serving := servingRevision(c.j.Snapshot)
	var out Split
	var freed int32
	for _, t := range traffic {
		if c.ours(t) {
			freed += t.Percent
			continue
		}
		out = append(out, t)
	}
	for i := range out {
		if freed > 0 && out[i].Revision == serving && out[i].Tag == "" && !out[i].Latest {
			out[i].Percent += freed
			freed = 0
		}
	}
	if freed > 0 {
		out = append(out, Target{Revision: serving, Percent: freed})
	}
	return out
}

// plan is what a restore decides to do with the service as it is now.
type plan struct {
	// want is the traffic to write; annotations, when not nil, replace the
	// service's annotations in the same write.
	want        Split
	annotations map[string]string
	// done: nothing to write; detail says why.
	done   bool
	detail string
	// conflict, when set, is another writer's change that was kept.
	conflict string
	// stop, when set, ends the restore without writing.
	stop error
}

// restore is the one restore path: decide looks at the service as it is now
// and says what to write; restore writes it with send, and decides again
// after anyone else's change (at most maxConflicts times). It returns the
// plan it carried out.
func (c *converger) restore(ctx context.Context, decide func(cur *Service) plan) (plan, error) {
	for range maxConflicts + 1 {
		p := decide(c.svc)
		c.conflict = p.conflict
		switch {
		case p.stop != nil:
			return p, p.stop
		case p.done:
			return p, nil
		}
		err := c.send(ctx, func(etag string) (*Service, error) {
			if p.annotations != nil {
				return c.cloud.UpdateTrafficAnnotated(ctx, c.ref, etag, p.want, p.annotations)
			}
			return c.cloud.UpdateTraffic(ctx, c.ref, etag, p.want)
		}, func(s *Service) bool {
			return s.Traffic.Equal(p.want) && (p.annotations == nil || sameAnnotations(s.Annotations, p.annotations))
		})
		if errors.Is(err, errChanged) {
			c.warn(fmt.Sprintf("%q changed during the restore (generation %d now): deciding again", c.ref.Name, c.svc.Generation))
			continue
		}
		if err != nil && p.annotations != nil && c.fold && !c.bare && !errors.Is(err, ErrPending) {
			// The lease's release, or the journal's note of the restore,
			// never stands between users and their restore: write the
			// traffic alone.
			c.warn(fmt.Sprintf("the restore with the run's annotations was not written (%v): writing the traffic alone", err))
			c.fold, c.bare = false, true
			continue
		}
		return p, err
	}
	return plan{}, fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
}

func sameAnnotations(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// restoreTraffic puts the snapshot's traffic back, pinned, when what is there is
// what the run left (or only the snapshot's entries and ours). When another
// writer changed it, their change stays: only our entries are taken out (their
// share going to the last good revision), and c.conflict says what differs.
func (c *converger) restoreTraffic(ctx context.Context) (string, error) {
	// The run may have stopped on a write whose outcome it did not see (an
	// operation that failed after changing the desired traffic): decide from
	// the service as it is now.
	if err := c.rereadPatiently(ctx); err != nil {
		return "", err
	}
	p, err := c.restore(ctx, c.decideRestore)
	if err != nil {
		return "", err
	}
	return p.detail, nil
}

// decideRestore is the drill's and recover's restore decision; see
// restoreTraffic.
func (c *converger) decideRestore(svc *Service) plan {
	snap := c.j.Snapshot
	pinned := snap.Pinned()
	cur := svc.Traffic
	back := plan{want: pinned, detail: "traffic back on the last good revision(s): " + pinned.String()}
	switch {
	case c.bare || !HasRunAnnotations(svc.Annotations) || c.someoneElses(svc) != "":
	case c.fold && pinned.Equal(snap.Traffic):
		// The traffic goes back verbatim: nothing later needs the lease
		// (docs/design.md, "The write budget"), so it goes in this write.
		back.annotations = WithoutRunAnnotations(svc.Annotations)
		back.detail += "; lease released with it"
	case !pinned.Equal(snap.Traffic):
		// Pinned now, verbatim at cleanup: the journal on the service notes
		// the generation this write makes, so that a pin found later can be
		// told from one someone else made (see Journal.Restored).
		if ann, ok := withRestored(svc, c.j.ID); ok {
			back.annotations = ann
		}
	}
	switch {
	case cur.Equal(snap.Traffic):
		return plan{done: true}
	case cur.Equal(pinned) && !pinned.Equal(snap.Traffic) && !c.pinIsOurs(svc):
		// The pin is someone else's (a LATEST-tracking service they pinned):
		// writing the traffic list verbatim would undo it.
		return plan{done: true, detail: "traffic left as the other writer set it: " + cur.String(),
			conflict: fmt.Sprintf("someone else changed the traffic of %q during the run: before %s, the run left %s, now %s (pinned by them); it was left alone, so the service no longer follows LATEST: to follow it again, gcloud run services update-traffic %s --region %s --to-latest",
				c.ref.Name, snap.Traffic, orUnknown(c.j.Expect), cur, c.ref.Name, c.ref.Region)}
	case cur.Equal(pinned):
		return plan{done: true}
	case c.j.From != nil && cur.Equal(c.j.From):
		// An interrupted guard: finish its rollback.
		return back
	case c.j.left(cur):
		// Exactly a state the run wrote (or was about to): nobody else has
		// changed the traffic since.
		return back
	case c.j.Plan == nil && c.j.Expect == nil && slices.ContainsFunc(cur, c.ours) && c.onlySnapshotAndOurs(cur):
		// A journal of an older version, which lists no plan.
		return back
	case !slices.ContainsFunc(cur, c.ours):
		return plan{done: true, detail: "traffic left as the other writer set it: " + cur.String(),
			conflict: fmt.Sprintf("someone else changed the traffic of %q during the run: before %s, the run left %s, now %s; nothing of the run's is in it, so it was left alone",
				c.ref.Name, snap.Traffic, orUnknown(c.j.Expect), cur)}
	}
	want := c.withoutOurs(cur)
	return plan{want: want, detail: "traffic back on the last good revision(s): " + want.String(),
		conflict: fmt.Sprintf("someone else changed the traffic of %q during the run: before %s, the run left %s, they set %s; only the run's share was moved back: %s",
			c.ref.Name, snap.Traffic, orUnknown(c.j.Expect), cur, want)}
}

// pinIsOurs reports whether the snapshot's split, pinned, on svc is the
// run's own: a state the run wrote; else, in a live run, the service as the
// run's last write left it; else the generation the run's restore noted in
// the journal on the service. A pin the run cannot prove its own is someone
// else's. Journals of other commands (a guard restores pinned on purpose)
// are taken as before.
func (c *converger) pinIsOurs(svc *Service) bool {
	if c.j.left(svc.Traffic) {
		return true
	}
	if c.own != "" {
		return svc.Etag == c.own
	}
	if c.j.Command != "test" {
		return true
	}
	if j, _ := journalOf(svc); j != nil && j.ID == c.j.ID && j.Restored != 0 {
		return j.Restored == svc.Generation
	}
	return c.j.Restored != 0 && c.j.Restored == svc.Generation
}

// withRestored is svc's annotations with the run's journal noting that the
// write they go with, based on svc, makes generation svc.Generation+1.
func withRestored(svc *Service, id string) (map[string]string, bool) {
	j, err := journalOf(svc)
	if err != nil || j == nil || j.ID != id {
		return nil, false
	}
	j.Restored = svc.Generation + 1
	b, err := json.Marshal(j)
	if err != nil {
		return nil, false
	}
	out := maps.Clone(svc.Annotations)
	out[AnnotationJournal] = string(b)
	return out, true
}

func orUnknown(s Split) string {
	if s == nil {
		return "(unknown)"
	}
	return s.String()
}

// cleanup writes the template back when it is still the run's, writes the
// traffic list verbatim when it is the pinned one, deletes the broken revision
// when nothing routes to it, and removes our annotations. What it cannot
// remove is listed in c.left.
func (c *converger) cleanup(ctx context.Context, forget func() error) (string, error) {
	var done []string
	snap := c.j.Snapshot
	other := otherRun(c.svc, c.j.ID, time.Now())
	if other != nil {
		// Another run took over after ours expired: the template and traffic
		// are its business; only our own revision and journal are ours.
		c.warn(fmt.Sprintf("another run (%s, %s by %s) holds %q now: its template, traffic and lease are left to it", other.ID, other.Command, other.Owner, c.ref.Name))
	}
	var d string
	var err error
	if other == nil {
		d, err = c.untemplate(ctx)
	}
	if err != nil {
		return "", err
	}
	if d != "" {
		done = append(done, d)
	}
	for attempt := 0; other == nil && c.conflict == "" && c.svc.Traffic.Equal(snap.Pinned()) && !c.svc.Traffic.Equal(snap.Traffic); attempt++ {
		if attempt > maxConflicts {
			return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
		}
		var ann map[string]string
		if c.fold && HasRunAnnotations(c.svc.Annotations) && c.someoneElses(c.svc) == "" {
			ann = WithoutRunAnnotations(c.svc.Annotations)
		}
		err := c.send(ctx, func(etag string) (*Service, error) {
			if ann != nil {
				return c.cloud.UpdateTrafficAnnotated(ctx, c.ref, etag, snap.Traffic, ann)
			}
			return c.cloud.UpdateTraffic(ctx, c.ref, etag, snap.Traffic)
		}, func(s *Service) bool {
			return s.Traffic.Equal(snap.Traffic) && (ann == nil || !HasRunAnnotations(s.Annotations))
		})
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%w: write the traffic list verbatim: %w", ErrNotRestored, err)
		}
		done = append(done, "traffic list written verbatim: "+snap.Traffic.String())
	}
	if other == nil {
		c.findBreaks(ctx)
	}
	if d := c.deleteBroken(withReserve(ctx)); d != "" {
		done = append(done, d)
	}
	d, err = c.release(ctx, forget)
	if err != nil {
		return "", err
	}
	if d != "" {
		done = append(done, d)
	}
	if c.conflict == "" && !c.svc.Traffic.Equal(snap.Traffic) && !c.svc.Traffic.Equal(snap.Pinned()) {
		// Someone changed the traffic after the restore: theirs stands.
		c.conflict = fmt.Sprintf("someone else changed the traffic of %q after it was restored: restored %s, now %s; left as they set it", c.ref.Name, snap.Traffic, c.svc.Traffic)
	}
	return strings.Join(done, "; "), nil
}

// untemplate makes sure the template no longer carries the run's break. The
// break is taken out of whatever template carries it, the run's own or one
// someone else deployed from it (their other changes stay); a template that
// changed in another way is left as it is.
func (c *converger) untemplate(ctx context.Context) (string, error) {
	snap := c.j.Snapshot
	for attempt := 0; ; attempt++ {
		if attempt > maxConflicts {
			return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
		}
		tmpl := c.svc.Template
		var write func(etag string) (*Service, error)
		theirs := tmpl.Revision != c.j.BrokenRevision
		switch {
		case !c.j.TemplateChanged || tmpl.Hash == snap.Template.Hash:
			return "", nil
		case theirs && strings.Contains(tmpl.Revision, "-drill-"):
			c.warn(fmt.Sprintf("the template of %q is another drill's (revision %s): left to it", c.ref.Name, tmpl.Revision))
			return "", nil
		case c.j.Mark.In(tmpl.Env, tmpl.Image):
			d := c.j.Mark.undo()
			d.Traffic = c.svc.Traffic
			write = func(etag string) (*Service, error) { return c.cloud.DeployRevision(ctx, c.ref, etag, d) }
		case !theirs && len(snap.Template.Raw) > 0:
			write = func(etag string) (*Service, error) {
				return c.cloud.ReplaceTemplate(ctx, c.ref, etag, snap.Template, c.svc.Traffic)
			}
		default:
			c.warn(fmt.Sprintf("the template of %q changed since the run, and not to the run's revision: left as it is", c.ref.Name))
			return "", nil
		}
		before := c.svc.LatestCreatedRevision
		err := c.send(ctx, write, func(s *Service) bool {
			return !c.j.Mark.In(s.Template.Env, s.Template.Image) && s.Template.Hash != tmpl.Hash
		})
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%w: the template still carries the break (%s): %w", ErrNotRestored, c.j.Mark, err)
		}
		fresh := ""
		if c.svc.LatestCreatedRevision != before {
			fresh = c.svc.LatestCreatedRevision
			c.rep.RevisionsCreated = appendNew(c.rep.RevisionsCreated, fresh)
		}
		switch {
		case theirs:
			c.warn(fmt.Sprintf("the template of %q, deployed by someone else from the drill's, carried the break (%s): taken out, their other changes kept, as revision %s", c.ref.Name, c.j.Mark, fresh))
			return "the break taken out of another writer's template as revision " + fresh, nil
		case fresh != "":
			return "template restored as fresh revision " + fresh, nil
		}
		return "template restored", nil
	}
}

// findBreaks lists, as left behind, every revision other than the run's own
// that carries the run's break: someone deployed from the template while it
// carried it. Their revisions are theirs to remove; the report says which,
// with the env, and whether users reach them.
func (c *converger) findBreaks(ctx context.Context) {
	if c.j.Mark == nil {
		return
	}
	revs, err := c.cloud.ListRevisions(ctx, c.ref)
	if err != nil {
		c.warn(fmt.Sprintf("could not list the revisions of %q to look for the break in them: %v", c.ref.Name, err))
		return
	}
	for _, r := range revs {
		if r.Name == c.j.BrokenRevision || r.Name == c.j.Snapshot.Template.Revision || strings.Contains(r.Name, "-drill-") || !c.j.Mark.In(r.Env, r.Image) {
			continue
		}
		if !c.j.Started.IsZero() && r.CreateTime.Before(c.j.Started.Add(-time.Minute)) {
			continue // older than the run: not from its template
		}
		var pct int32
		for _, st := range c.svc.TrafficStatuses {
			if st.Revision == r.Name {
				pct += st.Percent
			}
		}
		fix := fmt.Sprintf("redeploy without it (gcloud run services update %s --region %s --remove-env-vars %s)", c.ref.Name, c.ref.Region, strings.Join(slices.Sorted(maps.Keys(c.j.Mark.Env)), ","))
		if pct > 0 {
			fix = "move users off it (runrollback rollback --service " + c.ref.Name + " --to " + servingRevision(c.j.Snapshot) + "), then " + fix
		}
		c.leaveFix(fmt.Sprintf("the break (%s) in revision %s, deployed by someone else from the drill's template, serving %d%%", c.j.Mark, r.Name, pct), fix)
	}
}

// withReserve is ctx, ending a quarter of its remaining budget early (at
// most 30 s): retrying a deletion Cloud Run keeps refusing never takes the
// budget the release of the lease, after it, needs.
func withReserve(ctx context.Context) context.Context {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx
	}
	reserve := min(time.Until(dl)/4, 30*time.Second)
	rctx, cancel := context.WithDeadline(ctx, dl.Add(-reserve))
	context.AfterFunc(rctx, cancel)
	return rctx
}

// deleteBroken deletes the run's broken revision when nothing routes to it,
// retrying transient errors; a revision it cannot delete is left behind.
func (c *converger) deleteBroken(ctx context.Context) string {
	b := c.j.BrokenRevision
	switch {
	case b == "":
		return ""
	case c.j.KeepRevision:
		return "kept revision " + b + " (--keep-revision)"
	case slices.ContainsFunc(c.svc.Traffic, func(t Target) bool { return t.Revision == b }):
		c.leaveFix(fmt.Sprintf("revision %s (still named in the traffic of %q)", b, c.ref.Name),
			fmt.Sprintf("once nothing routes to it: gcloud run revisions delete %s --region %s", b, c.ref.Region))
		return ""
	}
	for attempt := 0; ; attempt++ {
		revs, err := c.cloud.ListRevisions(ctx, c.ref)
		if err == nil {
			if !slices.ContainsFunc(revs, func(r Revision) bool { return r.Name == b }) {
				return "" // never created, or gone already
			}
			if err = c.cloud.DeleteRevision(ctx, c.ref, b); err == nil {
				c.rep.RevisionsDeleted = appendNew(c.rep.RevisionsDeleted, b)
				return "deleted revision " + b
			}
		}
		if !transient(err) {
			c.leaveFix(fmt.Sprintf("revision %s (Cloud Run refused to delete it: %v)", b, err),
				fmt.Sprintf("gcloud run revisions delete %s --region %s", b, c.ref.Region))
			return ""
		}
		if perr := pause(ctx, attempt); perr != nil {
			c.leaveFix(fmt.Sprintf("revision %s (could not be deleted: %v)", b, err),
				fmt.Sprintf("gcloud run revisions delete %s --region %s", b, c.ref.Region))
			return ""
		}
	}
}

// someoneElses describes the lease or journal of another run on s, or "".
func (c *converger) someoneElses(s *Service) string {
	if c.j.ID == "" {
		return ""
	}
	l, _ := leaseOf(s)
	j, _ := journalOf(s)
	switch {
	case l != nil && l.ID != c.j.ID:
		return fmt.Sprintf("run %s, %s by %s", l.ID, l.Command, l.Owner)
	case l == nil && j != nil && j.ID != c.j.ID:
		return fmt.Sprintf("run %s, %s by %s", j.ID, j.Command, j.Owner)
	}
	return ""
}

// leaveFix records something of the run's that stays on the service, and
// what removes it.
func (c *converger) leaveFix(what, fix string) {
	c.left = append(c.left, what)
	if fix != "" {
		c.fixes = append(c.fixes, fix)
	}
	c.warn("left behind: " + what)
}

// release removes the run's lease and journal from the service, then the
// local journal (forget). It removes only what belongs to the run: a lease or
// journal of another run (one that took over after ours expired) stays, and
// the check is made on the read whose etag the removing write carries. A
// lease or journal that is unreadable goes with ours (or, for a run recovered
// without a journal, whose id is "", with everything of ours).
func (c *converger) release(ctx context.Context, forget func() error) (string, error) {
	if err := c.rereadPatiently(ctx); err != nil {
		return "", err
	}
	done := ""
	for attempt := 0; HasRunAnnotations(c.svc.Annotations); attempt++ {
		if attempt > maxConflicts {
			return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
		}
		if other := c.someoneElses(c.svc); other != "" {
			c.warn(fmt.Sprintf("the lease on %q is another run's (%s): left alone", c.ref.Name, other))
			break
		}
		err := c.send(ctx, func(etag string) (*Service, error) {
			return c.cloud.SetAnnotations(ctx, c.ref, etag, WithoutRunAnnotations(c.svc.Annotations))
		}, func(s *Service) bool { return !HasRunAnnotations(s.Annotations) || c.someoneElses(s) != "" })
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			// Users are not affected; the lease only blocks later runs
			// until it expires. The local journal stays for recover.
			c.leaveFix(fmt.Sprintf("the lease and journal annotations on %q (could not be removed: %v)", c.ref.Name, err),
				fmt.Sprintf("runrollback recover --project %s --region %s --service %s", c.ref.Project, c.ref.Region, c.ref.Name))
			return "", nil
		}
		if c.someoneElses(c.svc) == "" {
			done = "lease released"
		}
	}
	if err := forget(); err != nil {
		return "", err
	}
	return done, nil
}
