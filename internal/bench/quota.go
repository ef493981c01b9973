package bench

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Proxy stands in front of the fake, passing every call through byte for
// byte, and plays two things the fake does not:
//
//   - a write quota (limit > 0): a write that would make more than limit
//     writes within any window is refused with RESOURCE_EXHAUSTED before it
//     reaches the fake;
//   - operation time (deployOp, otherOp > 0): a write's operation, which the
//     fake completes at once, is answered as not done, and a GetOperation or
//     WaitOperation of it answers done only once the round trip and the
//     modelled duration have passed since the write arrived (a write whose
//     update mask names the template creates a revision: deployOp; any other
//     otherOp). The service itself has changed at once; only the operation's
//     completion, which the client waits for, is delayed.
type Proxy struct {
	Addr   string
	srv    *grpc.Server
	conn   *grpc.ClientConn
	limit  int
	window time.Duration

	rtt, deployOp, otherOp time.Duration

	mu       sync.Mutex
	recent   []time.Time
	rejected int
	ops      map[string]heldOp
	writes   []time.Time // when each write passed on to the fake arrived
}

type heldOp struct {
	done []byte // the fake's finished operation, as it sent it
	at   time.Time
}

type frame struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*frame).b, nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*frame).b = slices.Clone(data)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// ProxyConfig says what a Proxy plays.
type ProxyConfig struct {
	Limit                  int           // writes in any Window; 0 means no quota
	Window                 time.Duration // one scaled minute
	RTT, DeployOp, OtherOp time.Duration // operation time; zero DeployOp and OtherOp mean none
}

// StartProxy proxies to target.
func StartProxy(target string, cfg ProxyConfig) (*Proxy, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := &Proxy{Addr: lis.Addr().String(), conn: conn, limit: cfg.Limit, window: cfg.Window,
		rtt: cfg.RTT, deployOp: cfg.DeployOp, otherOp: cfg.OtherOp, ops: map[string]heldOp{}}
	p.srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(p.handle))
	go func() { _ = p.srv.Serve(lis) }()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.srv.Stop()
	p.conn.Close()
}

// Writes returns when each write the proxy passed on arrived.
func (p *Proxy) Writes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.writes)
}

// Rejected is how many writes the proxy refused.
func (p *Proxy) Rejected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rejected
}

func (p *Proxy) admit(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit <= 0 {
		p.writes = append(p.writes, now)
		return true
	}
	i := 0
	for i < len(p.recent) && now.Sub(p.recent[i]) >= p.window {
		i++
	}
	p.recent = p.recent[i:]
	if len(p.recent) >= p.limit {
		p.rejected++
		return false
	}
	p.recent = append(p.recent, now)
	p.writes = append(p.writes, now)
	return true
}

func (p *Proxy) timed() bool { return p.deployOp > 0 || p.otherOp > 0 }

func (p *Proxy) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	name := method[strings.LastIndexByte(method, '/')+1:]
	var req, resp frame
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	arrived := time.Now()
	if writeMethods[name] && !p.admit(arrived) {
		return status.Errorf(codes.ResourceExhausted,
			"Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per region' of service 'run.googleapis.com' (benchmark proxy: %d writes per %v)", p.limit, p.window)
	}
	if p.timed() && (name == "WaitOperation" || name == "GetOperation") {
		if b, ok, err := p.awaitHeld(stream.Context(), name, req.b); ok {
			if err != nil {
				return err
			}
			return stream.SendMsg(&frame{b: b})
		}
	}
	if err := p.conn.Invoke(stream.Context(), method, &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		return err
	}
	if p.timed() && writeMethods[name] {
		if b, ok := p.hold(name, req.b, resp.b, arrived); ok {
			resp.b = b
		}
	}
	return stream.SendMsg(&resp)
}

// hold records a write's finished operation and returns it as not done.
func (p *Proxy) hold(method string, reqb, respb []byte, arrived time.Time) ([]byte, bool) {
	var op longrunningpb.Operation
	if proto.Unmarshal(respb, &op) != nil || !op.GetDone() || op.GetName() == "" {
		return nil, false
	}
	d := p.otherOp
	switch method {
	case "CreateService":
		d = p.deployOp
	case "UpdateService":
		var r runpb.UpdateServiceRequest
		if proto.Unmarshal(reqb, &r) == nil && (r.GetUpdateMask() == nil || slices.Contains(r.GetUpdateMask().GetPaths(), "template")) {
			d = p.deployOp
		}
	}
	p.mu.Lock()
	p.ops[op.GetName()] = heldOp{done: respb, at: arrived.Add(p.rtt + d)}
	p.mu.Unlock()
	pending, err := proto.Marshal(&longrunningpb.Operation{Name: op.GetName(), Metadata: op.GetMetadata()})
	if err != nil {
		return nil, false
	}
	return pending, true
}

// awaitHeld answers a poll of a held operation: done once its time has
// come; WaitOperation waits for that (up to its timeout), after a round trip.
func (p *Proxy) awaitHeld(ctx context.Context, method string, reqb []byte) ([]byte, bool, error) {
	var opName string
	var timeout time.Duration = -1
	if method == "WaitOperation" {
		var r longrunningpb.WaitOperationRequest
		if proto.Unmarshal(reqb, &r) != nil {
			return nil, false, nil
		}
		opName = r.GetName()
		if r.GetTimeout() != nil {
			timeout = r.GetTimeout().AsDuration()
		}
	} else {
		var r longrunningpb.GetOperationRequest
		if proto.Unmarshal(reqb, &r) != nil {
			return nil, false, nil
		}
		opName = r.GetName()
	}
	p.mu.Lock()
	h, ok := p.ops[opName]
	p.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	wait := p.rtt
	if method == "WaitOperation" {
		wait = max(wait, time.Until(h.at))
		if timeout >= 0 {
			wait = min(wait, max(timeout, p.rtt))
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, true, status.FromContextError(ctx.Err()).Err()
	case <-t.C:
	}
	if !time.Now().Before(h.at) {
		return h.done, true, nil
	}
	var done longrunningpb.Operation
	if err := proto.Unmarshal(h.done, &done); err != nil {
		return nil, true, err
	}
	b, err := proto.Marshal(&longrunningpb.Operation{Name: opName, Metadata: done.GetMetadata()})
	return b, true, err
}

// MaxInWindow is the most times in any window of length d (times sorted).
func MaxInWindow(times []time.Time, d time.Duration) int {
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= d {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}
