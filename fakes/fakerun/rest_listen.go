package fakerun

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// One address serves gRPC and HTTP/JSON: each connection is sniffed. A
// connection that opens with the HTTP/2 client preface (as every gRPC client
// does) goes to the grpc.Server, which keeps its own HTTP/2 transport; any
// other goes to a net/http server speaking HTTP/1.1, which is what REST
// clients send to an http:// URL. (A REST client that speaks cleartext
// HTTP/2 with prior knowledge would reach the gRPC side and be refused.)

// http2Preface opens every HTTP/2 connection (RFC 9113, section 3.4).
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// sniffTimeout bounds how long a new connection may stay silent before it is
// dropped: both protocols have the client speak first.
const sniffTimeout = 10 * time.Second

// splitListener accepts on one listener and hands each connection to one of
// two listeners, by protocol.
type splitListener struct {
	lis        net.Listener
	grpc, http *connQueue
}

func newSplitListener(lis net.Listener) *splitListener {
	return &splitListener{lis: lis, grpc: newConnQueue(lis.Addr()), http: newConnQueue(lis.Addr())}
}

// serve accepts until the listener is closed.
func (s *splitListener) serve() {
	defer s.close()
	for {
		c, err := s.lis.Accept()
		if err != nil {
			return
		}
		go s.route(c)
	}
}

func (s *splitListener) close() {
	_ = s.lis.Close()
	s.grpc.Close()
	s.http.Close()
}

// route reads as much of the connection's first bytes as it takes to tell an
// HTTP/2 preface from anything else, and queues the connection, those bytes
// replayed, on the listener for its protocol.
func (s *splitListener) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	buf := make([]byte, len(http2Preface))
	n := 0
	for n < len(buf) && bytes.Equal(buf[:n], http2Preface[:n]) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil && n < len(buf) && bytes.Equal(buf[:n], http2Preface[:n]) {
			_ = c.Close()
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: io.MultiReader(bytes.NewReader(buf[:n]), c)}
	if bytes.Equal(buf[:n], http2Preface) {
		s.grpc.push(pc)
	} else {
		s.http.push(pc)
	}
}

// peekedConn is a connection whose first bytes were read by the sniffer.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connQueue is a net.Listener fed by splitListener.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.done:
		_ = c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
