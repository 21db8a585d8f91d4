package activator

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// hold serves a request the fast loop read for an app with no pod to
// pick: it is parsed into an http.Request and given to ServeHTTP, which
// parks it (or, if a pod turned ready meanwhile, forwards it), without
// going through Go's HTTP server. A burst of requests at zero then costs
// no server goroutine, server buffers or response state per request on
// its way to being parked. The answer closes the connection, as for any
// parked request. It reports whether the connection was taken (parked,
// answered or closed); false leaves it to the caller to close.
func (f *frontend) hold(fc *fastConn) bool {
	r, err := http.ReadRequest(fc.br)
	if err != nil {
		// The head was parsed already; a failure here is a form the two
		// parsers read differently: answered as Go's server would.
		f.x.log.Debug("held request could not be read; answered 400", zap.Error(err))
		_, _ = io.WriteString(fc.c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return false
	}
	delete(r.Header, "Host") // as Go's server, which keeps it in r.Host only
	r.RemoteAddr = fc.c.RemoteAddr().String()
	// The values a request from Go's server carries: the proxy aborts an
	// answer whose copy fails only for a request served by a server.
	ctx := context.WithValue(f.x.base(), http.ServerContextKey, f.srv)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, fc.c.LocalAddr())
	r = r.WithContext(ctx)
	// No deadline while held, as after a hijack: the sweep sees a client
	// that goes, and the queue timeout bounds the wait.
	_ = fc.c.SetDeadline(time.Time{})

	w := &heldWriter{connResponse: newConnResponse(fc.c, r), br: fc.br}
	answered := f.serveHeld(w, r)
	if w.hijacked {
		// Parked: the connection is the parked request's now.
		w.bw.Reset(nil)
		connWriters.Put(w.bw)
		return true
	}
	if answered {
		w.finish(f.x.log)
	}
	return true
}

// serveHeld runs ServeHTTP for a held request; a panic (the proxy's abort
// of an answer whose copy failed) closes the connection, as Go's server
// would, and is logged unless it is that abort.
func (f *frontend) serveHeld(w *heldWriter, r *http.Request) (answered bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				f.x.log.Error("panic serving a held request", zap.Any("panic", v), zap.Stack("stack"))
			}
			if !w.hijacked {
				w.abort()
			}
			answered = false
		}
	}()
	f.x.ServeHTTP(w, r)
	return true
}

// heldWriter is the ResponseWriter of a request held from the fast loop:
// an answer goes on the connection with "Connection: close"; Hijack gives
// the connection to park.
type heldWriter struct {
	*connResponse
	br       *bufio.Reader
	hijacked bool
}

func (h *heldWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h.hijacked || h.code != 0 {
		return nil, nil, errHijacked
	}
	h.hijacked = true
	return h.conn, bufio.NewReadWriter(h.br, h.bw), nil
}

var errHijacked = errors.New("connection already taken or answered")

var _ http.Hijacker = (*heldWriter)(nil)
