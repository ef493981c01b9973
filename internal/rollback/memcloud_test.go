package rollback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests do not wait out real backoffs.
func init() {
	backoffInitial = time.Millisecond
	backoffMax = 5 * time.Millisecond
}

// memRun is an in-memory CloudRun with one service: revisions built from
// templates (image and env), traffic and its resolution, etags that change on
// every accepted write, Cloud Run's refusals to delete, and faults injected
// per method. It is small on purpose: the decisions of the safety core are
// tested against it, the adapter against the real fake.
type memRun struct {
	mu   sync.Mutex
	svc  Service
	revs []Revision // newest first
	n    int        // revisions created
	ops  map[string]*Service

	// fail[method] are errors returned, in order, before the call does anything.
	fail map[string][]error
	// lose[method] counts calls that apply and then return ErrUnavailable.
	lose map[string]int
	// pend[method] counts calls that apply and then return a PendingError
	// whose operation finishes on the next ResumeOperation.
	pend map[string]int
	// opFail[method] are errors an accepted write's operation ends with,
	// after applying (like an operation whose poll fails).
	opFail map[string][]error
	// before, when set, runs once before the next write: another writer.
	before func(m *memRun)
	calls  map[string]int
	writes int
	// registry maps an image tag to the version a revision built from it now
	// runs, when the tag has moved since the seed.
	registry map[string]string
}

type memTemplate struct {
	Image string            `json:"image"`
	Env   map[string]string `json:"env"`
}

func newMemRun(name string, traffic Split, revs ...Revision) *memRun {
	m := &memRun{fail: map[string][]error{}, lose: map[string]int{}, pend: map[string]int{}, opFail: map[string][]error{}, calls: map[string]int{}, ops: map[string]*Service{}}
	m.svc = Service{Ref: ServiceRef{Project: "p-123456", Region: "us-central1", Name: name}, URI: "https://" + name + ".run.app",
		Generation: 1, ObservedGeneration: 1, Etag: "e1", Ready: true, Traffic: traffic, Annotations: map[string]string{"client.knative.dev/user-image": "app:1"}}
	for i := len(revs) - 1; i >= 0; i-- {
		r := revs[i]
		r.Ready = r.Env[BreakEnvVar] != BreakStartup
		r.CreateTime = time.Unix(int64(i), 0)
		m.revs = append([]Revision{r}, m.revs...)
		m.n++
	}
	top := m.revs[0]
	m.svc.Template = m.template(top.Image, top.Env, top.Name)
	m.svc.LatestCreatedRevision, m.svc.LatestReadyRevision = top.Name, top.Name
	m.route()
	return m
}

func (m *memRun) template(image string, env map[string]string, rev string) Template {
	raw, _ := json.Marshal(memTemplate{Image: image, Env: env})
	return Template{Revision: rev, Hash: string(raw), Image: image, Env: maps.Clone(env), Raw: raw}
}

func (m *memRun) rev(name string) *Revision {
	for i := range m.revs {
		if m.revs[i].Name == name {
			return &m.revs[i]
		}
	}
	return nil
}

// route sets the actual split from the desired one.
func (m *memRun) route() {
	m.svc.TrafficStatuses = nil
	for _, t := range Resolve(m.svc.Traffic, m.svc.LatestReadyRevision) {
		uri := ""
		if t.Tag != "" {
			uri = "https://" + t.Tag + "---" + m.svc.Ref.Name + ".run.app"
		}
		m.svc.TrafficStatuses = append(m.svc.TrafficStatuses, TargetStatus{Target: Target{Revision: t.Revision, Percent: t.Percent, Tag: t.Tag}, URI: uri})
	}
}

func (m *memRun) copy() *Service {
	s := m.svc
	s.Traffic = slices.Clone(m.svc.Traffic)
	s.TrafficStatuses = slices.Clone(m.svc.TrafficStatuses)
	s.Annotations = maps.Clone(m.svc.Annotations)
	s.Template.Env = maps.Clone(m.svc.Template.Env)
	return &s
}

// Service returns the service as stored: the tests' independent view.
func (m *memRun) Service() *Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.copy()
}

func (m *memRun) Revisions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.revs {
		out = append(out, r.Name)
	}
	return out
}

func (m *memRun) injected(method string) error {
	m.calls[method]++
	if q := m.fail[method]; len(q) > 0 {
		m.fail[method] = q[1:]
		return q[0]
	}
	return nil
}

// write applies change to the service after the usual checks and faults.
func (m *memRun) write(method, etag string, change func() error) (*Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.injected(method); err != nil {
		return nil, err
	}
	if f := m.before; f != nil {
		m.before = nil
		f(m)
	}
	if etag != m.svc.Etag {
		return nil, fmt.Errorf("%s: %w", method, ErrConflict)
	}
	saved, savedRevs, savedN := m.copy(), slices.Clone(m.revs), m.n
	if err := change(); errors.Is(err, ErrNotReady) {
		// Cloud Run keeps the desired state and serves the last good one.
		m.svc.Generation++
		m.svc.Etag = fmt.Sprintf("e%d", m.svc.Generation)
		m.svc.Ready, m.svc.Message = false, err.Error()
		m.writes++
		return nil, err
	} else if err != nil {
		m.svc, m.revs, m.n = *saved, savedRevs, savedN
		return nil, err
	}
	m.svc.Ready, m.svc.Message = true, ""
	m.bump()
	m.writes++
	if q := m.opFail[method]; len(q) > 0 {
		m.opFail[method] = q[1:]
		return nil, q[0]
	}
	if m.lose[method] > 0 {
		m.lose[method]--
		return nil, fmt.Errorf("%s: reply lost: %w", method, ErrUnavailable)
	}
	if m.pend[method] > 0 {
		m.pend[method]--
		op := fmt.Sprintf("operations/%d", m.writes)
		m.ops[op] = m.copy()
		return nil, &PendingError{Op: method, Operation: op}
	}
	return m.copy(), nil
}

func (m *memRun) bump() {
	m.svc.Generation++
	m.svc.ObservedGeneration = m.svc.Generation
	m.svc.Etag = fmt.Sprintf("e%d", m.svc.Generation)
}

// Edit plays another writer: change runs on the stored service, which then
// gets a new etag.
func (m *memRun) Edit(change func(s *Service)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	change(&m.svc)
	m.route()
	m.bump()
}

func (m *memRun) checkTraffic(t Split) error {
	if err := ValidateSplit(t); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for _, x := range t {
		if !x.Latest && m.rev(x.Revision) == nil {
			return fmt.Errorf("%w: revision %s not found", ErrInvalid, x.Revision)
		}
		if x.Latest || x.Percent == 0 {
			continue
		}
		if r := m.rev(x.Revision); !r.Ready {
			return fmt.Errorf("revision %s: %w", x.Revision, ErrNotReady)
		}
	}
	return nil
}

func (m *memRun) setTraffic(t Split) error {
	if err := m.checkTraffic(t); err != nil {
		return err
	}
	m.svc.Traffic = slices.Clone(t)
	m.route()
	return nil
}

func (m *memRun) newRevision(name string, tmpl memTemplate) error {
	m.n++
	if name == "" {
		name = fmt.Sprintf("%s-%05d-new", m.svc.Ref.Name, m.n)
	}
	if m.rev(name) != nil {
		return fmt.Errorf("%w: revision %s exists", ErrInvalid, name)
	}
	r := Revision{Name: name, CreateTime: time.Unix(int64(m.n), 0), Image: tmpl.Image, Env: maps.Clone(tmpl.Env)}
	if v, ok := m.registry[tmpl.Image]; ok {
		// The image's tag now points at another build: its version.
		r.Env["APP_VERSION"] = v
	}
	r.Ready = r.Env[BreakEnvVar] != BreakStartup
	m.revs = append([]Revision{r}, m.revs...)
	m.svc.Template = m.template(tmpl.Image, tmpl.Env, name)
	m.svc.LatestCreatedRevision = name
	if r.Ready {
		m.svc.LatestReadyRevision = name
	}
	return nil
}

func (m *memRun) GetService(context.Context, ServiceRef) (*Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.injected("GetService"); err != nil {
		return nil, err
	}
	return m.copy(), nil
}

func (m *memRun) ListRevisions(context.Context, ServiceRef) ([]Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.injected("ListRevisions"); err != nil {
		return nil, err
	}
	return slices.Clone(m.revs), nil
}

func (m *memRun) UpdateTraffic(_ context.Context, _ ServiceRef, etag string, t Split) (*Service, error) {
	return m.write("UpdateTraffic", etag, func() error { return m.setTraffic(t) })
}

func (m *memRun) UpdateTrafficAnnotated(_ context.Context, _ ServiceRef, etag string, t Split, ann map[string]string) (*Service, error) {
	return m.write("UpdateTrafficAnnotated", etag, func() error {
		if err := checkAnnotations(ann); err != nil {
			return err
		}
		m.svc.Annotations = maps.Clone(ann)
		return m.setTraffic(t)
	})
}

// checkAnnotations refuses, as Cloud Run does, annotations over 256 KiB in all.
func checkAnnotations(ann map[string]string) error {
	size := 0
	for k, v := range ann {
		size += len(k) + len(v)
	}
	if size > 256<<10 {
		return fmt.Errorf("%w: annotations are %d bytes, more than 256 KiB", ErrInvalid, size)
	}
	return nil
}

func (m *memRun) DeployRevision(_ context.Context, _ ServiceRef, etag string, d Deploy) (*Service, error) {
	return m.write("DeployRevision", etag, func() error {
		tmpl := memTemplate{Image: m.svc.Template.Image, Env: maps.Clone(m.svc.Template.Env)}
		if tmpl.Env == nil {
			tmpl.Env = map[string]string{}
		}
		maps.Copy(tmpl.Env, d.Env)
		for _, k := range d.Unset {
			delete(tmpl.Env, k)
		}
		if d.Image != "" {
			tmpl.Image = d.Image
		}
		if err := m.newRevision(d.Revision, tmpl); err != nil {
			return err
		}
		if d.Annotations != nil {
			if err := checkAnnotations(d.Annotations); err != nil {
				return err
			}
			m.svc.Annotations = maps.Clone(d.Annotations)
		}
		if err := m.checkTraffic(d.Traffic); errors.Is(err, ErrNotReady) || !m.rev(m.svc.LatestCreatedRevision).Ready {
			m.svc.Traffic = slices.Clone(d.Traffic)
			return fmt.Errorf("revision %s: %w", m.svc.LatestCreatedRevision, ErrNotReady)
		}
		return m.setTraffic(d.Traffic)
	})
}

func (m *memRun) ReplaceTemplate(_ context.Context, _ ServiceRef, etag string, t Template, traffic Split) (*Service, error) {
	return m.write("ReplaceTemplate", etag, func() error {
		var tmpl memTemplate
		if err := json.Unmarshal(t.Raw, &tmpl); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := m.newRevision("", tmpl); err != nil {
			return err
		}
		return m.setTraffic(traffic)
	})
}

func (m *memRun) SetAnnotations(_ context.Context, _ ServiceRef, etag string, ann map[string]string) (*Service, error) {
	return m.write("SetAnnotations", etag, func() error {
		if err := checkAnnotations(ann); err != nil {
			return err
		}
		m.svc.Annotations = maps.Clone(ann)
		return nil
	})
}

func (m *memRun) DeleteRevision(_ context.Context, _ ServiceRef, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.injected("DeleteRevision"); err != nil {
		return err
	}
	switch {
	case m.rev(name) == nil:
		return nil
	case len(m.revs) == 1, name == m.svc.LatestCreatedRevision,
		slices.ContainsFunc(m.svc.Traffic, func(t Target) bool { return t.Revision == name }),
		slices.ContainsFunc(m.svc.TrafficStatuses, func(t TargetStatus) bool { return t.Revision == name }):
		return fmt.Errorf("delete %s: %w", name, ErrRefused)
	}
	m.revs = slices.DeleteFunc(m.revs, func(r Revision) bool { return r.Name == name })
	m.writes++
	return nil
}

func (m *memRun) ResumeOperation(_ context.Context, op string) (*Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.injected("ResumeOperation"); err != nil {
		return nil, err
	}
	if _, ok := m.ops[op]; !ok {
		return nil, fmt.Errorf("operation %s: %w", op, ErrNotFound)
	}
	delete(m.ops, op)
	return m.copy(), nil
}

// servingRevision is the revision a request to url reaches: the tag's, or
// the largest share of the actual split.
func (m *memRun) servingRevision(url string) *Revision {
	m.mu.Lock()
	defer m.mu.Unlock()
	best := TargetStatus{Target: Target{Percent: -1}}
	for _, st := range m.svc.TrafficStatuses {
		if st.URI != "" && st.URI == url {
			return m.rev(st.Revision)
		}
		if url == m.svc.URI && st.Percent > best.Percent {
			best = st
		}
	}
	if best.Revision == "" {
		return nil
	}
	return m.rev(best.Revision)
}

// memProbe answers as the revision serving the URL would: healthy with its
// APP_VERSION unless it carries a break.
type memProbe struct {
	m *memRun
	// sick lists URLs that answer unhealthy whatever serves them.
	sick map[string]bool
}

func (p memProbe) answer(url string) (ok bool, version, revision string) {
	r := p.m.servingRevision(url)
	if r == nil {
		return false, "", ""
	}
	brk := r.Env[BreakEnvVar]
	return brk == "" && !p.sick[url], r.Env["APP_VERSION"], r.Name
}

func (p memProbe) WaitHealthy(_ context.Context, url string, exp Expect) ProbeResult {
	ok, v, rev := p.answer(url)
	if exp.Version != "" && v != exp.Version {
		ok = false
	}
	if exp.Revisions != nil && !slices.Contains(exp.Revisions, rev) {
		ok = false
	}
	return ProbeResult{OK: ok, Version: v, Revision: rev, Attempts: 1, Detail: fmt.Sprintf("%s answered %s from %s (ok=%v)", url, v, rev, ok)}
}

func (p memProbe) WaitFailure(_ context.Context, url string, exp Expect) ProbeResult {
	ok, v, rev := p.answer(url)
	broken := !ok || (exp.Version != "" && v != exp.Version)
	return ProbeResult{OK: broken, Version: v, Revision: rev, Attempts: 1, Detail: fmt.Sprintf("%s answered %s from %s", url, v, rev)}
}

// apiWorld is a service like the default world's api: two revisions, 100%
// pinned to the newer.
func apiWorld() *memRun {
	return newMemRun("api", Split{{Revision: "api-00002-def", Percent: 100}},
		Revision{Name: "api-00002-def", Image: "app:1.1", Env: map[string]string{"APP_VERSION": "1.1.0"}},
		Revision{Name: "api-00001-abc", Image: "app:1.0", Env: map[string]string{"APP_VERSION": "1.0.0"}})
}

// webWorld is LATEST-tracking, one revision.
func webWorld() *memRun {
	return newMemRun("web", Split{{Latest: true, Percent: 100}},
		Revision{Name: "web-00001-aaa", Image: "web:1", Env: map[string]string{"APP_VERSION": "1.0.0"}})
}

// checkoutWorld is split 90/10, the 10 tagged canary.
func checkoutWorld() *memRun {
	return newMemRun("checkout", Split{{Revision: "checkout-00002-bbb", Percent: 90}, {Revision: "checkout-00003-ccc", Percent: 10, Tag: "canary"}},
		Revision{Name: "checkout-00003-ccc", Image: "co:2.1", Env: map[string]string{"APP_VERSION": "2.1.0"}},
		Revision{Name: "checkout-00002-bbb", Image: "co:2.0", Env: map[string]string{"APP_VERSION": "2.0.0"}})
}

// leftovers lists what of runrollback's is on the service: annotations, drill
// tags, drill revisions, and a template other than want's.
func (m *memRun) leftovers(want Template) []string {
	s := m.Service()
	var out []string
	for k := range s.Annotations {
		if isRunAnnotation(k) {
			out = append(out, "annotation "+k)
		}
	}
	for _, t := range s.Traffic {
		if strings.HasPrefix(t.Tag, "drill-") {
			out = append(out, "tag "+t.Tag)
		}
	}
	for _, r := range m.Revisions() {
		if strings.Contains(r, "-drill-") {
			out = append(out, "revision "+r)
		}
	}
	if s.Template.Hash != want.Hash {
		out = append(out, "template "+s.Template.Hash)
	}
	return out
}

// assertClean fails t unless traffic is want and nothing of ours is left.
func assertClean(t *testing.T, m *memRun, want Split, tmpl Template) {
	t.Helper()
	if got := m.Service().Traffic; !got.Equal(want) {
		t.Errorf("traffic = %s, want %s", got, want)
	}
	if l := m.leftovers(tmpl); len(l) > 0 {
		t.Errorf("left on the service: %v", l)
	}
}

func testJournal(t *testing.T) FileJournal { return FileJournal{Dir: t.TempDir()} }
