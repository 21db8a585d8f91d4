package activator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// podTransport forwards requests without a body to the pods over HTTP/1.1
// on the caller's goroutine: it writes the request on a pooled connection
// and reads the answer there, where http.Transport hands each request to a
// writing and a reading goroutine of the connection's and keeps a read
// pending on every idle one. It is a quarter of the activator's CPU per
// request (`go test -bench Proxy ./internal/activator`). Requests with a
// body, and upgrades, go to the fallback (an http.Transport), which can
// read an early answer while it still sends.
//
// An idle connection the pod has closed is found when it is next used: a
// request sent on it that gets no byte of answer is sent once more on a new
// connection, as http.Transport does.
type podTransport struct {
	dialer   net.Dialer
	fallback http.RoundTripper
	// maxIdle bounds the idle connections kept per pod; idleTimeout is how
	// long one is kept.
	maxIdle     int
	idleTimeout time.Duration

	mu    sync.Mutex
	idle  map[string][]*podConn
	swept time.Time
}

// aLongTimeAgo is a deadline that ends a read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// podConn is one connection to a pod.
type podConn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	idleFrom time.Time
}

func newPodTransport(fallback http.RoundTripper) *podTransport {
	return &podTransport{
		dialer:   net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		fallback: fallback, maxIdle: 1000, idleTimeout: 90 * time.Second,
		idle: map[string][]*podConn{},
	}
}

// direct reports whether r goes on the caller's goroutine.
func direct(r *http.Request) bool {
	return (r.Body == nil || r.Body == http.NoBody) && r.Header.Get("Upgrade") == "" && r.URL.Scheme == "http"
}

// RoundTrip sends r to r.URL.Host and returns its answer.
func (t *podTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !direct(r) {
		return t.fallback.RoundTrip(r)
	}
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(ctx, r.URL.Host)
		if err != nil {
			return nil, err
		}
		res, answered, err := t.exchange(ctx, c, r)
		if err == nil {
			return res, nil
		}
		_ = c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if reused && !answered && attempt == 0 {
			continue // the pod closed the idle connection: once more, on a new one
		}
		return nil, err
	}
}

// get returns an idle connection to addr, or dials one.
func (t *podTransport) get(ctx context.Context, addr string) (c *podConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for conns := t.idle[addr]; len(conns) > 0; conns = t.idle[addr] {
		c = conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[addr] = conns[:len(conns)-1]
		if now.Sub(c.idleFrom) < t.idleTimeout {
			t.mu.Unlock()
			return c, true, nil
		}
		_ = c.Close()
	}
	t.mu.Unlock()
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &podConn{Conn: conn, br: bufio.NewReaderSize(conn, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10), addr: addr}, false, nil
}

// put keeps c for the next request to its pod.
func (t *podTransport) put(c *podConn) {
	c.idleFrom = time.Now()
	t.mu.Lock()
	if conns := t.idle[c.addr]; len(conns) < t.maxIdle {
		t.idle[c.addr] = append(conns, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.Close()
}

// CloseIdleConnections closes the idle connections.
func (t *podTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*podConn{}
	t.mu.Unlock()
	for _, conns := range idle {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// exchange writes r on c and reads its answer's head; answered says
// whether any byte of an answer came. The body, when there is one, is read
// by the caller, and c goes back to the pool once it is read to its end.
func (t *podTransport) exchange(ctx context.Context, c *podConn, r *http.Request) (res *http.Response, answered bool, err error) {
	// The request's end aborts the exchange and the body's reads.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	if err := r.Write(c.bw); err != nil {
		stop()
		return nil, false, fmt.Errorf("write the request to %s: %w", c.addr, err)
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, false, fmt.Errorf("write the request to %s: %w", c.addr, err)
	}
	trace := httptrace.ContextClientTrace(ctx)
	for {
		if _, err := c.br.Peek(1); err != nil {
			stop()
			return nil, false, fmt.Errorf("read the answer from %s: %w", c.addr, err)
		}
		res, err = http.ReadResponse(c.br, r)
		if err != nil {
			stop()
			return nil, true, fmt.Errorf("read the answer from %s: %w", c.addr, err)
		}
		if res.StatusCode < 100 || res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// An informational answer: passed on, and the final one read next.
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				stop()
				return nil, true, err
			}
		}
	}
	reusable := !res.Close && !r.Close
	if res.Body == http.NoBody {
		t.release(c, stop, reusable)
		return res, true, nil
	}
	res.Body = &podBody{ReadCloser: res.Body, t: t, c: c, stop: stop, reusable: reusable}
	return res, true, nil
}

// release ends an exchange: c goes back to the pool when reusable and the
// request did not end meanwhile.
func (t *podTransport) release(c *podConn, stop func() bool, reusable bool) {
	if stop() && reusable {
		t.put(c)
		return
	}
	_ = c.Close()
}

// podBody is an answer's body read from its connection.
type podBody struct {
	io.ReadCloser
	t        *podTransport
	c        *podConn
	stop     func() bool
	reusable bool
	eof      bool
	done     bool
	mu       sync.Mutex
}

func (b *podBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.eof = true
		b.mu.Unlock()
	}
	return n, err
}

// Close returns the connection to the pool when the body was read to its
// end, and closes it otherwise.
func (b *podBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// Closed before its end: the rest is not read (the body's Close
		// would read it all), and the connection is not kept.
		_ = b.c.SetDeadline(aLongTimeAgo)
	}
	_ = b.ReadCloser.Close()
	b.t.release(b.c, b.stop, b.reusable && b.eof)
	return nil
}

// idleSweepEvery is how often idle connections are looked over.
const idleSweepEvery = 10 * time.Second

// sweep closes the connections idle longer than idleTimeout, at most once
// per idleSweepEvery: those of pods gone are never asked for again.
func (t *podTransport) sweep() {
	now := time.Now()
	t.mu.Lock()
	if now.Sub(t.swept) < idleSweepEvery {
		t.mu.Unlock()
		return
	}
	t.swept = now
	var old []*podConn
	for addr, conns := range t.idle {
		keep := conns[:0]
		for _, c := range conns {
			if now.Sub(c.idleFrom) < t.idleTimeout {
				keep = append(keep, c)
			} else {
				old = append(old, c)
			}
		}
		clear(conns[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = keep
		}
	}
	t.mu.Unlock()
	for _, c := range old {
		_ = c.Close()
	}
}
