package rollback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// converger puts a service back as a journal says: the drill's restore and
// cleanup and `recover` share it. Every action decides from the service as it is
// now (svc, kept current after each write), does nothing when there is nothing
// to do, and on a stale etag reads the service again and decides again, so no
// one else's change is overwritten and running it twice changes nothing.
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
}

// maxConflicts bounds how often one action re-reads after a stale etag.
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

// write runs a write; on a stale etag it re-reads and reports retry=true.
func (c *converger) write(ctx context.Context, fn func(etag string) (*Service, error)) (retry bool, err error) {
	svc, err := fn(c.svc.Etag)
	if err == nil {
		c.svc = svc
		return false, nil
	}
	if errors.Is(err, ErrConflict) {
		if rerr := c.reread(ctx); rerr != nil {
			return false, err
		}
		return true, nil
	}
	return false, err
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

// restoreTraffic puts the snapshot's traffic back, pinned, when what is there is
// what the run left (or only the snapshot's entries and ours). When another
// writer changed it, their change stays: only our entries are taken out (their
// share going to the last good revision), and c.conflict says what differs.
func (c *converger) restoreTraffic(ctx context.Context) (string, error) {
	snap := c.j.Snapshot
	pinned := snap.Pinned()
	// The run may have stopped on a write whose outcome it did not see (an
	// operation that failed after changing the desired traffic): decide from
	// the service as it is now.
	if err := c.reread(ctx); err != nil {
		return "", err
	}
	for range maxConflicts {
		cur := c.svc.Traffic
		var want Split
		switch {
		case cur.Equal(snap.Traffic) || cur.Equal(pinned):
			return "", nil
		case c.j.From != nil && cur.Equal(c.j.From):
			want = pinned // an interrupted guard: finish its rollback
		case c.j.Expect != nil && (SameSplit(cur, c.j.Expect) || (c.j.Prior != nil && SameSplit(cur, c.j.Prior))):
			want = pinned // exactly what the run left (its last write applied, or not)
		case c.j.Expect == nil && c.onlySnapshotAndOurs(cur):
			want = pinned
		case !slices.ContainsFunc(cur, c.ours):
			c.conflict = fmt.Sprintf("someone else changed the traffic of %q during the run: before %s, the run left %s, now %s; nothing of the run's is in it, so it was left alone",
				c.ref.Name, snap.Traffic, orUnknown(c.j.Expect), cur)
			return "traffic left as the other writer set it: " + cur.String(), nil
		default:
			want = c.withoutOurs(cur)
			c.conflict = fmt.Sprintf("someone else changed the traffic of %q during the run: before %s, the run left %s, they set %s; only the run's share was moved back: %s",
				c.ref.Name, snap.Traffic, orUnknown(c.j.Expect), cur, want)
		}
		retry, err := c.write(ctx, func(etag string) (*Service, error) { return c.cloud.UpdateTraffic(ctx, c.ref, etag, want) })
		if err != nil {
			return "", err
		}
		if retry {
			c.conflict = ""
			c.warn(fmt.Sprintf("the etag of %q went stale (generation %d now): read again", c.ref.Name, c.svc.Generation))
			continue
		}
		return "traffic back on the last good revision(s): " + want.String(), nil
	}
	return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
}

func orUnknown(s Split) string {
	if s == nil {
		return "(unknown)"
	}
	return s.String()
}

// cleanup writes the template back when it is still the run's, writes the
// traffic list verbatim when it is the pinned one, deletes the broken revision
// when nothing routes to it, and removes our annotations.
func (c *converger) cleanup(ctx context.Context, keepJournal func() error) (string, error) {
	var done []string
	snap := c.j.Snapshot
	for attempt := 0; ; attempt++ {
		if attempt == maxConflicts {
			return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
		}
		tmpl := c.svc.Template
		if !c.j.TemplateChanged || tmpl.Hash == snap.Template.Hash {
			break
		}
		if c.j.BrokenRevision == "" || tmpl.Revision != c.j.BrokenRevision {
			c.warn(fmt.Sprintf("the template of %q changed since the run, and not to the run's revision: left as it is", c.ref.Name))
			break
		}
		before := c.svc.LatestCreatedRevision
		retry, err := c.write(ctx, func(etag string) (*Service, error) {
			return c.cloud.ReplaceTemplate(ctx, c.ref, etag, snap.Template, c.svc.Traffic)
		})
		if err != nil {
			return "", fmt.Errorf("%w: the template still builds the broken revision: %w", ErrNotRestored, err)
		}
		if retry {
			continue
		}
		if c.svc.LatestCreatedRevision != before {
			c.rep.RevisionsCreated = appendNew(c.rep.RevisionsCreated, c.svc.LatestCreatedRevision)
			done = append(done, "template restored as fresh revision "+c.svc.LatestCreatedRevision)
		} else {
			done = append(done, "template restored")
		}
		break
	}
	for attempt := 0; c.conflict == "" && c.svc.Traffic.Equal(snap.Pinned()) && !c.svc.Traffic.Equal(snap.Traffic); attempt++ {
		if attempt == maxConflicts {
			return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
		}
		retry, err := c.write(ctx, func(etag string) (*Service, error) { return c.cloud.UpdateTraffic(ctx, c.ref, etag, snap.Traffic) })
		if err != nil {
			return "", fmt.Errorf("%w: write the traffic list verbatim: %w", ErrNotRestored, err)
		}
		if !retry {
			done = append(done, "traffic list written verbatim: "+snap.Traffic.String())
		}
	}
	if b := c.j.BrokenRevision; b != "" {
		routed := slices.ContainsFunc(c.svc.Traffic, func(t Target) bool { return t.Revision == b })
		switch {
		case c.j.KeepRevision:
			done = append(done, "kept revision "+b+" (--keep-revision)")
		case routed:
			c.warn(fmt.Sprintf("revision %s is still named in the traffic of %q: not deleted", b, c.ref.Name))
		default:
			revs, err := c.cloud.ListRevisions(ctx, c.ref)
			if err != nil {
				return "", err
			}
			if slices.ContainsFunc(revs, func(r Revision) bool { return r.Name == b }) {
				if err := c.cloud.DeleteRevision(ctx, c.ref, b); err != nil {
					c.warn(fmt.Sprintf("could not delete revision %s: %v", b, err))
				} else {
					c.rep.RevisionsDeleted = appendNew(c.rep.RevisionsDeleted, b)
					done = append(done, "deleted revision "+b)
				}
			}
		}
	}
	d, err := c.release(ctx, keepJournal)
	if err != nil {
		return "", err
	}
	if d != "" {
		done = append(done, d)
	}
	return strings.Join(done, "; "), nil
}

// release removes our annotations, then the local journal (deleteJournal).
func (c *converger) release(ctx context.Context, deleteJournal func() error) (string, error) {
	if err := c.reread(ctx); err != nil {
		return "", err
	}
	done := ""
	for attempt := 0; HasRunAnnotations(c.svc.Annotations); attempt++ {
		if attempt == maxConflicts {
			return "", fmt.Errorf("%w: %q kept changing under us", ErrConflict, c.ref.Name)
		}
		_, err := c.write(ctx, func(etag string) (*Service, error) {
			return c.cloud.SetAnnotations(ctx, c.ref, etag, WithoutRunAnnotations(c.svc.Annotations))
		})
		if err != nil {
			return "", fmt.Errorf("%w: remove the lease and journal annotations: %w", ErrNotRestored, err)
		}
		done = "lease released"
	}
	if err := deleteJournal(); err != nil {
		return "", err
	}
	return done, nil
}
