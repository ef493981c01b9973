package rollback

import (
	"context"
	"slices"
	"sync"
	"time"
)

// WriteLimiter keeps Admin API writes within a per-region write quota (Cloud
// Run allows about 60 writes a minute per region): at most perMinute writes in
// any window of one minute (and WindowMargin), a sliding window, so the
// whole quota is usable and never exceeded. Writes that put a service back (restore, cleanup: ctx
// marked Urgent) go before writes that start or advance a drill, so one
// service's drill never delays another's restore.
//
// A write can also be reserved ahead (Reserve): the ticket holds one slot of
// the quota until the write it stands for is made, which then never waits.
// The drill reserves its restore's write before it shifts users' traffic, so
// the time users spend on a broken revision never includes a wait for quota.
//
// The limiter keeps, at all times, writes in the last minute plus tickets
// held at most perMinute: a write or a reservation is granted only when that
// leaves room, and spending a ticket turns a held slot into a write.
type WriteLimiter struct {
	limit  int
	window time.Duration
	clock  clock

	mu       sync.Mutex
	recent   []time.Time // when the writes of the last window went, oldest first
	reserved int         // tickets held, not yet spent or released
	urgent   []*waiter   // FIFO of waiters for a restoring write
	normal   []*waiter
	timer    func() bool // stops the armed timer; nil when none is armed
}

// clock is the time source of a WriteLimiter; tests inject a manual one.
type clock interface {
	Now() time.Time
	// AfterFunc calls f after d and returns a function that stops it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// waiter is a write or a reservation waiting for a slot.
type waiter struct {
	ch      chan struct{} // closed when granted
	reserve bool
}

// WindowMargin lengthens the limiter's minute: a write's time at the server
// is its time here plus a network delay that varies from call to call, and
// two writes a minute apart here may reach the server a little less than a
// minute apart. A second covers that jitter at the cost of 1/60 of the rate.
const WindowMargin = time.Second

// NewWriteLimiter allows at most perMinute writes (at least 1) in any minute,
// as the server counts them: in any window of a minute and WindowMargin, as
// the limiter does.
func NewWriteLimiter(perMinute int) *WriteLimiter {
	return &WriteLimiter{limit: max(perMinute, 1), window: time.Minute + WindowMargin, clock: realClock{}}
}

type urgentKey struct{}

// Urgent marks ctx as carrying writes that restore a service: they go first.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

func isUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }

// free drops writes older than the window and returns the slots left. Holds l.mu.
func (l *WriteLimiter) free(now time.Time) int {
	i := 0
	for i < len(l.recent) && now.Sub(l.recent[i]) >= l.window {
		i++
	}
	l.recent = l.recent[i:]
	return l.limit - len(l.recent) - l.reserved
}

// take gives one slot to w: a write now, or a held ticket. Holds l.mu.
func (l *WriteLimiter) take(reserve bool, now time.Time) {
	if reserve {
		l.reserved++
	} else {
		l.recent = append(l.recent, now)
	}
}

// Wait blocks until a write may go, or ctx ends. When ctx carries a Ticket of
// this limiter (WithTicket) that is not spent yet, the write spends it and
// goes at once.
func (l *WriteLimiter) Wait(ctx context.Context) error {
	if t := ticketFrom(ctx); t != nil && t.l == l && t.spend() {
		return nil
	}
	return l.acquire(ctx, false)
}

// Reserve waits, like a write, for a slot, and holds it in a Ticket until
// the write it stands for spends it (a write whose ctx carries the ticket:
// WithTicket) or Release gives it back. Hold a ticket only as long as needed:
// while it is held, other writes have one slot fewer.
//
// With a quota of one write a minute nothing can be reserved (the ticket and
// the shift would need two): Reserve returns a nil ticket at once, and the
// write waits as any other.
func (l *WriteLimiter) Reserve(ctx context.Context) (*Ticket, error) {
	if l.maxReserved() < 1 {
		return nil, nil
	}
	if err := l.acquire(ctx, true); err != nil {
		return nil, err
	}
	return &Ticket{l: l}, nil
}

func (l *WriteLimiter) acquire(ctx context.Context, reserve bool) error {
	w := &waiter{ch: make(chan struct{}), reserve: reserve}
	l.mu.Lock()
	if isUrgent(ctx) {
		l.urgent = append(l.urgent, w)
	} else {
		l.normal = append(l.normal, w)
	}
	l.grant()
	l.mu.Unlock()

	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-w.ch: // granted meanwhile: give the slot back
			l.giveBack(reserve)
		default:
			l.urgent = slices.DeleteFunc(l.urgent, func(x *waiter) bool { return x == w })
			l.normal = slices.DeleteFunc(l.normal, func(x *waiter) bool { return x == w })
		}
		return context.Cause(ctx)
	}
}

// giveBack returns a slot granted but not used, and hands it on. Holds l.mu.
func (l *WriteLimiter) giveBack(reserve bool) {
	if reserve {
		l.reserved--
	} else if len(l.recent) > 0 {
		l.recent = l.recent[:len(l.recent)-1] // the newest: granted to us, never made
	}
	l.grant()
}

// maxReserved is the most tickets held at once: one slot fewer than the
// quota, so that tickets alone never hold every slot (a drill holding a
// ticket still needs a slot for its shift).
func (l *WriteLimiter) maxReserved() int { return l.limit - 1 }

// grant hands out the slots there are, in order, urgent waiters first. A
// reservation that would hold more than maxReserved tickets waits for one to
// be spent or released, and lets the writes behind it pass. Holds l.mu.
func (l *WriteLimiter) grant() {
	now := l.clock.Now()
	for _, q := range []*[]*waiter{&l.urgent, &l.normal} {
		for i := 0; i < len(*q) && l.free(now) > 0; {
			w := (*q)[i]
			if w.reserve && l.reserved >= l.maxReserved() {
				i++
				continue
			}
			*q = slices.Delete(*q, i, i+1)
			l.take(w.reserve, now)
			close(w.ch)
		}
	}
	l.schedule(now)
}

// schedule arms the timer for when the oldest write leaves the window, while
// anyone waits for a slot. Slots held by tickets come back through Release or
// a spend, not with time. Holds l.mu.
func (l *WriteLimiter) schedule(now time.Time) {
	if l.timer != nil || len(l.urgent)+len(l.normal) == 0 || len(l.recent) == 0 || l.free(now) > 0 {
		return
	}
	wait := max(l.recent[0].Add(l.window).Sub(now), 0)
	l.timer = l.clock.AfterFunc(wait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.timer = nil
		l.grant()
	})
}

// Ticket is one write reserved on a WriteLimiter (Reserve). A nil *Ticket is
// valid and does nothing: no limiter, nothing reserved.
type Ticket struct {
	l    *WriteLimiter
	done bool // spent or released; guarded by l.mu
}

// spend turns the held slot into a write made now; false when the ticket was
// already spent or released.
func (t *Ticket) spend() bool {
	if t == nil {
		return false
	}
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	l.reserved--
	l.recent = append(l.recent, l.clock.Now())
	l.grant() // a capped reservation may go now
	return true
}

// Release gives back the slot of a ticket that was not spent; it does nothing
// after a spend, or a second time.
func (t *Ticket) Release() {
	if t == nil {
		return
	}
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	l.reserved--
	l.grant()
}

// Spent reports whether a write used the ticket.
func (t *Ticket) Spent() bool {
	if t == nil {
		return false
	}
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	return t.done
}

type ticketKey struct{}

// WithTicket returns ctx carrying t: the first write made with it (through a
// Metered CloudRun whose limiter issued t) spends t instead of waiting.
func WithTicket(ctx context.Context, t *Ticket) context.Context {
	if t == nil {
		return ctx
	}
	return context.WithValue(ctx, ticketKey{}, t)
}

func ticketFrom(ctx context.Context) *Ticket { t, _ := ctx.Value(ticketKey{}).(*Ticket); return t }

// ReserveWrite reserves one write on cloud's write limiter, when cloud is a
// Metered with one (a fleet's drills), for a write that must not wait later:
// the drill's restore. It returns a nil ticket, and no error, when there is
// no limiter. Carry the ticket to the write with WithTicket, and Release it
// when done (a no-op once spent).
func ReserveWrite(ctx context.Context, cloud CloudRun) (*Ticket, error) {
	if m, ok := cloud.(*Metered); ok && m.Limiter != nil {
		return m.Limiter.Reserve(ctx)
	}
	return nil, nil
}

// Metered is a CloudRun that counts the calls made through it — one per read
// or write asked for; the adapter's own retries and operation waits are not
// counted — and, with a Limiter, waits for a slot before every write (or
// spends the Ticket its ctx carries). Reports' api_calls come from it.
type Metered struct {
	CloudRun
	Limiter       *WriteLimiter
	mu            sync.Mutex
	reads, writes int64
}

var _ CloudRun = (*Metered)(nil)

func (c *Metered) count(write bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if write {
		c.writes++
	} else {
		c.reads++
	}
}

// Calls returns the reads and writes made so far.
func (c *Metered) Calls() (reads, writes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, c.writes
}

func (c *Metered) write(ctx context.Context) error {
	c.count(true)
	if c.Limiter == nil {
		return nil
	}
	return c.Limiter.Wait(ctx)
}

func (c *Metered) GetService(ctx context.Context, ref ServiceRef) (*Service, error) {
	c.count(false)
	return c.CloudRun.GetService(ctx, ref)
}

func (c *Metered) ListRevisions(ctx context.Context, ref ServiceRef) ([]Revision, error) {
	c.count(false)
	return c.CloudRun.ListRevisions(ctx, ref)
}

func (c *Metered) UpdateTraffic(ctx context.Context, ref ServiceRef, etag string, traffic Split) (*Service, error) {
	if err := c.write(ctx); err != nil {
		return nil, err
	}
	return c.CloudRun.UpdateTraffic(ctx, ref, etag, traffic)
}

func (c *Metered) UpdateTrafficAnnotated(ctx context.Context, ref ServiceRef, etag string, traffic Split, annotations map[string]string) (*Service, error) {
	if err := c.write(ctx); err != nil {
		return nil, err
	}
	return c.CloudRun.UpdateTrafficAnnotated(ctx, ref, etag, traffic, annotations)
}

func (c *Metered) DeployRevision(ctx context.Context, ref ServiceRef, etag string, d Deploy) (*Service, error) {
	if err := c.write(ctx); err != nil {
		return nil, err
	}
	return c.CloudRun.DeployRevision(ctx, ref, etag, d)
}

func (c *Metered) ReplaceTemplate(ctx context.Context, ref ServiceRef, etag string, t Template, traffic Split) (*Service, error) {
	if err := c.write(ctx); err != nil {
		return nil, err
	}
	return c.CloudRun.ReplaceTemplate(ctx, ref, etag, t, traffic)
}

func (c *Metered) SetAnnotations(ctx context.Context, ref ServiceRef, etag string, annotations map[string]string) (*Service, error) {
	if err := c.write(ctx); err != nil {
		return nil, err
	}
	return c.CloudRun.SetAnnotations(ctx, ref, etag, annotations)
}

func (c *Metered) DeleteRevision(ctx context.Context, ref ServiceRef, revision string) error {
	if err := c.write(ctx); err != nil {
		return err
	}
	return c.CloudRun.DeleteRevision(ctx, ref, revision)
}
