package cloudrun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	lroauto "cloud.google.com/go/longrunning/autogen"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Transport is how the client speaks to the Admin API.
type Transport string

const (
	// GRPC is gRPC over HTTP/2, the default.
	GRPC Transport = "grpc"
	// REST is the API's HTTP/JSON mapping (https://run.googleapis.com/v2/...),
	// for networks that pass HTTPS but not gRPC.
	REST Transport = "rest"
)

// ParseTransport reads a transport name: "grpc" or "rest".
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case GRPC, REST:
		return t, nil
	}
	return "", fmt.Errorf("transport %q is not valid: use grpc or rest", s)
}

// Config says how to reach Cloud Run and how patient to be.
type Config struct {
	// Transport is GRPC (the default, also for "") or REST.
	Transport Transport
	// EmulatorHost, when set, means no credentials and plaintext to HOST:PORT:
	// gRPC, or HTTP/1.1 (http://HOST:PORT) with the REST transport.
	EmulatorHost string
	// Options are extra client options (credentials, endpoint) for real Cloud Run.
	Options []option.ClientOption
	// CallTimeout bounds one RPC attempt. Default 30s.
	CallTimeout time.Duration
	// Retry is the backoff for retried calls.
	Retry Backoff
	// OperationTimeout bounds the wait for a long-running operation. Default 5m.
	OperationTimeout time.Duration
	// PollInterval is the first delay between operation polls. Default 500ms
	// (backing off to 5s); emulators finish operations at once.
	PollInterval time.Duration
	// Sleep waits or returns early when ctx ends; tests inject it. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Backoff is a capped, jittered exponential backoff.
type Backoff struct {
	Initial     time.Duration // default 200ms
	Max         time.Duration // default 5s
	MaxAttempts int           // attempts in all, default 5
}

func (b Backoff) delay(attempt int, jitter float64) time.Duration {
	d := cmp.Or(b.Initial, 200*time.Millisecond) << min(attempt, 20)
	d = min(d, cmp.Or(b.Max, 5*time.Second))
	// Full jitter in [d/2, d].
	return d/2 + time.Duration(jitter*float64(d/2))
}

// Client talks to the Cloud Run Admin API v2. It implements rollback.CloudRun.
type Client struct {
	services  *run.ServicesClient
	revisions *run.RevisionsClient
	cfg       Config
	reads     atomic.Int64
	writes    atomic.Int64
	// noWait is set once the server answers WaitOperation with UNIMPLEMENTED.
	noWait atomic.Bool
}

var _ rollback.CloudRun = (*Client)(nil)

// New dials Cloud Run (or the emulator named in cfg), over the transport
// cfg names.
func New(ctx context.Context, cfg Config) (*Client, error) {
	svcs, revs, err := dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to Cloud Run: %w", err)
	}
	// Our own loop owns retries and deadlines: the generated defaults would retry
	// with a 1 s initial backoff, and drop their timeouts under a context deadline.
	// (The REST clients keep a pointer to the options the client was made
	// with, so they are cleared in place. Their LROClient is not exposed; we
	// poll operations ourselves, through the Services client, on either
	// transport.)
	*svcs.CallOptions = run.ServicesCallOptions{}
	*revs.CallOptions = run.RevisionsCallOptions{}
	for _, lro := range []*lroauto.OperationsClient{svcs.LROClient, revs.LROClient} {
		if lro != nil {
			*lro.CallOptions = lroauto.OperationsCallOptions{}
		}
	}
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, 30*time.Second)
	cfg.OperationTimeout = cmp.Or(cfg.OperationTimeout, 5*time.Minute)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, 500*time.Millisecond)
	cfg.Retry.MaxAttempts = cmp.Or(cfg.Retry.MaxAttempts, 5)
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Client{services: svcs, revisions: revs, cfg: cfg}, nil
}

// dial makes the generated Services and Revisions clients for cfg's transport.
func dial(ctx context.Context, cfg Config) (*run.ServicesClient, *run.RevisionsClient, error) {
	opts := append([]option.ClientOption(nil), cfg.Options...)
	newServices, newRevisions := run.NewServicesClient, run.NewRevisionsClient
	switch cfg.Transport {
	case "", GRPC:
		if cfg.EmulatorHost != "" {
			opts = append(opts,
				option.WithEndpoint(cfg.EmulatorHost),
				option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			)
		}
	case REST:
		newServices, newRevisions = run.NewServicesRESTClient, run.NewRevisionsRESTClient
		if cfg.EmulatorHost != "" {
			opts = append(opts, option.WithEndpoint("http://"+cfg.EmulatorHost), option.WithoutAuthentication())
		}
	default:
		_, err := ParseTransport(string(cfg.Transport))
		return nil, nil, err
	}
	svcs, err := newServices(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	revs, err := newRevisions(ctx, opts...)
	if err != nil {
		svcs.Close()
		return nil, nil, err
	}
	return svcs, revs, nil
}

// Close closes the connections.
func (c *Client) Close() error {
	return errors.Join(c.services.Close(), c.revisions.Close())
}

// Calls returns the number of read and write RPCs sent so far (each attempt counts).
func (c *Client) Calls() (reads, writes int64) { return c.reads.Load(), c.writes.Load() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// retryable says whether an attempt's error may be retried, and after how long
// at least (a server-requested delay).
func retryable(err error) (bool, time.Duration) {
	switch codeOf(err) {
	case codes.Unavailable:
		return true, retryDelay(err)
	case codes.ResourceExhausted:
		// A write quota refills within a minute: back off, at least as long
		// as the server asks.
		return true, retryDelay(err)
	}
	return false, 0
}

// call runs fn with a per-attempt deadline, retrying as the policy allows. It
// returns the last raw error (not mapped), so writes can inspect it.
func (c *Client) call(ctx context.Context, write bool, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if write {
			c.writes.Add(1)
		} else {
			c.reads.Add(1)
		}
		actx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		err = fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		ok, floor := retryable(err)
		_, bounded := ctx.Deadline()
		// A quota refills within a minute: under a deadline (a drill's, a
		// restore's), keep waiting for it rather than give up after a few
		// tries with users on a broken revision.
		patient := bounded && codeOf(err) == codes.ResourceExhausted
		if !ok || (attempt+1 >= c.cfg.Retry.MaxAttempts && !patient) {
			return err
		}
		d := max(c.cfg.Retry.delay(attempt, rand.Float64()), floor)
		if dl, has := ctx.Deadline(); has && time.Until(dl) < d {
			return err
		}
		if serr := c.cfg.Sleep(ctx, d); serr != nil {
			return err
		}
	}
}

// GetService reads a service.
func (c *Client) GetService(ctx context.Context, ref rollback.ServiceRef) (*rollback.Service, error) {
	s, err := c.getService(ctx, ref)
	if err != nil {
		return nil, err
	}
	return toService(s)
}

func (c *Client) getService(ctx context.Context, ref rollback.ServiceRef) (*runpb.Service, error) {
	var s *runpb.Service
	err := c.call(ctx, false, func(ctx context.Context) error {
		var err error
		s, err = c.services.GetService(ctx, &runpb.GetServiceRequest{Name: ref.FullName()})
		return err
	})
	if err != nil {
		return nil, mapErr(fmt.Sprintf("read service %q", ref.Name), err)
	}
	return s, nil
}

// ListServices lists the services of a project in a region.
func (c *Client) ListServices(ctx context.Context, project, region string) ([]*rollback.Service, error) {
	var out []*rollback.Service
	token := ""
	parent := fmt.Sprintf("projects/%s/locations/%s", project, region)
	for {
		var resp *runpb.ListServicesResponse
		err := c.call(ctx, false, func(ctx context.Context) error {
			it := c.services.ListServices(ctx, &runpb.ListServicesRequest{Parent: parent, PageSize: 100, PageToken: token})
			_, err := it.Next()
			if err != nil && !errors.Is(err, iterator.Done) {
				return err
			}
			resp, _ = it.Response.(*runpb.ListServicesResponse)
			return nil
		})
		if err != nil {
			return nil, mapErr("list services in "+parent, err)
		}
		if resp == nil {
			return out, nil
		}
		for _, s := range resp.GetServices() {
			svc, err := toService(s)
			if err != nil {
				return nil, err
			}
			out = append(out, svc)
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// ListRevisions lists a service's revisions, newest first.
func (c *Client) ListRevisions(ctx context.Context, ref rollback.ServiceRef) ([]rollback.Revision, error) {
	var out []rollback.Revision
	token := ""
	for {
		var resp *runpb.ListRevisionsResponse
		err := c.call(ctx, false, func(ctx context.Context) error {
			it := c.revisions.ListRevisions(ctx, &runpb.ListRevisionsRequest{Parent: ref.FullName(), PageSize: 100, PageToken: token})
			_, err := it.Next()
			if err != nil && !errors.Is(err, iterator.Done) {
				return err
			}
			r, _ := it.Response.(*runpb.ListRevisionsResponse)
			resp = r
			return nil
		})
		if err != nil {
			return nil, mapErr(fmt.Sprintf("list revisions of %q", ref.Name), err)
		}
		if resp == nil {
			return out, nil
		}
		for _, r := range resp.GetRevisions() {
			out = append(out, toRevision(r))
		}
		token = resp.GetNextPageToken()
		if token == "" {
			return out, nil
		}
	}
}

// update sends one UpdateService and waits for its operation. applied reports
// whether a service read after an ambiguous failure shows our change, so that a
// lost reply is never answered with a second write.
func (c *Client) update(ctx context.Context, op string, ref rollback.ServiceRef, req *runpb.UpdateServiceRequest, applied func(*runpb.Service) bool) (*rollback.Service, error) {
	etag := req.GetService().GetEtag()
	var lro *run.UpdateServiceOperation
	ambiguous := false // an attempt may have applied without our seeing the reply
	err := c.call(ctx, true, func(ctx context.Context) error {
		var err error
		lro, err = c.services.UpdateService(ctx, req)
		switch codeOf(err) {
		case codes.DeadlineExceeded, codes.Unavailable, codes.Unknown, codes.Canceled:
			ambiguous = true
		}
		return err
	})
	if err != nil {
		// After an ambiguous attempt, a stale etag on the retry may be our own
		// first write: re-read and look before calling it a conflict.
		if ambiguous {
			cur, rerr := c.getService(context.WithoutCancel(ctx), ref)
			switch {
			case rerr != nil:
				// Neither the reply nor a read says whether it applied.
				return nil, outcomeUnknown(op, "", mapErr(op, err))
			case cur.GetEtag() != etag && applied(cur):
				return c.settle(ctx, op, ref, cur)
			}
		}
		return nil, mapErr(op, err)
	}
	return c.waitUpdate(ctx, op, ref, lro)
}

// settle waits, by reading, until a service whose change was applied (but whose
// operation we lost) has reconciled.
func (c *Client) settle(ctx context.Context, op string, ref rollback.ServiceRef, cur *runpb.Service) (*rollback.Service, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	failed := func(s *runpb.Service) bool {
		return s.GetTerminalCondition().GetState() == runpb.Condition_CONDITION_FAILED
	}
	for attempt := 0; cur.GetReconciling() || (cur.GetObservedGeneration() < cur.GetGeneration() && !failed(cur)); attempt++ {
		if err := c.cfg.Sleep(ctx, c.pollDelay(attempt)); err != nil {
			return nil, outcomeUnknown(op, "", err)
		}
		var err error
		if cur, err = c.getService(ctx, ref); err != nil {
			return nil, outcomeUnknown(op, "", err) // applied, but not seen to roll out
		}
	}
	return toService(cur)
}

func (c *Client) pollDelay(attempt int) time.Duration {
	return min(c.cfg.PollInterval<<min(attempt, 10), 10*c.cfg.PollInterval, 5*time.Second)
}

// waitUpdate waits for an update operation to end and returns the service it
// left. The operation is reported pending (with its name) when time runs out.
//
// Waiting on an operation needs run.operations.get, which a role granted on the
// service alone does not give: when it is denied, the service itself is watched
// until it has rolled out its latest generation.
func (c *Client) waitUpdate(ctx context.Context, op string, ref rollback.ServiceRef, lro *run.UpdateServiceOperation) (*rollback.Service, error) {
	if lro.Done() {
		s, err := lro.Poll(ctx) // done: decodes the result, no call
		if err != nil {
			return nil, mapErr(op, err)
		}
		return toService(s)
	}
	o, err := c.await(ctx, op, lro.Name())
	var pf *pollFailure
	if errors.As(err, &pf) {
		if pf.code != codes.PermissionDenied {
			return nil, outcomeUnknown(op, lro.Name(), pf.err)
		}
		cur, gerr := c.getService(ctx, ref)
		if gerr != nil {
			return nil, outcomeUnknown(op, lro.Name(), gerr)
		}
		svc, serr := c.settle(ctx, op, ref, cur)
		if serr == nil && !svc.Ready && svc.Message != "" {
			return svc, &Error{Op: op, Kind: rollback.ErrNotReady, Code: codes.FailedPrecondition, Message: svc.Message}
		}
		return svc, serr
	}
	if err != nil {
		return nil, err
	}
	return decodeService(op, o)
}

// decodeService reads the Service a finished update operation returned.
func decodeService(op string, o *longrunningpb.Operation) (*rollback.Service, error) {
	if e := o.GetError(); e != nil {
		return nil, mapErr(op, status.ErrorProto(e))
	}
	var s runpb.Service
	if err := o.GetResponse().UnmarshalTo(&s); err != nil {
		return nil, fmt.Errorf("%s: decode the operation's result: %w", op, err)
	}
	return toService(&s)
}

// pollFailure is a poll of an operation that Cloud Run answered with an error
// that ends the wait: PERMISSION_DENIED (run.operations.get not granted),
// UNAUTHENTICATED (credentials expired during a long wait) or NOT_FOUND (the
// operation was forgotten). It says nothing about whether the write applied.
type pollFailure struct {
	code codes.Code
	err  error // mapped
}

func (e *pollFailure) Error() string { return e.err.Error() }
func (e *pollFailure) Unwrap() error { return e.err }

// ErrOutcomeUnknown is in the chain of a write's error when the write was
// accepted (or may have been) and the adapter could not learn how it ended:
// its operation's poll failed for good (NOT_FOUND, UNAUTHENTICATED,
// PERMISSION_DENIED with no service read to fall back on) or time ran out.
// Such an error also satisfies errors.Is(err, rollback.ErrPending), and never
// one of the kinds a refusal has (ErrNotFound, ErrUnauthenticated, ...): a
// failed poll is no proof that nothing changed. Read the service to decide.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// unknownOutcome hides the kind of the error that left a write's outcome
// unknown; its text still says what happened.
type unknownOutcome struct{ cause error }

func (e *unknownOutcome) Error() string {
	return "the write's outcome is unknown (read the service to see whether it applied): " + e.cause.Error()
}
func (e *unknownOutcome) Is(target error) bool { return target == ErrOutcomeUnknown }

// outcomeUnknown is the error of write op whose outcome could not be learned
// because of cause; operation is its operation's name, if known.
func outcomeUnknown(op, operation string, cause error) error {
	if cause == nil || errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		// Time ran out (or the caller gave up): keep the context's error
		// visible, as callers tell a deadline from a failure.
		return &rollback.PendingError{Op: op, Operation: operation, Err: &unknownContext{cause}}
	}
	return &rollback.PendingError{Op: op, Operation: operation, Err: &unknownOutcome{cause}}
}

// unknownContext is unknownOutcome for a context's error, which it unwraps to.
type unknownContext struct{ cause error }

func (e *unknownContext) Error() string {
	if e.cause == nil {
		return "the write's outcome is unknown"
	}
	return "the write's outcome is unknown: " + e.cause.Error()
}
func (e *unknownContext) Is(target error) bool { return target == ErrOutcomeUnknown }
func (e *unknownContext) Unwrap() error        { return e.cause }

// await waits until the named operation is done and returns it. It long-polls
// with WaitOperation, so a finished rollout is seen at once rather than at the
// next poll; where the server does not implement WaitOperation it polls
// GetOperation with a capped backoff. WaitOperation may answer before the
// timeout it is given, "including immediately" (google.longrunning): an early
// answer that is not done is followed by the same backoff, so the loop never
// spins. A failed call is retried. It returns a *pollFailure when a poll
// fails for good, and a *rollback.PendingError (with the last poll's error,
// its kind hidden) when time runs out; callers turn these into what they mean
// for their write.
func (c *Client) await(ctx context.Context, op, name string) (*longrunningpb.Operation, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	var lastErr error
	for attempt := 0; ; attempt++ {
		c.reads.Add(1)
		cctx, ccancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		var o *longrunningpb.Operation
		var err error
		long := !c.noWait.Load()
		early := true // the answer came before the wait we asked for
		if long {
			// Ask the server to answer a little before our own deadline.
			wait := c.cfg.CallTimeout * 3 / 4
			if dl, ok := ctx.Deadline(); ok {
				wait = min(wait, time.Until(dl))
			}
			wait = max(wait, 0)
			start := time.Now()
			o, err = c.services.WaitOperation(cctx, &longrunningpb.WaitOperationRequest{Name: name, Timeout: durationpb.New(wait)})
			if codeOf(err) == codes.Unimplemented {
				c.noWait.Store(true)
				ccancel()
				continue
			}
			early = time.Since(start) < wait*9/10
		} else {
			o, err = c.services.GetOperation(cctx, &longrunningpb.GetOperationRequest{Name: name})
		}
		ccancel()
		if err == nil && o.GetDone() {
			return o, nil
		}
		if err != nil {
			lastErr = mapErr("wait for operation "+name, err)
			switch code := codeOf(err); code {
			case codes.PermissionDenied, codes.Unauthenticated, codes.NotFound:
				return nil, &pollFailure{code: code, err: lastErr}
			}
		}
		if ctx.Err() != nil {
			return nil, outcomeUnknown(op, name, cmp.Or(lastErr, context.Cause(ctx)))
		}
		if err == nil && long && !early {
			continue // the server waited as long as asked: ask again at once
		}
		if serr := c.cfg.Sleep(ctx, c.pollDelay(attempt)); serr != nil {
			return nil, outcomeUnknown(op, name, cmp.Or(lastErr, serr))
		}
	}
}

// awaitWrite is await for the operation of a write of ours: a poll that fails
// for good leaves the write's outcome unknown, never "refused".
func (c *Client) awaitWrite(ctx context.Context, op, name string) (*longrunningpb.Operation, error) {
	o, err := c.await(ctx, op, name)
	var pf *pollFailure
	if errors.As(err, &pf) {
		return nil, outcomeUnknown(op, name, pf.err)
	}
	return o, err
}

// ResumeOperation waits for an update operation started earlier, by name. A
// forgotten operation is ErrNotFound (read the service instead), and a poll
// without run.operations.get is ErrPermission, as the callers that resume
// expect; either way the outcome is read from the service.
func (c *Client) ResumeOperation(ctx context.Context, name string) (*rollback.Service, error) {
	op := "resume operation " + name
	o, err := c.await(ctx, op, name)
	var pf *pollFailure
	if errors.As(err, &pf) {
		return nil, pf.err
	}
	if err != nil {
		return nil, err
	}
	return decodeService(op, o)
}

func sameTraffic(want []*runpb.TrafficTarget) func(*runpb.Service) bool {
	return func(s *runpb.Service) bool {
		got := s.GetTraffic()
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			a, b := got[i], want[i]
			if a.GetType() != b.GetType() || shortName(a.GetRevision()) != b.GetRevision() || a.GetPercent() != b.GetPercent() || a.GetTag() != b.GetTag() {
				return false
			}
		}
		return true
	}
}

// UpdateTraffic is a traffic-only write carrying etag.
func (c *Client) UpdateTraffic(ctx context.Context, ref rollback.ServiceRef, etag string, traffic rollback.Split) (*rollback.Service, error) {
	pt := toProtoTraffic(traffic)
	req := &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: ref.FullName(), Etag: etag, Traffic: pt},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic"}},
	}
	return c.update(ctx, fmt.Sprintf("update traffic of %q", ref.Name), ref, req, sameTraffic(pt))
}

// UpdateTrafficAnnotated writes traffic and replaces the annotations in one
// write carrying etag.
func (c *Client) UpdateTrafficAnnotated(ctx context.Context, ref rollback.ServiceRef, etag string, traffic rollback.Split, annotations map[string]string) (*rollback.Service, error) {
	pt := toProtoTraffic(traffic)
	req := &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: ref.FullName(), Etag: etag, Traffic: pt, Annotations: annotations},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"traffic", "annotations"}},
	}
	return c.update(ctx, fmt.Sprintf("update traffic of %q", ref.Name), ref, req, func(s *runpb.Service) bool {
		return sameTraffic(pt)(s) && sameAnnotations(annotations)(s)
	})
}

func sameAnnotations(want map[string]string) func(*runpb.Service) bool {
	return func(s *runpb.Service) bool {
		got := s.GetAnnotations()
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
}

// DeployRevision writes the current template, changed as d says, with d.Traffic.
func (c *Client) DeployRevision(ctx context.Context, ref rollback.ServiceRef, etag string, d rollback.Deploy) (*rollback.Service, error) {
	op := fmt.Sprintf("deploy revision %q of %q", d.Revision, ref.Name)
	cur, err := c.getService(ctx, ref)
	if err != nil {
		return nil, err
	}
	if cur.GetEtag() != etag {
		return nil, &Error{Op: op, Kind: rollback.ErrConflict, Code: codes.Aborted, Message: "the service changed since it was read"}
	}
	tmpl := cur.GetTemplate()
	if err := applyDeploy(tmpl, d); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pt := toProtoTraffic(d.Traffic)
	req := &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: ref.FullName(), Etag: etag, Template: tmpl, Traffic: pt},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"template", "traffic"}},
	}
	if d.Annotations != nil {
		req.Service.Annotations = d.Annotations
		req.UpdateMask.Paths = append(req.UpdateMask.Paths, "annotations")
	}
	return c.update(ctx, op, ref, req, func(s *runpb.Service) bool {
		if d.Annotations != nil && !sameAnnotations(d.Annotations)(s) {
			return false
		}
		if d.Revision == "" {
			return templateHash(s.GetTemplate()) == templateHash(tmpl) && sameTraffic(pt)(s)
		}
		return s.GetTemplate().GetRevision() == d.Revision && sameTraffic(pt)(s)
	})
}

// ReplaceTemplate writes a template saved from an earlier read back, with traffic.
// The saved revision name is cleared, so Cloud Run builds a fresh revision from
// the original configuration.
func (c *Client) ReplaceTemplate(ctx context.Context, ref rollback.ServiceRef, etag string, t rollback.Template, traffic rollback.Split) (*rollback.Service, error) {
	op := fmt.Sprintf("restore the template of %q", ref.Name)
	tmpl, err := decodeTemplate(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	tmpl.Revision = ""
	pt := toProtoTraffic(traffic)
	req := &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: ref.FullName(), Etag: etag, Template: tmpl, Traffic: pt},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"template", "traffic"}},
	}
	return c.update(ctx, op, ref, req, sameTraffic(pt))
}

// SetAnnotations replaces the service's annotations.
func (c *Client) SetAnnotations(ctx context.Context, ref rollback.ServiceRef, etag string, annotations map[string]string) (*rollback.Service, error) {
	req := &runpb.UpdateServiceRequest{
		Service:    &runpb.Service{Name: ref.FullName(), Etag: etag, Annotations: annotations},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"annotations"}},
	}
	return c.update(ctx, fmt.Sprintf("update annotations of %q", ref.Name), ref, req, sameAnnotations(annotations))
}

// DeleteRevision deletes a revision and waits for the operation.
func (c *Client) DeleteRevision(ctx context.Context, ref rollback.ServiceRef, revision string) error {
	op := fmt.Sprintf("delete revision %q", revision)
	name := ref.FullName() + "/revisions/" + revision
	var lro *run.DeleteRevisionOperation
	err := c.call(ctx, true, func(ctx context.Context) error {
		var err error
		lro, err = c.revisions.DeleteRevision(ctx, &runpb.DeleteRevisionRequest{Name: name})
		return err
	})
	if err != nil {
		if codeOf(err) == codes.NotFound {
			return nil // already gone: deleting is idempotent for us
		}
		return mapErr(op, err)
	}
	if lro.Done() {
		if _, err := lro.Poll(ctx); err != nil {
			return mapErr(op, err)
		}
		return nil
	}
	o, err := c.awaitWrite(ctx, op, lro.Name())
	if err != nil {
		return err
	}
	if e := o.GetError(); e != nil {
		return mapErr(op, status.ErrorProto(e))
	}
	return nil
}
