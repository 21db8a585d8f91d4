package activator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A held HTTP/1 request without a body is parked: its connection is taken
// from net/http (hijacked), whose goroutine, buffers and response state are
// let go, and one small goroutine of the activator's own waits on a read of
// the connection. The read ends when the client goes (EOF), or when the
// app, the queue timeout or the drain wake it by setting a deadline in the
// past. What is left per request is its parsed request, its socket, a
// timer and that goroutine's stack, a third of what net/http keeps for a
// request waiting in its handler (`go test -bench Held ./internal/activator`).
//
// Once a backend is picked the request is forwarded as any other, and its
// response written on the connection with "Connection: close". Requests
// with a body, upgrades and HTTP/2 streams are held in their handler as
// before.

// parked is one parked request. Its fields after conn are guarded by its
// app's mu.
type parked struct {
	conn net.Conn
	// woken is set, with the read deadline in the past, when the waiting
	// read must look again; expired and cut say why, if not a backend.
	woken, expired, cut bool
}

// aLongTimeAgo is a read deadline that ends a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// wake ends p's read. a.mu is held.
func (p *parked) wake() {
	if !p.woken {
		p.woken = true
		_ = p.conn.SetReadDeadline(aLongTimeAgo)
	}
}

// parkable reports whether a request can be parked: HTTP/1, no body, no
// upgrade.
func parkable(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody) &&
		r.Header.Get("Upgrade") == ""
}

// park holds r, for app a which has no backend to pick, without its
// handler. It returns false, having done nothing, when the connection
// cannot be taken: the caller holds the request as before.
func (x *Activator) park(w http.ResponseWriter, r *http.Request, a *app, m *appMetrics, start time.Time) bool {
	ready, timeout, b, err := a.enter(x.holder)
	if b != nil || err != nil {
		x.forward(w, r, a, m, start, b, err)
		return true
	}
	conn, brw, herr := http.NewResponseController(w).Hijack()
	if herr != nil {
		defer a.leave(x.holder)
		b, err = a.wait(r.Context(), x.holder, ready, timeout)
		x.forward(w, r, a, m, start, b, err)
		return true
	}
	if brw.Reader.Buffered() > 0 {
		// The client already sent more (a pipelined request): it is not
		// read, as the connection closes after this answer.
		x.log.Debug("parked connection had more input", zap.Int("bytes", brw.Reader.Buffered()))
	}
	p := &parked{conn: conn}
	x.active.add(1)
	go x.waitParked(p, r, a, m, start, timeout)
	return true
}

// waitParked waits for a backend for the parked request p, then forwards
// it, and answers it on its connection.
func (x *Activator) waitParked(p *parked, r *http.Request, a *app, m *appMetrics, start time.Time, timeout time.Duration) {
	defer x.active.add(-1)
	base := x.base()
	a.addParked(p)
	// On its own goroutine, as quarantine's: a fake clock runs it with its
	// lock held.
	expire := x.holder.afterFunc(timeout, func() {
		go func() {
			a.mu.Lock()
			p.expired = true
			p.wake()
			a.mu.Unlock()
		}()
	})
	stopCut := context.AfterFunc(base, func() {
		a.mu.Lock()
		p.cut = true
		p.wake()
		a.mu.Unlock()
	})
	if x.holder.onHold != nil {
		x.holder.onHold(a.key)
	}
	b, err := x.parkedOutcome(p, a)
	expire.Stop()
	stopCut()
	a.mu.Lock()
	delete(a.parked, p)
	a.mu.Unlock()
	a.leave(x.holder)
	_ = p.conn.SetReadDeadline(time.Time{})

	if errors.Is(err, errClientGone) {
		_ = p.conn.Close()
		rec := recorder{code: statusClientClosed}
		x.counted(a, m, start, &rec)
		return
	}
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	rw := newConnResponse(p.conn, r)
	x.forward(rw, r.WithContext(ctx), a, m, start, b, err)
	rw.finish(x.log)
}

// addParked lists p among the requests to wake, waking it at once if a
// backend turned ready (or the app went) since it entered the queue.
func (a *app) addParked(p *parked) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parked[p] = struct{}{}
	if a.readyClosed {
		p.wake()
	}
}

// errClientGone is a parked request whose client closed its connection.
var errClientGone = errors.New("client closed the connection while held")

// errCut is a parked request cut at the end of the drain.
var errCut = errors.New("activator shutting down")

// parkedOutcome reads p's connection until a backend can be picked (it is
// returned with one more request in flight), or the request must be
// refused, or the client goes.
func (x *Activator) parkedOutcome(p *parked, a *app) (*backend, error) {
	var scratch [64]byte
	for {
		n, err := p.conn.Read(scratch[:])
		switch {
		case n > 0 && err == nil:
			continue // more input from the client, unread: the connection closes after the answer
		case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
			return nil, errClientGone
		}
		a.mu.Lock()
		p.woken = false
		if b := a.pick(nil); b != nil {
			b.inFlight.Add(1)
			a.mu.Unlock()
			return b, nil
		}
		var reason error
		switch {
		case a.removed:
			reason = errRemoved
		case p.cut:
			reason = errCut
		case p.expired:
			reason = errTimeout
		}
		if reason == nil {
			_ = p.conn.SetReadDeadline(time.Time{})
		}
		a.mu.Unlock()
		if reason != nil {
			return nil, reason
		}
	}
}

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
		c.WriteHeader(http.StatusOK)
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

// counted counts the end of a request answered by none of forward's paths.
func (x *Activator) counted(a *app, m *appMetrics, start time.Time, rec *recorder) {
	end := x.clock.Now()
	a.end(end)
	m.inFlight.Dec()
	m.requests(rec.status()).Inc()
	m.duration.Observe(end.Sub(start).Seconds())
}
