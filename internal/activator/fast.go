package activator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The fast loop. Most of the activator's traffic is keep-alive HTTP/1.1
// GETs to an app with a ready pod. Each of them costs Go's HTTP server a
// background read and http.Transport two goroutine hand-offs, which on a
// small machine are most of the proxy's CPU (docs/http.md). The frontend
// accepts the proxy's connections itself and serves such requests on the
// connection's own goroutine: it reads the head, forwards it to a pooled
// connection to the pod, and passes the response back as it is framed.
//
// Anything else is handed over, with the connection, to Go's HTTP server
// and the rest of the activator (ServeHTTP): a head the fast loop does not
// take (h2c, a body, an upgrade, HTTP/1.0, a form it does not parse), a
// host no app serves, and a pod that failed before its answer began (the
// request, a GET or HEAD, is sent again there, with the quarantine and
// re-send rules of that path). The
// request is not consumed before the hand-over, so the server reads it as
// if it were the first; the connection stays with the server afterwards.
// A request for an app with no pod to pick is parked from the loop
// itself, without the server (fasthold.go).

// Timeouts of the fast loop's client connections, as Serve's server has
// them: a new connection has fastHeaderTimeout to send its first head;
// between requests it may be idle for fastIdleTimeout, and a head begun
// has fastHeaderTimeout to end. The read deadline they set stays during an
// exchange, when nothing reads the client's connection; watch's look at it
// heeds no deadline.
const (
	fastIdleTimeout   = 2 * time.Minute
	fastHeaderTimeout = 30 * time.Second
	// cancelCheckAfter: a request forwarded for longer is looked at each
	// second by watch, which cuts its pod connection if its client closed
	// (what Go's HTTP server learns with a background read per request).
	cancelCheckAfter = time.Second
	// fastReadBuffer bounds the request heads the fast loop takes.
	fastReadBuffer  = 4 << 10
	fastWriteBuffer = 4 << 10
)

var (
	fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastReadBuffer) }}
	fastWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, fastWriteBuffer) }}
)

// frontend accepts the proxy's connections and runs the fast loop on them.
type frontend struct {
	x       *Activator
	ln      net.Listener
	handoff *handoffListener
	dialer  net.Dialer
	// srv is Go's HTTP server that takes the handed-over connections; a
	// request held from the loop carries it in its context, as the
	// server's own requests do.
	srv *http.Server

	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	draining atomic.Bool
	wg       sync.WaitGroup
}

func newFrontend(x *Activator, ln net.Listener) *frontend {
	return &frontend{
		x: x, ln: ln,
		handoff: &handoffListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})},
		dialer:  net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		conns:   map[*fastConn]struct{}{},
	}
}

// fastConn is a client connection in the fast loop. An idle one keeps
// only this and its read buffer; a request's state is lent by fastStates.
type fastConn struct {
	c  net.Conn
	br *bufio.Reader
	ip string // the client's address, for X-Forwarded-For ("" unknown)
	// deadline is the read deadline set last.
	deadline time.Time
	st       *fastState

	idle      atomic.Bool  // waiting for a request
	busySince atomic.Int64 // when the request being forwarded began (Unix ns), 0 none
	up        atomic.Pointer[upConn]
	cancelled atomic.Bool // its client went while a request was forwarded
}

// fastState is what one request in the fast loop needs.
type fastState struct {
	req  reqHead
	resp respHead
	out  []byte // the request head sent to the pod
}

var fastStates = sync.Pool{New: func() any { return new(fastState) }}

// serve accepts connections until the listener closes.
func (f *frontend) serve() error {
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.draining.Load() {
				return nil
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				// Out of file descriptors and the like: wait, as Go's
				// HTTP server does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				f.x.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("in", backoff))
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", f.ln.Addr(), err)
		}
		backoff = 0
		fc := &fastConn{c: c}
		if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			fc.ip = host
		}
		f.mu.Lock()
		if f.draining.Load() {
			f.mu.Unlock()
			_ = c.Close()
			continue
		}
		f.conns[fc] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go f.serveConn(fc)
	}
}

// verdict is what becomes of a connection after an exchange.
type verdict int

const (
	keepConn verdict = iota
	closeConn
	handOff
	holdConn // its app has no pod to pick: held (fasthold.go)
)

// serveConn runs the fast loop on one connection until it closes or is
// handed over.
func (f *frontend) serveConn(fc *fastConn) {
	defer f.wg.Done()
	handed := false
	defer func() {
		f.mu.Lock()
		delete(f.conns, fc)
		f.mu.Unlock()
		if fc.br != nil {
			fc.br.Reset(nil)
			fastReaders.Put(fc.br)
			fc.br = nil
		}
		if !handed {
			_ = fc.c.Close()
		}
	}()
	// The read buffer is taken once the client has sent something: many
	// connections opened at once (a burst at zero, all held) do not each
	// keep one while they wait.
	if err := f.awaitFirst(fc); err != nil {
		return
	}
	fc.br = fastReaders.Get().(*bufio.Reader)
	fc.br.Reset(fc.c)
	for {
		head, err := f.readHead(fc)
		if errors.Is(err, errNotFast) {
			handed = f.handOver(fc, handedHead)
			return
		}
		if err != nil {
			return // closed, idle too long, or draining
		}
		fc.st = fastStates.Get().(*fastState)
		v, why := handOff, handedHead
		if fc.st.req.parse(head) {
			v, why = f.exchange(fc)
		}
		fc.st.req, fc.st.resp = reqHead{}, respHead{} // no references into the buffers
		fastStates.Put(fc.st)
		fc.st = nil
		switch v {
		case handOff:
			handed = f.handOver(fc, why)
			return
		case holdConn:
			handed = f.hold(fc)
			return
		case closeConn:
			return
		}
		_, _ = fc.br.Discard(len(head))
	}
}

// awaitFirst waits until the client sends its first bytes, or the header
// timeout, or the drain.
func (f *frontend) awaitFirst(fc *fastConn) error {
	fc.deadline = time.Now().Add(f.x.clientHeader)
	_ = fc.c.SetReadDeadline(fc.deadline)
	fc.idle.Store(true)
	defer fc.idle.Store(false)
	if f.draining.Load() {
		return errDraining
	}
	return awaitReadable(fc.c)
}

var errDraining = errors.New("draining")

// readHead waits for the next request's head and returns it, unconsumed.
func (f *frontend) readHead(fc *fastConn) ([]byte, error) {
	// The idle deadline is set again only once a twelfth of it has gone
	// (10 s of 2 min), or when another is in place (a header deadline, or
	// one that passed during an exchange): setting it costs.
	now, idle := time.Now(), f.x.clientIdle
	if left := fc.deadline.Sub(now); left < idle-idle/12 || left > idle {
		fc.deadline = now.Add(idle)
		_ = fc.c.SetReadDeadline(fc.deadline)
	}
	fc.idle.Store(true)
	defer fc.idle.Store(false)
	if f.draining.Load() {
		return nil, errDraining
	}
	partial := false
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		end, bad := headEnd(buf)
		switch {
		case bad:
			return nil, errNotFast
		case end > 0:
			return buf[:end], nil
		case len(buf) == fc.br.Size():
			return nil, errNotFast // too large: Go's server takes larger heads
		case len(buf) > 0 && !partial:
			partial = true
			fc.idle.Store(false) // a request is arriving: the drain lets it finish
			fc.deadline = time.Now().Add(f.x.clientHeader)
			_ = fc.c.SetReadDeadline(fc.deadline)
		}
		if _, err := fc.br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// Why a connection was handed over (the reason label of
// spinscale_activator_handed_over_total).
const (
	handedHead  = "head"  // a request the fast loop does not take
	handedRoute = "route" // no app serves its host and path: a 404
	handedPod   = "pod"   // its pod failed before answering, or answered in a form the fast loop does not pass on
)

// exchange forwards the request in fc.st.req to a pod and passes its answer
// back, or says to hand the connection over, and why.
func (f *frontend) exchange(fc *fastConn) (verdict, string) {
	x := f.x
	a, _ := x.table.lookup(canonicalHost(string(fc.st.req.host)), fc.st.req.path)
	if a == nil {
		return handOff, handedRoute
	}
	b := a.pickNow()
	if b == nil {
		return holdConn, ""
	}
	defer b.inFlight.Add(-1)
	x.active.add(1)
	defer x.active.add(-1)
	start := x.clock.Now()
	a.begin(start)
	m := x.metrics.of(a)
	m.inFlight.Inc()
	fc.cancelled.Store(false)
	fc.busySince.Store(time.Now().UnixNano())
	defer fc.busySince.Store(0)

	fc.st.writeRequest(fc.ip)
	uc, head, err := f.send(fc, b)
	if err != nil {
		if fc.cancelled.Load() {
			x.counted(a, m, start, &recorder{code: statusClientClosed})
			return closeConn, ""
		}
		// A refused dial too: ServeHTTP dials again, and quarantines the
		// pod and holds the request as it does for any refusal.
		if !errors.Is(err, errNotFast) {
			x.log.Debug("pod failed before answering; the request goes to the standard path", zap.String("namespace", a.key.Namespace),
				zap.String("deployment", a.key.Name), zap.String("backend", b.addr), zap.Error(err))
		}
		a.unbegin(x.clock.Now())
		m.inFlight.Dec()
		return handOff, handedPod
	}
	rec := recorder{code: fc.st.resp.status}
	defer x.counted(a, m, start, &rec)

	closing := fc.st.req.close || f.draining.Load()
	bw := fastWriters.Get().(*bufio.Writer)
	bw.Reset(fc.c)
	defer func() {
		bw.Reset(nil)
		fastWriters.Put(bw)
	}()
	for _, s := range fc.st.resp.kept[:fc.st.resp.nkept] {
		_, _ = bw.Write(head[s.from:s.to])
		_, _ = bw.Write(crlf)
	}
	if !fc.st.resp.hasDate {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(httpDate(time.Now()))
		_, _ = bw.Write(crlf)
	}
	if closing {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.Write(crlf)
	_, _ = uc.br.Discard(len(head))

	switch {
	case fc.st.resp.bodyless(fc.st.req.method):
	case fc.st.resp.length >= 0:
		err = copyBody(bw, uc.br, fc.st.resp.length)
	default:
		err = copyChunked(bw, uc.br)
	}
	if err == nil {
		if ferr := bw.Flush(); ferr != nil {
			err = errClientWrite{ferr}
		}
	}
	fc.up.Store(nil)
	var cw errClientWrite
	switch {
	case fc.cancelled.Load():
		_ = uc.c.Close()
		rec.code = statusClientClosed
		return closeConn, ""
	case errors.As(err, &cw):
		if fc.st.resp.length == 0 || fc.st.resp.bodyless(fc.st.req.method) {
			b.pool.put(uc, time.Now()) // the pod's answer was read whole
		} else {
			_ = uc.c.Close()
		}
		x.log.Debug("client went during the answer", zap.String("namespace", a.key.Namespace), zap.String("deployment", a.key.Name), zap.Error(err))
		return closeConn, ""
	case err != nil:
		_ = uc.c.Close()
		resetOnClose(fc.c)
		x.log.Warn("backend failed during its answer; the client's connection is closed", zap.String("namespace", a.key.Namespace),
			zap.String("deployment", a.key.Name), zap.String("backend", b.addr), zap.Error(err))
		return closeConn, ""
	}
	if fc.st.resp.close {
		_ = uc.c.Close()
	} else {
		b.pool.put(uc, time.Now())
	}
	if closing {
		return closeConn, ""
	}
	return keepConn, ""
}

// writeRequest builds the head sent to the pod: the client's, its
// X-Forwarded headers set as ServeHTTP's rewrite sets them, without
// hop-by-hop headers.
func (st *fastState) writeRequest(ip string) {
	h := &st.req
	o := st.out[:0]
	o = append(o, h.method...)
	o = append(o, ' ')
	o = append(o, h.target...)
	o = append(o, " HTTP/1.1\r\nHost: "...)
	o = append(o, h.host...)
	o = append(o, crlf...)
	for _, s := range h.kept[:h.nkept] {
		o = append(o, h.head[s.from:s.to]...)
		o = append(o, crlf...)
	}
	if ip != "" {
		o = append(o, "X-Forwarded-For: "...)
		for _, v := range h.xff[:h.nxff] {
			o = append(o, v...)
			o = append(o, ", "...)
		}
		o = append(o, ip...)
		o = append(o, crlf...)
	}
	o = append(o, "X-Forwarded-Host: "...)
	if len(h.xfh) > 0 {
		o = append(o, h.xfh...)
	} else {
		o = append(o, h.host...)
	}
	o = append(o, "\r\nX-Forwarded-Proto: "...)
	if len(h.xfp) > 0 {
		o = append(o, h.xfp...)
	} else {
		o = append(o, "http"...)
	}
	o = append(o, "\r\n\r\n"...)
	st.out = o
}

// errDial is a pod that could not be dialed.
type errDial struct{ err error }

func (e errDial) Error() string { return "dial: " + e.err.Error() }
func (e errDial) Unwrap() error { return e.err }

// errUpClosed is a pod connection that ended before any answer.
var errUpClosed = errors.New("the pod closed the connection before answering")

// send sends fc.st.out to b on a pooled connection, or a new one, and
// reads the answer's head into fc.st.resp. A pooled connection the pod had closed
// (nothing came back, or a 408 it sent while the connection was idle) is
// replaced by a new one once.
func (f *frontend) send(fc *fastConn, b *backend) (*upConn, []byte, error) {
	uc := b.pool.get(time.Now())
	for {
		reused := uc != nil
		if uc == nil {
			c, err := f.dialer.Dial("tcp", b.addr)
			if err != nil {
				return nil, nil, errDial{err}
			}
			uc = &upConn{c: c, br: bufio.NewReaderSize(c, upReadBuffer)}
		}
		fc.up.Store(uc)
		head, err := f.roundTrip(fc, uc, reused)
		if err == nil {
			return uc, head, nil
		}
		fc.up.Store(nil)
		_ = uc.c.Close()
		if !reused || !errors.Is(err, errUpClosed) || fc.cancelled.Load() {
			return nil, nil, err
		}
		uc = nil
	}
}

// roundTrip writes the request on uc and reads the answer's head.
func (f *frontend) roundTrip(fc *fastConn, uc *upConn, reused bool) ([]byte, error) {
	if _, err := uc.c.Write(fc.st.out); err != nil {
		return nil, fmt.Errorf("%w: write: %w", errUpClosed, err)
	}
	for {
		buf, _ := uc.br.Peek(uc.br.Buffered())
		end, bad := headEnd(buf)
		switch {
		case bad:
			return nil, errNotFast
		case end > 0:
			head := buf[:end]
			if err := fc.st.resp.parse(head, fc.st.req.method); err != nil {
				return nil, err
			}
			if reused && fc.st.resp.status == http.StatusRequestTimeout {
				return nil, fmt.Errorf("%w: a 408 on an idle connection", errUpClosed)
			}
			return head, nil
		case len(buf) == uc.br.Size():
			return nil, errNotFast // a head larger than the buffer
		}
		if _, err := uc.br.Peek(len(buf) + 1); err != nil {
			if len(buf) == 0 {
				return nil, fmt.Errorf("%w: %w", errUpClosed, err)
			}
			return nil, fmt.Errorf("read the answer's head: %w", err)
		}
	}
}

// handOver gives the connection, with what was read of it and not
// consumed, to Go's HTTP server; false when the server no longer takes
// connections (the drain), and the connection is to be closed.
func (f *frontend) handOver(fc *fastConn, why string) bool {
	f.x.metrics.handedOver.WithLabelValues(why).Inc()
	buf, _ := fc.br.Peek(fc.br.Buffered())
	rc := &replayConn{Conn: fc.c, pending: bytes.Clone(buf)}
	select {
	case f.handoff.conns <- rc:
		return true
	case <-f.handoff.done:
		return false
	}
}

// watch looks, each second, at the clients of requests forwarded for
// longer than cancelCheckAfter, and cuts the pod connection of those that
// went; every ten seconds it closes pod connections idle too long. It
// returns when stop closes.
func (f *frontend) watch(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var busy []*fastConn
	for i := 1; ; i++ {
		var now time.Time
		select {
		case <-stop:
			return
		case now = <-t.C:
		}
		busy = busy[:0]
		f.mu.Lock()
		for fc := range f.conns {
			if s := fc.busySince.Load(); s != 0 && now.UnixNano()-s > int64(cancelCheckAfter) {
				busy = append(busy, fc)
			}
		}
		f.mu.Unlock()
		for _, fc := range busy {
			if peek(fc.c) == peerClosed {
				fc.cancelled.Store(true)
				if uc := fc.up.Load(); uc != nil {
					_ = uc.c.Close()
				}
			}
		}
		clear(busy)
		if i%10 == 0 {
			for _, a := range f.x.table.appList() {
				for _, b := range a.backendList() {
					b.pool.sweep(now)
				}
			}
		}
	}
}

// shutdown stops accepting, closes the idle connections, lets the others
// finish their request and close, and waits for them until ctx ends.
func (f *frontend) shutdown(ctx interface{ Done() <-chan struct{} }) bool {
	f.mu.Lock()
	f.draining.Store(true)
	for fc := range f.conns {
		if fc.idle.Load() {
			_ = fc.c.SetReadDeadline(aLongTimeAgo)
		}
	}
	f.mu.Unlock()
	_ = f.ln.Close()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// cut closes every connection of the fast loop and its pod connection.
func (f *frontend) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		_ = fc.c.Close()
		if uc := fc.up.Load(); uc != nil {
			_ = uc.c.Close()
		}
	}
}

// handoffListener is how connections reach Go's HTTP server: Accept
// returns those the fast loop hands over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// replayConn is a handed-over connection: its reads return what the fast
// loop had read and not consumed, then the connection's.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets the server close its side gracefully.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// SyscallConn lets a parked request's connection be looked at (peer_unix.go).
func (c *replayConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a system connection")
	}
	return sc.SyscallConn()
}

// SetLinger lets a connection be reset (resetOnClose).
func (c *replayConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

// resetOnClose makes c's close a reset, where the system allows it: the
// client sees an answer broken off as an error, not as its end.
func resetOnClose(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
}

// dateCache is the Date header of the current second.
var dateCache atomic.Pointer[cachedDate]

type cachedDate struct {
	sec int64
	v   []byte
}

// httpDate is now as a Date header's value, made once a second.
func httpDate(now time.Time) []byte {
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.v
	}
	d := &cachedDate{sec: now.Unix(), v: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.v
}
