package activator

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// The fast loop's connections to the pods (fast.go): kept alive per
// backend, used by one request at a time on the goroutine of the client's
// connection, without the reading and writing goroutines of
// http.Transport.

// upConn is a keep-alive connection to a pod.
type upConn struct {
	c  net.Conn
	br *bufio.Reader
	// idleSince is when it was put back; zero for a new one.
	idleSince time.Time
}

// upReadBuffer is the size of an upConn's read buffer: a response head
// larger than this goes to http.Transport.
const upReadBuffer = 8 << 10

// Bounds of the idle connections kept for a pod.
const (
	// maxIdlePerBackend is at most as many as http.Transport keeps.
	maxIdlePerBackend = 1000
	// upIdleTimeout closes connections idle longer (http.Transport's).
	upIdleTimeout = 90 * time.Second
	// upCheckAfter: a connection idle longer is looked at before it is
	// used, in case the pod closed it meanwhile (or said 408 and closed
	// it). One idle less long is used as is: if the pod closed it, the
	// request, a GET or HEAD, is sent once more on a new connection.
	upCheckAfter = time.Second
)

// upPool is a pod's idle connections, the last put back used first.
type upPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

// get returns an idle connection that looks usable, or nil.
func (p *upPool) get(now time.Time) *upConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(uc.idleSince) <= upCheckAfter || peek(uc.c) == peerOpen {
			return uc
		}
		_ = uc.c.Close()
	}
}

// put keeps uc for the next request, unless the pool is closed or full,
// or the pod sent more than its answer (bytes no request asked for, which
// would be read as the next request's answer).
func (p *upPool) put(uc *upConn, now time.Time) {
	uc.idleSince = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerBackend || uc.br.Buffered() > 0 {
		p.mu.Unlock()
		_ = uc.c.Close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// sweep closes the connections idle longer than upIdleTimeout.
func (p *upPool) sweep(now time.Time) {
	p.mu.Lock()
	var old []*upConn
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleSince) > upIdleTimeout {
		i++ // oldest first
	}
	if i > 0 {
		old = append(old, p.idle[:i]...)
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
	p.mu.Unlock()
	for _, uc := range old {
		_ = uc.c.Close()
	}
}

// close closes the idle connections and those put back later: the pod is
// no longer a backend.
func (p *upPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, uc := range idle {
		_ = uc.c.Close()
	}
}

// idleCount is the number of idle connections.
func (p *upPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
