package rollback

import (
	"context"
	"sync"
	"time"
)

// WriteLimiter spaces Admin API writes to stay under a per-region write quota
// (Cloud Run allows about 60 writes a minute per region). Writes that put a
// service back (restore, cleanup) go before writes that start or advance a
// drill, so one service's drill never delays another's restore.
type WriteLimiter struct {
	interval time.Duration
	burst    float64
	now      func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
	urgent []chan struct{} // FIFO of waiters for a restoring write
	normal []chan struct{}
	timer  *time.Timer
}

// NewWriteLimiter allows at most perMinute writes in any minute: bursts of up
// to burst, and a steady perMinute-burst a minute after that, so that a burst
// plus the steady rate never exceeds the quota within one minute.
func NewWriteLimiter(perMinute, burst int) *WriteLimiter {
	burst = min(max(burst, 1), max(perMinute-1, 1))
	steady := max(perMinute-burst, 1)
	l := &WriteLimiter{interval: time.Minute / time.Duration(steady), burst: float64(burst), now: time.Now}
	l.tokens, l.last = l.burst, l.now()
	return l
}

type urgentKey struct{}

// Urgent marks ctx as carrying writes that restore a service: they go first.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

func isUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }

func (l *WriteLimiter) refill() {
	now := l.now()
	l.tokens = min(l.burst, l.tokens+float64(now.Sub(l.last))/float64(l.interval))
	l.last = now
}

// Wait blocks until a write may go, or ctx ends.
func (l *WriteLimiter) Wait(ctx context.Context) error {
	urgent := isUrgent(ctx)
	l.mu.Lock()
	l.refill()
	if l.tokens >= 1 && len(l.urgent) == 0 && (urgent || len(l.normal) == 0) {
		l.tokens--
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if urgent {
		l.urgent = append(l.urgent, ch)
	} else {
		l.normal = append(l.normal, ch)
	}
	l.schedule()
	l.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-ch: // granted meanwhile: give the token back
			l.tokens++
			l.grant()
		default:
			l.urgent = removeChan(l.urgent, ch)
			l.normal = removeChan(l.normal, ch)
		}
		return context.Cause(ctx)
	}
}

// grant hands out the tokens there are, urgent waiters first. Holds l.mu.
func (l *WriteLimiter) grant() {
	for l.tokens >= 1 && len(l.urgent)+len(l.normal) > 0 {
		var ch chan struct{}
		if len(l.urgent) > 0 {
			ch, l.urgent = l.urgent[0], l.urgent[1:]
		} else {
			ch, l.normal = l.normal[0], l.normal[1:]
		}
		l.tokens--
		close(ch)
	}
	l.schedule()
}

// schedule arms the timer for the next token while anyone waits. Holds l.mu.
func (l *WriteLimiter) schedule() {
	if l.timer != nil || len(l.urgent)+len(l.normal) == 0 {
		return
	}
	wait := time.Duration((1 - l.tokens) * float64(l.interval))
	l.timer = time.AfterFunc(max(wait, 0), func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.timer = nil
		l.refill()
		l.grant()
	})
}

func removeChan(q []chan struct{}, ch chan struct{}) []chan struct{} {
	for i, c := range q {
		if c == ch {
			return append(q[:i], q[i+1:]...)
		}
	}
	return q
}

// Metered is a CloudRun that counts the calls made through it — one per read
// or write asked for; the adapter's own retries and operation waits are not
// counted — and, with a Limiter, takes a token before every write. Reports'
// api_calls come from it.
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
