package activator

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/spinscale/spinscale/internal/httpstats"
)

// rawGet writes a GET for host on a new connection to the proxy and
// returns the connection and its reader.
func (h *harness) rawGet(method, host, path string) (net.Conn, *bufio.Reader) {
	h.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.proxy, "http://"))
	require.NoError(h.t, err)
	h.t.Cleanup(func() { c.Close() })
	_, err = fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, path, host)
	require.NoError(h.t, err)
	return c, bufio.NewReader(c)
}

// parkedRequest routes the idle app ns/idle (its Deployment annotated with
// ann too), sends method path to it on a new connection and waits until
// the request is held at zero.
func (h *harness) parkedRequest(method, path string, ann ...string) (net.Conn, *bufio.Reader) {
	h.t.Helper()
	h.create(deployment("ns", "idle", epoch, append([]string{"http-hosts", "idle"}, ann...)...))
	h.routed("idle", "/", "ns", "idle")
	c, br := h.rawGet(method, "idle", path)
	h.awaitHold("ns", "idle")
	return c, br
}

// A held GET leaves its handler: the fast loop parks it itself, nothing
// handed to Go's HTTP server; its answer comes with Connection: close, the
// backend's headers and body intact, the request as the pod would get it
// from the server (X-Forwarded-For the client's address), and the
// connection is closed after it.
func TestParkedRequestIsAnsweredOnItsConnectionAndClosed(t *testing.T) {
	h := newHarness(t)
	c, br := h.parkedRequest(http.MethodGet, "/path?q=1")
	a, _ := h.x.table.lookup("idle", "/")
	a.mu.Lock()
	parkedNow := len(a.parked)
	a.mu.Unlock()
	assert.Equal(t, 1, parkedNow, "the held GET waits without its handler")
	for _, why := range []string{handedHead, handedRoute, handedPod} {
		assert.Zero(t, h.handedOver(why), why)
	}

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.URL.String()+" "+r.Host+" "+r.Header.Get("X-Forwarded-Host")+" "+r.Header.Get("X-Forwarded-For"))
		fmt.Fprint(w, "woken")
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "idle", "idle", backend))

	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLimit)))
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "woken", string(body))
	assert.Equal(t, "/path?q=1 idle idle 127.0.0.1", res.Header.Get("X-Seen"))
	assert.True(t, res.Close, "Connection: close")
	assert.NotEmpty(t, res.Header.Get("Date"))
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the connection is closed after the answer")
	assert.Zero(t, a.heldCount())
	assert.Contains(t, h.metrics(), `spinscale_activator_requests_total{app="idle",code="200",namespace="ns"} 1`)
}

// A request with a body is held in its handler, and its connection kept.
func TestRequestWithABodyIsHeldWithItsConnection(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle"))
	h.routed("idle", "/", "ns", "idle")
	type answer struct {
		res  *http.Response
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.proxy+"/", strings.NewReader("payload"))
		req.Host = "idle"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		done <- answer{res, string(b), err}
	}()
	h.awaitHold("ns", "idle")
	a, _ := h.x.table.lookup("idle", "/")
	a.mu.Lock()
	parkedNow := len(a.parked)
	a.mu.Unlock()
	assert.Zero(t, parkedNow)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "idle", "idle", backend))
	got := <-done
	require.NoError(t, got.err)
	assert.Equal(t, http.StatusOK, got.res.StatusCode)
	assert.Equal(t, "got payload", got.body)
	assert.False(t, got.res.Close, "kept alive")
}

// A parked request whose queue timeout passes is answered 503 on its
// connection.
func TestParkedRequestTimesOutWith503(t *testing.T) {
	h := newHarness(t)
	c, br := h.parkedRequest(http.MethodHead, "/", "http-queue-timeout", "5s")
	h.clock.Step(5 * time.Second)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLimit)))
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "a HEAD answer has no body, and the connection closes")
}

// A request still parked when the drain runs out is answered 503.
func TestParkedRequestIsAnswered503WhenTheDrainRunsOut(t *testing.T) {
	h := newHarness(t)
	c, br := h.parkedRequest(http.MethodGet, "/")
	h.cancel() // SIGTERM; the harness drains for 5 s
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLimit)))
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, string(body), "shut down")
	require.NoError(t, <-h.served)
	h.served <- nil // for the cleanup
}

// connResponse writes what net/http would for the cases the proxy meets.
func TestConnResponseWritesHTTP1(t *testing.T) {
	cases := []struct {
		name   string
		method string
		write  func(w http.ResponseWriter)
		want   []string
		absent []string
	}{
		{"body", http.MethodGet, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "hello")
		}, []string{"HTTP/1.1 200 OK\r\n", "Connection: close\r\n", "Content-Type: text/plain\r\n", "\r\n\r\nhello"}, nil},
		{"informational first", http.MethodGet, func(w http.ResponseWriter) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.WriteHeader(http.StatusCreated)
		}, []string{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\n"}, nil},
		{"no body for HEAD", http.MethodHead, func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", "5")
			_, err := w.Write([]byte("hello"))
			if err == nil {
				panic("a body was accepted for HEAD")
			}
		}, []string{"Content-Length: 5\r\n"}, []string{"hello"}},
		{"trailers dropped", http.MethodGet, func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "X-Sum")
			w.Header().Set(http.TrailerPrefix+"X-Sum", "1")
			w.Header().Set("Transfer-Encoding", "chunked")
			fmt.Fprint(w, "x")
		}, []string{"\r\n\r\nx"}, []string{"Trailer", "X-Sum", "chunked"}},
		{"bad code", http.MethodGet, func(w http.ResponseWriter) { w.WriteHeader(42) },
			[]string{"HTTP/1.1 500 Internal Server Error\r\n"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			read := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(client)
				read <- string(b)
			}()
			r := httptest.NewRequest(tc.method, "/", nil)
			w := newConnResponse(server, r)
			tc.write(w)
			w.finish(zap.NewNop())
			got := <-read
			for _, s := range tc.want {
				assert.Contains(t, got, s)
			}
			for _, s := range tc.absent {
				assert.NotContains(t, got, s)
			}
		})
	}
}

// A parked request woken when no backend can be picked (the one it was
// woken for went again) stays parked; woken at its timeout, it is answered
// 503 on its connection.
func TestWokenWithoutABackendStaysParked(t *testing.T) {
	x, err := New(Options{})
	require.NoError(t, err)
	a := newApp(httpstats.App{Namespace: "ns", Name: "web"}, epoch)
	server, client := net.Pipe()
	defer client.Close()
	p := &parked{x: x, a: a, m: x.metrics.of(a), r: httptest.NewRequest(http.MethodGet, "/", nil), conn: server,
		start: time.Now(), expire: x.holder.afterFunc(time.Hour, func() {}), stopCut: func() bool { return true }}
	a.mu.Lock()
	a.parked[p] = struct{}{}
	a.held = 1
	a.mu.Unlock()
	x.holder.heldChanged(a, 1)
	x.active.add(1)

	x.dispatch(p)
	a.mu.Lock()
	_, still := a.parked[p]
	a.mu.Unlock()
	assert.True(t, still, "no backend and no reason to refuse: parked")
	assert.EqualValues(t, 1, a.heldCount())

	read := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(client)
		read <- string(b)
	}()
	a.wakeOne(p, func() { p.expired = true })
	select {
	case got := <-read:
		assert.Contains(t, got, "HTTP/1.1 503 Service Unavailable\r\n")
		assert.Contains(t, got, "app ns/web had no ready pod in time")
	case <-time.After(waitLimit):
		t.Fatal("not answered")
	}
	assert.Zero(t, a.heldCount())
	// The count falls once dispatch returns, just after the answer.
	assert.Eventually(t, func() bool { return x.active.load() == 0 }, waitLimit, time.Millisecond)
}

// closedByPeer tells a connection its client closed from one still open,
// with or without more input, which it drops.
func TestClosedByPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()
	assert.False(t, closedByPeer(server), "open")
	_, err = client.Write([]byte("x"))
	require.NoError(t, err)
	assert.False(t, closedByPeer(server), "open, with input")
	require.NoError(t, client.Close())
	deadline := time.Now().Add(waitLimit)
	for !closedByPeer(server) {
		require.True(t, time.Now().Before(deadline), "the close was never seen")
		time.Sleep(10 * time.Millisecond)
	}
}

// A parked request whose pod breaks off its answer mid-body gets its
// connection reset, not a clean end that would pass a cut body for a whole
// one (a close-delimited body cannot tell otherwise).
func TestParkedAnswerCutMidBodyIsAnError(t *testing.T) {
	h := newHarness(t)
	c, br := h.parkedRequest(http.MethodGet, "/")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "the first part")
		w.(http.Flusher).Flush() // chunked: no Content-Length
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "idle", "idle", backend))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLimit)))
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.EqualValues(t, -1, res.ContentLength, "close-delimited")
	_, err = io.ReadAll(res.Body)
	assert.Error(t, err, "the cut is seen by the client")
}

// A request held from the fast loop that its queue refuses is answered 503
// on its connection, which then closes; the request parked before it is
// untouched.
func TestFastLoopAnswersAnOverflowAtZero(t *testing.T) {
	h := newHarness(t)
	_, _ = h.parkedRequest(http.MethodGet, "/", "http-queue-size", "1")
	c, br := h.rawGet(http.MethodGet, "idle", "/second")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLimit)))
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	assert.Contains(t, string(body), "queue is full")
	assert.True(t, res.Close, "the answer closes the connection")
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	a, _ := h.x.table.lookup("idle", "/")
	assert.EqualValues(t, 1, a.heldCount(), "the first request is still held")
	for _, why := range []string{handedHead, handedRoute, handedPod} {
		assert.Zero(t, h.handedOver(why), why)
	}
	assert.Contains(t, h.metrics(), `spinscale_activator_held_rejected_total{app="idle",namespace="ns",reason="overflow"} 1`)
}
