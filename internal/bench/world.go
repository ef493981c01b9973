package bench

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
	"github.com/runrollback/runrollback/internal/rollback"
)

// The default world's service the procedures work on.
const (
	Project = "local-project"
	Region  = "us-central1"
	Service = "api"
)

// Ref is the service the procedures work on.
var Ref = rollback.ServiceRef{Project: Project, Region: Region, Name: Service}

// apiMethods are the Admin API RPCs fakerun serves; each gets the round trip.
var apiMethods = []string{
	"CreateService", "GetService", "ListServices", "UpdateService", "DeleteService",
	"GetRevision", "ListRevisions", "DeleteRevision",
	"GetOperation", "ListOperations", "DeleteOperation", "WaitOperation",
}

// writeMethods are the RPCs that count against Cloud Run's write quota (the
// ones fakerun's Writes counts).
var writeMethods = map[string]bool{"CreateService": true, "UpdateService": true, "DeleteService": true, "DeleteRevision": true}

func writesIn(calls map[string]int) int {
	n := 0
	for m, c := range calls {
		if writeMethods[m] {
			n += c
		}
	}
	return n
}

// Calls splits fakerun's per-method call counts since before into reads and
// writes (every RPC the fake saw: failed ones and operation waits included).
func Calls(before, after map[string]int) (reads, writes int64) {
	for m, n := range after {
		d := int64(n - before[m])
		if writeMethods[m] {
			writes += d
		} else {
			reads += d
		}
	}
	return reads, writes
}

// World is a fake Cloud Run (Admin API and serving plane) seeded with the
// default world, the model's round trip on every call, cold starts, and
// Cloud Run's operation time played on top: each write's operation completes
// the round trip plus its modelled duration after the request arrives.
type World struct {
	Srv   *fakerun.Server
	Plane *fakeapp.Plane
	URL   string // the service URL of api
	Good  string // the revision serving api before anything happens

	stop, done chan struct{}

	mu       sync.Mutex
	landings []Landing
	deploys  int // writes whose operation created a revision
	others   int
	firstRPC time.Time // the first RPC after MarkStart
	marked   bool
	mark     int // calls when MarkStart was called
}

// Landing is an operation completing: when, whether api's actual split then
// sent every request to the good revision, and the revision that then had
// all of it ("" when none had).
type Landing struct {
	At   time.Time
	Good bool
	Full string
}

// NewWorld starts a world. With ops false, operations finish at once (the
// fleet benchmark): then only the round trip is modelled.
func NewWorld(m Model, world fakerun.World, ops bool, opts ...fakeapp.Option) (*World, error) {
	srv, err := fakerun.NewServer(fakerun.WithRollout(fakerun.InstantRollout())) // the model plays the operation time
	if err != nil {
		return nil, err
	}
	plane := fakeapp.New(srv, append([]fakeapp.Option{fakeapp.WithColdStart(m.S(m.ColdStart))}, opts...)...)
	if err := srv.Seed(world); err != nil {
		plane.Close()
		srv.Close()
		return nil, err
	}
	for _, meth := range apiMethods {
		srv.SetLatency(meth, m.S(m.RTT))
	}
	w := &World{Srv: srv, Plane: plane, stop: make(chan struct{}), done: make(chan struct{})}
	if ops {
		srv.HoldOperations(true)
		go w.completeOperations(m)
	} else {
		close(w.done)
	}
	return w, nil
}

// NewAPIWorld is the default world, with api's serving revision warmed up
// (in production it has been serving for a while).
func NewAPIWorld(m Model, opts ...fakeapp.Option) (*World, error) {
	w, err := NewWorld(m, fakerun.DefaultWorld(), true, opts...)
	if err != nil {
		return nil, err
	}
	svc := w.Srv.Service(Ref.FullName())
	w.URL = svc.GetUri()
	if ts := svc.GetTrafficStatuses(); len(ts) == 1 {
		w.Good = short(ts[0].GetRevision())
	}
	if w.Good == "" {
		w.Close()
		return nil, fmt.Errorf("the default world's %s should serve one revision: %v", Service, svc.GetTrafficStatuses())
	}
	resp, err := http.Get(w.URL + "/")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("warm up %s: %w", w.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.Close()
		return nil, fmt.Errorf("warm up %s: HTTP %d", w.URL, resp.StatusCode)
	}
	return w, nil
}

// Close stops the world.
func (w *World) Close() {
	select {
	case <-w.done:
	default:
		close(w.stop)
		<-w.done
	}
	w.Plane.Close()
	w.Srv.Close()
}

// MarkStart notes that a command is about to start: FirstRPC reports when
// the fake saw its first call.
func (w *World) MarkStart() {
	n := 0
	for _, c := range w.Srv.Calls() {
		n += c
	}
	w.mu.Lock()
	w.marked, w.mark, w.firstRPC = true, n, time.Time{}
	w.mu.Unlock()
}

// FirstRPC is when the first call after MarkStart reached the fake (to the
// millisecond the operation clock polls at), or false.
func (w *World) FirstRPC() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstRPC, !w.firstRPC.IsZero()
}

// completeOperations plays Cloud Run's operation time. Clients write one at
// a time here, so releasing every pending operation releases that write's.
// After each release it records where users' traffic is.
func (w *World) completeOperations(m Model) {
	defer close(w.done)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	seen := writesIn(w.Srv.Calls())
	type write struct {
		at      time.Time
		decided bool
		deploy  bool
	}
	var queue []write
	rtt, deployOp, otherOp := m.S(m.RTT), m.S(m.DeployOp), m.S(m.OtherOp)
	for {
		select {
		case <-w.stop:
			w.Srv.ReleaseOperations()
			return
		case <-tick.C:
		}
		now := time.Now()
		calls := w.Srv.Calls()
		w.mu.Lock()
		if w.marked && w.firstRPC.IsZero() {
			n := 0
			for _, c := range calls {
				n += c
			}
			if n > w.mark {
				w.firstRPC = now
			}
		}
		w.mu.Unlock()
		if n := writesIn(calls); n > seen {
			for range n - seen {
				queue = append(queue, write{at: now})
			}
			seen = n
		}
		if len(queue) == 0 || now.Sub(queue[0].at) < rtt+otherOp {
			continue
		}
		if !queue[0].decided {
			// By now the request was handled: a revision it created is still
			// reconciling.
			queue[0].decided = true
			for _, r := range w.Srv.Revisions(Ref.FullName()) {
				if r.GetReconciling() {
					queue[0].deploy = true
				}
			}
		}
		if queue[0].deploy && now.Sub(queue[0].at) < rtt+deployOp {
			continue
		}
		w.Srv.ReleaseOperations()
		l := Landing{At: time.Now(), Good: w.servingGood(), Full: w.servingAll()}
		w.mu.Lock()
		w.landings = append(w.landings, l)
		if queue[0].deploy {
			w.deploys++
		} else {
			w.others++
		}
		w.mu.Unlock()
		queue = queue[1:]
	}
}

func (w *World) servingGood() bool {
	for _, t := range w.Srv.Service(Ref.FullName()).GetTrafficStatuses() {
		if t.GetPercent() > 0 && short(t.GetRevision()) != w.Good {
			return false
		}
	}
	return true
}

func (w *World) servingAll() string {
	for _, t := range w.Srv.Service(Ref.FullName()).GetTrafficStatuses() {
		if t.GetPercent() == 100 {
			return short(t.GetRevision())
		}
	}
	return ""
}

// Landings returns the operations completed so far.
func (w *World) Landings() []Landing {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Landing(nil), w.landings...)
}

// Ops returns how many completed operations created a revision, and how
// many did not.
func (w *World) Ops() (deploys, others int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deploys, w.others
}

// Away is the time users spent on other revisions, by the operation clock:
// from the operation that moved traffic off the good revision completing to
// the one that moved it all back completing.
func (w *World) Away() (time.Duration, error) {
	var left time.Time
	for _, l := range w.Landings() {
		switch {
		case left.IsZero() && !l.Good:
			left = l.At
		case !left.IsZero() && l.Good:
			return l.At.Sub(left), nil
		}
	}
	return 0, fmt.Errorf("traffic never left and came back to %s: %+v", w.Good, w.Landings())
}

// LeftGood reports how many operations completed, and whether any left
// api's actual split sending requests elsewhere than the good revision.
func (w *World) LeftGood() (n int, left bool) {
	ls := w.Landings()
	for _, l := range ls {
		if !l.Good {
			left = true
		}
	}
	return len(ls), left
}

// LandedFull returns when the first operation completed (the deploy, on a
// fresh world) and when the first one that left all of api's traffic on rev
// completed.
func (w *World) LandedFull(rev string) (first, full time.Time, ok bool) {
	ls := w.Landings()
	if len(ls) == 0 {
		return first, full, false
	}
	for _, l := range ls {
		if l.Full == rev {
			return ls[0].At, l.At, true
		}
	}
	return first, full, false
}

// Traffic renders api's desired traffic as "rev=100, rev2=0@tag".
func (w *World) Traffic(name string) string {
	var parts []string
	for _, t := range w.Srv.Service(FullName(name)).GetTraffic() {
		rev := short(t.GetRevision())
		if rev == "" {
			rev = "LATEST"
		}
		s := fmt.Sprintf("%s=%d", rev, t.GetPercent())
		if t.GetTag() != "" {
			s += "@" + t.GetTag()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// FullName is the resource name of a service of the default project and region.
func FullName(name string) string {
	return "projects/" + Project + "/locations/" + Region + "/services/" + name
}

// short is the last path element of a resource name.
func short(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }
