package activator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"
)

// A held HTTP/1 request without a body is parked: its connection is taken
// from net/http (hijacked), whose goroutine, buffers and response state are
// let go, or from the fast loop, which parks it without net/http
// (fasthold.go); nothing runs for it while it waits. Its app wakes it when
// a backend can be picked or the app goes, its timer at its queue timeout,
// the drain when it runs out, and the sweep (each second) when its client
// closed the connection. A woken request gets a goroutine of its own, which
// forwards it as any other and writes the answer on the connection with
// "Connection: close". What is left per parked request is its parsed
// request, its socket and its timers, a tenth of what net/http keeps for a
// request waiting in its handler (`go test -bench Held
// ./internal/activator`). Requests with a body, upgrades and HTTP/2 streams
// are held in their handler.

// parked is one parked request. Its fields after start are guarded by its
// app's mu.
type parked struct {
	x     *Activator
	a     *app
	m     *appMetrics
	r     *http.Request
	conn  net.Conn
	start time.Time

	expire  clock.Timer
	stopCut func() bool
	// woken is set when a goroutine was started to look at it; expired,
	// cut and gone say why, if not a backend.
	woken, expired, cut, gone bool
}

// wake starts the goroutine that looks for p's backend, unless one runs.
// a.mu is held.
func (p *parked) wake() {
	if !p.woken {
		p.woken = true
		go p.x.dispatch(p)
	}
}

// parkable reports whether a request can be parked: HTTP/1, no body, no
// upgrade.
func parkable(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) &&
		r.Header.Get("Upgrade") == ""
}

// park holds r, for app a which has no backend to pick, without its
// handler; where the connection cannot be taken it is held in the handler.
func (x *Activator) park(w http.ResponseWriter, r *http.Request, a *app, m *appMetrics, start time.Time) {
	ready, timeout, b, err := a.enter(x.holder)
	if b != nil || err != nil {
		x.forward(w, r, a, m, start, b, err)
		return
	}
	conn, brw, herr := http.NewResponseController(w).Hijack()
	if herr != nil {
		defer a.leave(x.holder)
		b, err = a.wait(r.Context(), x.holder, ready, timeout)
		x.forward(w, r, a, m, start, b, err)
		return
	}
	if brw.Reader.Buffered() > 0 {
		// The client already sent more (a pipelined request): it is not
		// read, as the connection closes after this answer.
		x.log.Debug("parked connection had more input", zap.Int("bytes", brw.Reader.Buffered()))
	}
	x.active.add(1)
	p := &parked{x: x, a: a, m: m, r: r, conn: conn, start: start}
	a.mu.Lock()
	// On their own goroutines: a fake clock runs a timer's function with
	// its lock held, which a.mu must not wait for.
	p.expire = x.holder.afterFunc(timeout, func() { go a.wakeOne(p, func() { p.expired = true }) })
	p.stopCut = context.AfterFunc(x.base(), func() { a.wakeOne(p, func() { p.cut = true }) })
	a.parked[p] = struct{}{}
	if a.readyClosed {
		p.wake() // a backend turned ready (or the app went) since enter
	}
	a.mu.Unlock()
	x.sweeps.Do(func() { go x.sweepParked() })
	if x.holder.onHold != nil {
		x.holder.onHold(a.key)
	}
}

// wakeOne wakes p, if still parked, after set records why.
func (a *app) wakeOne(p *parked, set func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.parked[p]; ok {
		set()
		p.wake()
	}
}

// dispatch forwards a woken parked request to a backend, or refuses it,
// or parks it again when the backend it was woken for went meanwhile.
func (x *Activator) dispatch(p *parked) {
	a := p.a
	a.mu.Lock()
	p.woken = false
	b := a.pick(nil)
	var reason error
	switch {
	case p.gone:
		reason = errClientGone
	case p.cut:
		reason = errCut
	case b != nil:
		b.inFlight.Add(1)
	case a.removed:
		reason = errRemoved
	case p.expired:
		reason = errTimeout
	default:
		a.mu.Unlock()
		return // still parked
	}
	delete(a.parked, p)
	a.mu.Unlock()
	defer x.active.add(-1)
	p.expire.Stop()
	p.stopCut()
	a.leave(x.holder)
	if reason == errClientGone {
		_ = p.conn.Close()
		x.counted(a, p.m, p.start, &recorder{code: statusClientClosed})
		return
	}
	// The request's context keeps the server's values (the proxy then
	// aborts an answer whose copy fails, as in a handler) and ends with
	// the drain, which also stops the writes to a client that no longer
	// reads.
	ctx, cancel := context.WithCancel(context.WithoutCancel(p.r.Context()))
	defer cancel()
	if reason == errCut {
		_ = p.conn.SetWriteDeadline(time.Now().Add(cutAnswerTimeout))
	} else {
		stop := context.AfterFunc(x.base(), func() {
			cancel()
			_ = p.conn.SetWriteDeadline(aLongTimeAgo)
		})
		defer stop()
	}
	rw := newConnResponse(p.conn, p.r)
	if x.forwardParked(rw, p.r.WithContext(ctx), a, p.m, p.start, b, reason) {
		rw.finish(x.log)
	}
}

// cutAnswerTimeout bounds the write of a 503 to a parked request cut at
// the end of the drain.
const cutAnswerTimeout = 5 * time.Second

// forwardParked is forward for a parked request. An answer the proxy
// aborts (its copy failed: the pod or the client went) closes the
// connection at once, so that the client cannot take a cut body for a
// whole one; it returns false then. Any other panic is logged, not
// crashing the activator, as net/http would for a handler.
func (x *Activator) forwardParked(rw *connResponse, r *http.Request, a *app, m *appMetrics, start time.Time, b *backend, reason error) (answered bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				x.log.Error("panic serving a parked request", zap.Any("panic", v), zap.Stack("stack"))
			}
			rw.abort()
			answered = false
		}
	}()
	x.forward(rw, r, a, m, start, b, reason)
	return true
}

// parkedSweepEvery is how often parked connections are looked at for
// clients that closed them.
const parkedSweepEvery = time.Second

// sweepParked wakes, each second, the parked requests whose client closed
// the connection. It runs from the first parked request on, until the
// drain ends.
func (x *Activator) sweepParked() {
	t := time.NewTicker(parkedSweepEvery)
	defer t.Stop()
	var conns []*parked
	for {
		select {
		case <-t.C:
		case <-x.streamsDone:
			return
		}
		for _, a := range x.table.appList() {
			a.mu.Lock()
			for p := range a.parked {
				conns = append(conns, p)
			}
			a.mu.Unlock()
		}
		for i, p := range conns {
			p.a.sweepOne(p)
			conns[i] = nil
		}
		conns = conns[:0]
	}
}

// aLongTimeAgo is a deadline that ends a read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// sweepOne wakes p when its client closed the connection. The look is
// made while p is parked, under a.mu, so that no dispatch reads the
// connection meanwhile.
func (a *app) sweepOne(p *parked) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.parked[p]; ok && !p.woken && closedByPeer(p.conn) {
		p.gone = true
		p.wake()
	}
}

// errClientGone is a parked request whose client closed its connection.
var errClientGone = errors.New("client closed the connection while held")

// errCut is a parked request cut at the end of the drain.
var errCut = errors.New("activator shutting down")

// base is the context of the server's requests: it ends when the drain
// runs out.
func (x *Activator) base() context.Context {
	if c := x.baseCtx.Load(); c != nil {
		return *c
	}
	return context.Background()
}

// connResponse is an http.ResponseWriter on a hijacked HTTP/1 connection:
// the answer is sent with "Connection: close", its body delimited by the
// close unless its Content-Length is set, and the connection closed after
// it. Trailers are not sent.
type connResponse struct {
	conn   net.Conn
	bw     *bufio.Writer
	req    *http.Request
	header http.Header
	code   int
	err    error
}

var connWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

func newConnResponse(conn net.Conn, r *http.Request) *connResponse {
	bw := connWriters.Get().(*bufio.Writer)
	bw.Reset(conn)
	return &connResponse{conn: conn, bw: bw, req: r, header: make(http.Header)}
}

func (c *connResponse) Header() http.Header { return c.header }

func (c *connResponse) WriteHeader(code int) {
	if c.code != 0 || c.err != nil {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	informational := code >= 100 && code < 200 && code != http.StatusSwitchingProtocols
	if !informational {
		c.code = code
		c.header.Del("Transfer-Encoding")
		c.header.Set("Connection", "close")
		if c.header.Get("Date") == "" {
			c.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		}
	}
	if _, err := fmt.Fprintf(c.bw, "HTTP/1.1 %03d %s\r\n", code, http.StatusText(code)); err != nil {
		c.err = err
		return
	}
	if err := c.header.WriteSubset(c.bw, trailerKeys(c.header)); err != nil {
		c.err = err
		return
	}
	if _, err := c.bw.WriteString("\r\n"); err != nil {
		c.err = err
		return
	}
	if informational {
		c.err = c.bw.Flush()
	}
}

// trailerKeys are the header's keys that announce or carry trailers, which
// a close-delimited body cannot send.
func trailerKeys(h http.Header) map[string]bool {
	var skip map[string]bool
	for k := range h {
		if k == "Trailer" || len(k) > len(http.TrailerPrefix) && k[:len(http.TrailerPrefix)] == http.TrailerPrefix {
			if skip == nil {
				skip = map[string]bool{}
			}
			skip[k] = true
		}
	}
	return skip
}

func (c *connResponse) bodyAllowed() bool {
	return c.req.Method != http.MethodHead && c.code != http.StatusNoContent && c.code != http.StatusNotModified
}

func (c *connResponse) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.err != nil {
		return 0, c.err
	}
	if !c.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	n, err := c.bw.Write(p)
	c.err = err
	return n, err
}

// FlushError sends what is buffered.
func (c *connResponse) FlushError() error {
	if c.code == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.err != nil {
		return c.err
	}
	c.err = c.bw.Flush()
	return c.err
}

// finish sends the rest of the answer and closes the connection: its
// write side first, then, after the client's close or a second, the rest,
// so that unread input does not reset the answer on its way.
func (c *connResponse) finish(log *zap.Logger) {
	if c.code == 0 {
		// Nothing was answered (the client went, or the drain cut the
		// request): the connection closes without an answer.
		c.abort()
		return
	}
	if c.err == nil {
		c.err = c.bw.Flush()
	}
	c.bw.Reset(nil)
	connWriters.Put(c.bw)
	if c.err != nil {
		log.Debug("answer to a parked request not sent", zap.Error(c.err))
		_ = c.conn.Close()
		return
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
		var scratch [512]byte
		for {
			if _, err := c.conn.Read(scratch[:]); err != nil {
				break
			}
		}
	}
	_ = c.conn.Close()
}

// abort closes the connection at once, what is buffered unsent, with a
// reset where the system allows it.
func (c *connResponse) abort() {
	resetOnClose(c.conn)
	_ = c.conn.Close()
	c.bw.Reset(nil)
	connWriters.Put(c.bw)
	c.err = net.ErrClosed
}

// counted counts the end of a request answered by none of forward's paths.
func (x *Activator) counted(a *app, m *appMetrics, start time.Time, rec *recorder) {
	end := x.clock.Now()
	a.end(end)
	m.inFlight.Dec()
	m.requests(rec.status()).Inc()
	m.duration.Observe(end.Sub(start).Seconds())
}
