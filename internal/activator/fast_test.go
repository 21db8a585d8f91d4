package activator

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/httpstats"
)

func TestHeadEnd(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: web\r\n\r\n"
	tests := []struct {
		in       string
		end      int
		bad      bool
		scenario string
	}{
		{get, len(get), false, "a whole head"},
		{get + "GET /next HTTP/1.1\r\n", len(get), false, "a pipelined request after it"},
		{"GET / HTTP/1.1\r\nHost: web\r\n", 0, false, "not complete yet"},
		{"GET / HTTP/1.1\r\nHost: web\r", 0, false, "cut in a CRLF"},
		{"GET / HTTP/1.1\nHost: web\n\n", 0, true, "bare LF"},
		{"\r\nGET / HTTP/1.1\r\n\r\n", 0, true, "an empty line first"},
	}
	for _, tt := range tests {
		end, bad := headEnd([]byte(tt.in))
		assert.Equal(t, tt.end, end, tt.scenario)
		assert.Equal(t, tt.bad, bad, tt.scenario)
	}
}

func TestFastLoopTakesOnlyPlainRequests(t *testing.T) {
	took := []string{
		"GET / HTTP/1.1\r\nHost: web\r\n\r\n",
		"HEAD /a/b HTTP/1.1\r\nHost: web.example.com:8080\r\n\r\n",
		"GET /a;v=1/b?x=1&y=%20z&q=a/b?c HTTP/1.1\r\nhost: web\r\nAccept: */*\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nCookie: a=b; c=d\r\nUser-Agent: curl/8\r\n\r\n",
	}
	for _, in := range took {
		var h reqHead
		assert.True(t, h.parse([]byte(in)), "%q", in)
	}
	refused := map[string]string{
		"a body":                       "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 2\r\n\r\n",
		"another method":               "DELETE / HTTP/1.1\r\nHost: web\r\n\r\n",
		"absolute form":                "GET http://web/ HTTP/1.1\r\nHost: web\r\n\r\n",
		"asterisk form":                "OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n",
		"HTTP/1.0":                     "GET / HTTP/1.0\r\nHost: web\r\n\r\n",
		"h2c preface":                  "PRI * HTTP/2.0\r\n\r\n",
		"no Host":                      "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
		"two Hosts":                    "GET / HTTP/1.1\r\nHost: web\r\nHost: other\r\n\r\n",
		"an odd Host":                  "GET / HTTP/1.1\r\nHost: we/b\r\n\r\n",
		"a GET with a length":          "GET / HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\n",
		"chunked":                      "GET / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n",
		"an upgrade":                   "GET / HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"Expect":                       "GET / HTTP/1.1\r\nHost: web\r\nExpect: 100-continue\r\n\r\n",
		"TE":                           "GET / HTTP/1.1\r\nHost: web\r\nTE: trailers\r\n\r\n",
		"a hop-by-hop header named":    "GET / HTTP/1.1\r\nHost: web\r\nConnection: X-Secret\r\n\r\n",
		"a percent-encoded path":       "GET /a%2Fb HTTP/1.1\r\nHost: web\r\n\r\n",
		"a semicolon in the query":     "GET /?a=1;b=2 HTTP/1.1\r\nHost: web\r\n\r\n",
		"a bad escape in the query":    "GET /?a=%zz HTTP/1.1\r\nHost: web\r\n\r\n",
		"a quote in the path":          "GET /a\"b HTTP/1.1\r\nHost: web\r\n\r\n",
		"a space before the colon":     "GET / HTTP/1.1\r\nHost : web\r\n\r\n",
		"a folded line":                "GET / HTTP/1.1\r\nHost: web\r\nX-A: 1\r\n 2\r\n\r\n",
		"a control character":          "GET / HTTP/1.1\r\nHost: web\r\nX-A: a\x01b\r\n\r\n",
		"a request line of two fields": "GET /\r\nHost: web\r\n\r\n",
		"too many X-Forwarded-For":     "GET / HTTP/1.1\r\nHost: web\r\n" + strings.Repeat("X-Forwarded-For: 10.0.0.1\r\n", 5) + "\r\n",
		"too many headers":             "GET / HTTP/1.1\r\nHost: web\r\n" + strings.Repeat("X-A: 1\r\n", maxFastHeaders+1) + "\r\n",
	}
	for why, in := range refused {
		var h reqHead
		assert.False(t, h.parse([]byte(in)), why)
	}

	var h reqHead
	in := "HEAD /api/v1?x=1 HTTP/1.1\r\nHost: Web:80\r\nX-A: 1\r\nConnection: close\r\nX-Forwarded-For: 10.0.0.1\r\n" +
		"X-Forwarded-Host: \r\nX-Forwarded-Host: second\r\nX-Forwarded-Proto: https\r\nForwarded: for=10.0.0.1\r\nX-B:  two words \r\n\r\n"
	require.True(t, h.parse([]byte(in)))
	assert.Equal(t, "HEAD", h.method)
	assert.Equal(t, "/api/v1", h.path)
	assert.Equal(t, "/api/v1?x=1", string(h.target))
	assert.Equal(t, "Web:80", string(h.host))
	assert.True(t, h.close)
	assert.Equal(t, "10.0.0.1", string(h.xff[0]))
	assert.Equal(t, 1, h.nxff)
	assert.True(t, h.hasXFH)
	assert.Empty(t, h.xfh, "the first X-Forwarded-Host counts, as in rewrite")
	assert.Equal(t, "https", string(h.xfp))
	var kept []string
	for _, s := range h.kept[:h.nkept] {
		kept = append(kept, string(h.head[s.from:s.to]))
	}
	assert.Equal(t, []string{"X-A: 1", "X-B:  two words "}, kept, "Host, Connection, Forwarded and X-Forwarded-* are rewritten")
}

func TestFastLoopPassesOnOnlyPlainAnswers(t *testing.T) {
	tests := []struct {
		in, method string
		length     int64
		close      bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", 5, false},
		{"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", -1, false},
		{"HTTP/1.1 204 No Content\r\n\r\n", "GET", 0, false},
		{"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", "GET", 0, false},
		{"HTTP/1.1 200 OK\r\n\r\n", "HEAD", 0, false},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "GET", 0, true},
	}
	for _, tt := range tests {
		var r respHead
		require.NoError(t, r.parse([]byte(tt.in), tt.method), "%q", tt.in)
		assert.Equal(t, tt.length, r.length, "%q", tt.in)
		assert.Equal(t, tt.close, r.close, "%q", tt.in)
	}
	refused := map[string]string{
		"HTTP/1.0":                     "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
		"informational":                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
		"switching protocols":          "HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"ends at the close":            "HTTP/1.1 200 OK\r\n\r\n",
		"both lengths":                 "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"two lengths":                  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"another coding":               "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"a bad length":                 "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"a hop-by-hop header named":    "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nContent-Length: 0\r\n\r\n",
		"a status of two digits":       "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
		"a status run into its reason": "HTTP/1.1 2000K\r\nContent-Length: 0\r\n\r\n",
	}
	for why, in := range refused {
		var r respHead
		assert.ErrorIs(t, r.parse([]byte(in), "GET"), errNotFast, why)
	}

	var r respHead
	in := "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nDate: Sat, 05 Dec 2026 07:00:00 GMT\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n"
	require.NoError(t, r.parse([]byte(in), "GET"))
	assert.True(t, r.hasDate)
	var kept []string
	for _, s := range r.kept[:r.nkept] {
		kept = append(kept, in[s.from:s.to])
	}
	assert.Equal(t, []string{"HTTP/1.1 200 OK", "Date: Sat, 05 Dec 2026 07:00:00 GMT", "Content-Length: 2", "X-A: 1"}, kept)
}

func TestCopyChunkedPassesTheFramingAndTrailers(t *testing.T) {
	body := "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Sum: 8\r\n\r\n"
	src := bufio.NewReaderSize(strings.NewReader(body+"NEXT"), 16) // smaller than the body: waits are crossed
	var out bytes.Buffer
	dst := bufio.NewWriter(&out)
	require.NoError(t, copyChunked(dst, src))
	require.NoError(t, dst.Flush())
	assert.Equal(t, body, out.String())
	rest, _ := io.ReadAll(src)
	assert.Equal(t, "NEXT", string(rest), "the next answer is left unread")

	for why, bad := range map[string]string{
		"a size that is not hex": "zz\r\nhello\r\n0\r\n\r\n",
		"no CRLF after a chunk":  "5\r\nhelloX\r\n0\r\n\r\n",
		"cut short":              "5\r\nhel",
	} {
		err := copyChunked(bufio.NewWriter(io.Discard), bufio.NewReader(strings.NewReader(bad)))
		assert.Error(t, err, why)
	}
}

func TestCopyBodyStopsAtItsLength(t *testing.T) {
	src := bufio.NewReaderSize(strings.NewReader(strings.Repeat("a", 100)+"NEXT"), 16)
	var out bytes.Buffer
	dst := bufio.NewWriter(&out)
	require.NoError(t, copyBody(dst, src, 100))
	require.NoError(t, dst.Flush())
	assert.Equal(t, strings.Repeat("a", 100), out.String())
	rest, _ := io.ReadAll(src)
	assert.Equal(t, "NEXT", string(rest))
	assert.Error(t, copyBody(bufio.NewWriter(io.Discard), bufio.NewReader(strings.NewReader("short")), 10))
}

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestPoolLooksAtConnectionsIdleLongerThanASecond(t *testing.T) {
	now := time.Now()
	var p upPool
	live, _ := tcpPair(t)
	closed, peer := tcpPair(t)
	require.NoError(t, peer.Close())
	stray, peer2 := tcpPair(t)
	_, err := peer2.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // the close and the bytes arrive

	p.put(upConnOf(live), now.Add(-2*time.Second))
	p.put(upConnOf(closed), now.Add(-2*time.Second))
	p.put(upConnOf(stray), now.Add(-2*time.Second))
	uc := p.get(now)
	require.NotNil(t, uc)
	assert.Same(t, live, uc.c, "the stray answer and the closed one are dropped, the live one used")
	assert.Zero(t, p.idleCount())

	// Idle less than upCheckAfter: used as is, even closed (a GET then
	// goes again on a new connection).
	closed2, peer3 := tcpPair(t)
	require.NoError(t, peer3.Close())
	p.put(upConnOf(closed2), now)
	uc = p.get(now.Add(100 * time.Millisecond))
	require.NotNil(t, uc)
	assert.Same(t, closed2, uc.c)
}

func TestPoolClosesConnectionsIdleTooLongAndThoseOfAGonePod(t *testing.T) {
	now := time.Now()
	var p upPool
	old, oldPeer := tcpPair(t)
	recent, _ := tcpPair(t)
	p.put(upConnOf(old), now.Add(-upIdleTimeout-time.Second))
	p.put(upConnOf(recent), now)
	p.sweep(now)
	assert.Equal(t, 1, p.idleCount())
	require.NoError(t, oldPeer.SetReadDeadline(time.Now().Add(waitLimit)))
	_, err := oldPeer.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the old one is closed")

	a := newApp(httpstats.App{Namespace: "ns", Name: "web"}, now)
	a.setBackends([]string{"127.0.0.1:1", "127.0.0.1:2"})
	gone := a.backendList()[1]
	c, peer := tcpPair(t)
	gone.pool.put(upConnOf(c), now)
	a.setBackends([]string{"127.0.0.1:1"})
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(waitLimit)))
	_, err = peer.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "a pod no longer ready has its connections closed")
	c2, peer2 := tcpPair(t)
	gone.pool.put(upConnOf(c2), now)
	_, err = peer2.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "and those put back after")
	assert.Zero(t, gone.pool.idleCount())
}

// counting is a backend that counts its connections and requests and
// records the last request's headers.
type counting struct {
	*httptest.Server
	conns, requests atomic.Int64
	mu              sync.Mutex
	last            http.Header
}

func countingBackend(t *testing.T, idleTimeout time.Duration, h http.HandlerFunc) *counting {
	c := &counting{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		c.mu.Lock()
		c.last = r.Header.Clone()
		c.last.Set("Host", r.Host)
		c.mu.Unlock()
		h(w, r)
	}))
	c.Config.IdleTimeout = idleTimeout
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (c *counting) lastHeader() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// fastApp routes host web to a backend.
func (h *harness) fastApp(backend *httptest.Server) {
	h.t.Helper()
	h.create(backendSlice("ns", "web", "web", backend))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 1)
}

// roundTripOn writes a request on c and reads its answer and body.
func roundTripOn(t *testing.T, c net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(waitLimit)))
	_, err := io.WriteString(c, req)
	require.NoError(t, err)
	method, _, _ := strings.Cut(req, " ")
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

// handedOver is the fast loop's hand-overs for a reason, from /metrics.
func (h *harness) handedOver(reason string) int {
	h.t.Helper()
	prefix := fmt.Sprintf(`spinscale_activator_handed_over_total{reason=%q} `, reason)
	for _, line := range strings.Split(h.metrics(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(v)
			require.NoError(h.t, err)
			return n
		}
	}
	h.t.Fatalf("no %s in the metrics", prefix)
	return 0
}

// Keep-alive GETs and HEADs are answered by the fast loop on one pod
// connection, with the headers ServeHTTP's rewrite sets, and without
// handing anything over.
func TestFastLoopServesKeepAliveRequestsOnOnePodConnection(t *testing.T) {
	h := newHarness(t)
	backend := countingBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.RequestURI())
		fmt.Fprint(w, "hello")
	})
	h.fastApp(backend.Server)
	c, err := net.Dial("tcp", strings.TrimPrefix(h.proxy, "http://"))
	require.NoError(t, err)
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 5 {
		res, body := roundTripOn(t, c, br, fmt.Sprintf("GET /items/%d?x=1 HTTP/1.1\r\nHost: web\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: keep-alive\r\nX-Custom: kept\r\n\r\n", i))
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "hello", body)
		assert.Equal(t, fmt.Sprintf("/items/%d?x=1", i), res.Header.Get("X-Path"))
		assert.NotEmpty(t, res.Header.Get("Date"))
		assert.EqualValues(t, 5, res.ContentLength)
	}
	got := backend.lastHeader()
	assert.Equal(t, "web", got.Get("Host"))
	assert.Equal(t, "10.0.0.1, 127.0.0.1", got.Get("X-Forwarded-For"))
	assert.Equal(t, "web", got.Get("X-Forwarded-Host"))
	assert.Equal(t, "http", got.Get("X-Forwarded-Proto"))
	assert.Equal(t, "kept", got.Get("X-Custom"))
	assert.Empty(t, got.Get("Connection"), "hop-by-hop headers stay here")

	res, body := roundTripOn(t, c, br, "HEAD / HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Empty(t, body)
	assert.EqualValues(t, 5, res.ContentLength, "a HEAD's length is the GET's")

	res, _ = roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
	assert.True(t, res.Close, "a client's close is answered with one")
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "and the connection closes")

	assert.EqualValues(t, 7, backend.requests.Load())
	assert.EqualValues(t, 1, backend.conns.Load(), "one pod connection, kept alive")
	for _, why := range []string{handedHead, handedRoute, handedPod} {
		assert.Zero(t, h.handedOver(why), why)
	}
	assert.Contains(t, h.metrics(), `spinscale_activator_requests_total{app="web",code="200",namespace="ns"} 7`)
}

// A pod connection the pod closed while it was idle is replaced: the
// request goes again on a new one, in the fast loop.
func TestFastLoopReplacesAPodConnectionClosedWhileIdle(t *testing.T) {
	h := newHarness(t)
	backend := countingBackend(t, 30*time.Millisecond, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	h.fastApp(backend.Server)
	c, br := h.rawConn()
	for range 3 {
		res, body := roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "ok", body)
		time.Sleep(150 * time.Millisecond) // the pod closes its idle connection
	}
	assert.EqualValues(t, 3, backend.requests.Load(), "each sent once to the pod")
	assert.EqualValues(t, 3, backend.conns.Load())
	assert.Zero(t, h.handedOver(handedPod))
}

// rawConn is a new connection to the proxy.
func (h *harness) rawConn() (net.Conn, *bufio.Reader) {
	h.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.proxy, "http://"))
	require.NoError(h.t, err)
	h.t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// rawBackend serves each connection with serve, on loopback.
func rawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) *httptest.Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	// An httptest.Server only for its URL.
	return &httptest.Server{URL: "http://" + ln.Addr().String(), Listener: ln}
}

// A 408 a pod sent on a connection while it was idle, before closing it,
// is not taken for the answer: the request goes again on a new one.
func TestFastLoopDoesNotTakeAnIdle408ForTheAnswer(t *testing.T) {
	h := newHarness(t)
	var served atomic.Int64
	backend := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if _, err := http.ReadRequest(br); err != nil {
				_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 7\r\n\r\ntimeout")
				return
			}
			served.Add(1)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	h.fastApp(backend)
	c, br := h.rawConn()
	for range 2 {
		res, body := roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "ok", body)
		time.Sleep(150 * time.Millisecond)
	}
	assert.EqualValues(t, 2, served.Load())
	assert.Zero(t, h.handedOver(handedPod))
}

// What the fast loop does not take is handed over with the connection:
// a POST with a body between GETs on one connection, and HTTP/1.0.
func TestFastLoopHandsOverWhatItDoesNotTake(t *testing.T) {
	h := newHarness(t)
	backend := countingBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	h.fastApp(backend.Server)
	c, br := h.rawConn()
	_, body := roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, "GET ", body)
	_, body = roundTripOn(t, c, br, "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 4\r\n\r\ndata")
	assert.Equal(t, "POST data", body, "the request reaches Go's server whole")
	_, body = roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, "GET ", body, "the connection goes on there")
	assert.Equal(t, 1, h.handedOver(handedHead))

	c2, br2 := h.rawConn()
	res, body := roundTripOn(t, c2, br2, "GET / HTTP/1.0\r\nHost: web\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "GET ", body)
	assert.Equal(t, 2, h.handedOver(handedHead))

	c3, br3 := h.rawConn()
	res, _ = roundTripOn(t, c3, br3, "GET / HTTP/1.1\r\nHost: nobody\r\n\r\n")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Equal(t, 1, h.handedOver(handedRoute))
	assert.EqualValues(t, 4, backend.requests.Load())
}

// An answer the fast loop does not pass on (here, a body that ends with the
// connection) is left to http.Transport: the GET is sent once more there.
func TestFastLoopLeavesUnusualAnswersToTheStandardPath(t *testing.T) {
	h := newHarness(t)
	var served atomic.Int64
	backend := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			served.Add(1)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nuntil the close")
		}
	})
	h.fastApp(backend)
	res, body := h.get("web", "/")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "until the close", body)
	assert.EqualValues(t, 2, served.Load(), "once in the fast loop, once by http.Transport")
	assert.Equal(t, 1, h.handedOver(handedPod))
}

// A client that goes while its GET is with the pod has the pod's request
// cut within about two seconds, as Go's server would cancel it, and is
// counted as 499.
func TestFastLoopCutsThePodRequestOfAClientThatWent(t *testing.T) {
	h := newHarness(t)
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	backend := countingBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(waitLimit):
		}
	})
	h.fastApp(backend.Server)
	c, _ := h.rawConn()
	_, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: web\r\n\r\n")
	require.NoError(t, err)
	<-arrived
	require.NoError(t, c.Close())
	select {
	case <-cancelled:
	case <-time.After(4 * time.Second):
		t.Fatal("the pod's request was not cut after its client went")
	}
	require.Eventually(t, func() bool {
		return strings.Contains(h.metrics(), `spinscale_activator_requests_total{app="web",code="499",namespace="ns"} 1`)
	}, waitLimit, 10*time.Millisecond)
	assert.Zero(t, h.handedOver(handedPod))
}

// A pod that breaks off its answer has the client's connection reset: the
// client sees an error, not a short answer.
func TestFastLoopResetsTheClientWhenThePodBreaksOff(t *testing.T) {
	h := newHarness(t)
	backend := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nthe first part")
		}
	})
	h.fastApp(backend)
	c, br := h.rawConn()
	require.NoError(t, c.SetDeadline(time.Now().Add(waitLimit)))
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	require.NoError(t, err)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.ReadAll(res.Body)
	assert.Error(t, err)
}

// The drain closes the fast loop's idle keep-alive connections at once
// rather than waiting for its timeout.
func TestDrainClosesIdleKeepAliveConnections(t *testing.T) {
	h := newHarness(t)
	h.fastApp(named(t, "web"))
	c, br := h.rawConn()
	_, body := roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, "web", body)
	start := time.Now()
	h.cancel() // SIGTERM
	require.NoError(t, <-h.served)
	h.served <- nil // for the cleanup
	assert.Less(t, time.Since(start), 2*time.Second, "well within the drain timeout of 5 s")
	_, err := br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
}

// The answer passes through the fast loop with its framing: a chunked body
// with trailers arrives whole.
func TestFastLoopPassesChunkedAnswersWithTrailers(t *testing.T) {
	h := newHarness(t)
	backend := countingBackend(t, 0, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprint(w, "part one, ")
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "part two")
		w.Header().Set("X-Sum", "2")
	})
	h.fastApp(backend.Server)
	c, br := h.rawConn()
	res, body := roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, "part one, part two", body)
	assert.Equal(t, []string{"chunked"}, res.TransferEncoding)
	assert.Equal(t, "2", res.Trailer.Get("X-Sum"))
	assert.Zero(t, h.handedOver(handedPod))
}

// upConnOf is a pod connection as the pool holds it.
func upConnOf(c net.Conn) *upConn {
	return &upConn{c: c, br: bufio.NewReaderSize(c, upReadBuffer)}
}

// A pod that sent more than its answer has its connection closed, not
// pooled: the extra bytes would be taken for the next request's answer.
func TestPoolDropsAConnectionWithBytesNoRequestAskedFor(t *testing.T) {
	now := time.Now()
	var p upPool
	c, peer := tcpPair(t)
	uc := upConnOf(c)
	_, err := io.WriteString(peer, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n")
	require.NoError(t, err)
	for _, line := range []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 0\r\n", "\r\n"} {
		got, err := uc.br.ReadString('\n') // the answer read to its end, the rest buffered
		require.NoError(t, err)
		require.Equal(t, line, got)
	}
	require.Eventually(t, func() bool { _, _ = uc.br.Peek(1); return uc.br.Buffered() > 0 }, waitLimit, time.Millisecond)
	p.put(uc, now)
	assert.Zero(t, p.idleCount())
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(waitLimit)))
	_, err = peer.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "it is closed")
}

// peek answers at once for a connection another goroutine is reading, and
// takes a passed read deadline for nothing: a long answer outlives the
// client connection's deadline, and its client is still there.
func TestPeekNeitherWaitsNorHeedsTheReadDeadline(t *testing.T) {
	c, peer := tcpPair(t)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	assert.Equal(t, peerOpen, peek(c), "a passed deadline is not a closed connection")

	c2, peer2 := tcpPair(t)
	reading := make(chan error, 1)
	go func() {
		_, err := c2.Read(make([]byte, 1))
		reading <- err
	}()
	time.Sleep(20 * time.Millisecond) // the read waits
	looked := make(chan peerState, 1)
	go func() { looked <- peek(c2) }()
	select {
	case s := <-looked:
		assert.Equal(t, peerOpen, s)
	case <-time.After(waitLimit):
		t.Fatal("peek waited for the read")
	}
	require.NoError(t, peer2.Close())
	assert.ErrorIs(t, <-reading, io.EOF)
	assert.Equal(t, peerClosed, peek(c2))

	require.NoError(t, peer.Close())
	require.Eventually(t, func() bool { return peek(c) == peerClosed }, waitLimit, time.Millisecond)
}

// An answer that lasts longer than the client connection's idle timeout
// (a download, a stream) goes through whole, and the connection serves
// the next request.
func TestFastLoopPassesAnAnswerLongerThanTheIdleTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.clientIdleTimeout = 300 * time.Millisecond })
	const parts = 25 // 2.5 s: watch looks at the client at least once
	backend := countingBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/long" {
			fmt.Fprint(w, "short")
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(parts))
		for range parts {
			_, _ = io.WriteString(w, "x")
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	h.fastApp(backend.Server)
	c, br := h.rawConn()
	res, body := roundTripOn(t, c, br, "GET /long HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, strings.Repeat("x", parts), body)
	res, body = roundTripOn(t, c, br, "GET /next HTTP/1.1\r\nHost: web\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "short", body)
	// The request is counted once its answer is flushed.
	assert.Eventually(t, func() bool {
		return strings.Contains(h.metrics(), `spinscale_activator_requests_total{app="web",code="200",namespace="ns"} 2`)
	}, waitLimit, 10*time.Millisecond)
	assert.Zero(t, h.handedOver(handedPod))
}

// A pod that sends a second answer with the first has that connection
// closed: the next request goes on a new one, and gets its own answer.
func TestFastLoopDropsAPodConnectionWithMoreThanItsAnswer(t *testing.T) {
	h := newHarness(t)
	var conns atomic.Int64
	backend := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		n := conns.Add(1)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		// Both in one write: they arrive together.
		_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nconn %d aHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray", n)
		_, _ = http.ReadRequest(br) // until the activator closes it
	})
	h.fastApp(backend)
	c, br := h.rawConn()
	for i := range 2 {
		res, body := roundTripOn(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, fmt.Sprintf("conn %d a", i+1), body, "each request answered on a connection of its own")
	}
	assert.EqualValues(t, 2, conns.Load())
	assert.Zero(t, h.handedOver(handedPod))
}

// A new connection that sends nothing is closed at the header timeout, as
// Go's HTTP server closes one: the idle timeout is for between requests.
func TestFastLoopClosesASilentNewConnectionAtTheHeaderTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.clientHeaderTimeout = 200 * time.Millisecond
		o.clientIdleTimeout = time.Minute
	})
	c, _ := h.rawConn()
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitLimit)))
	_, err := c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "closed by the activator")
	assert.Less(t, time.Since(start), 30*time.Second, "at the header timeout, not the idle one")
}
