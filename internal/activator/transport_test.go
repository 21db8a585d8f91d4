package activator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// remotes is a backend that answers each request with the client's
// address, and counts the connections it saw.
type remotes struct {
	mu    sync.Mutex
	addrs map[string]int
}

func (r *remotes) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.addrs[req.RemoteAddr]++
	r.mu.Unlock()
	fmt.Fprint(w, req.RemoteAddr)
}

func (r *remotes) conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.addrs)
}

func getVia(t *testing.T, tr http.RoundTripper, ctx context.Context, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	res, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

func TestPodTransportReusesItsConnections(t *testing.T) {
	back := &remotes{addrs: map[string]int{}}
	srv := httptest.NewServer(back)
	t.Cleanup(srv.Close)
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	for i := range 5 {
		res, _, err := getVia(t, tr, context.Background(), srv.URL+"/")
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, http.StatusOK, res.StatusCode)
	}
	assert.Equal(t, 1, back.conns(), "one connection for five requests in a row")
}

// A connection the pod closed while idle is found on the next request,
// which is sent again on a new one.
func TestPodTransportResendsOnAConnectionClosedWhileIdle(t *testing.T) {
	back := &remotes{addrs: map[string]int{}}
	srv := httptest.NewUnstartedServer(back)
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	_, first, err := getVia(t, tr, context.Background(), srv.URL+"/")
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the server closes the idle connection
	_, second, err := getVia(t, tr, context.Background(), srv.URL+"/")
	require.NoError(t, err)
	assert.NotEqual(t, first, second, "a new connection")
}

// A body closed before its end gives its connection up without reading
// the rest, even of an endless stream.
func TestPodTransportBodyClosedEarlyDropsItsConnection(t *testing.T) {
	back := &remotes{addrs: map[string]int{}}
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			back.ServeHTTP(w, r)
			return
		}
		for i := 0; i < 100000; i++ { // bounded: ends with the test
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			default:
			}
			if _, err := fmt.Fprintf(w, "chunk %d\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream", nil)
	res, err := tr.RoundTrip(req)
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(res.Body, buf)
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() { res.Body.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("Close read the endless body")
	}
	tr.mu.Lock()
	idle := len(tr.idle)
	tr.mu.Unlock()
	assert.Zero(t, idle, "the connection is not kept")
	_, body, err := getVia(t, tr, context.Background(), srv.URL+"/")
	require.NoError(t, err)
	assert.NotEmpty(t, body, "the next request gets a new connection")
}

// The request's end ends the wait for the pod's answer.
func TestPodTransportStopsWaitingWhenTheRequestEnds(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { <-release }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := getVia(t, tr, ctx, srv.URL+"/")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), waitLimit/2)
}

// An informational answer reaches the trace, as the proxy passes it on,
// and the final answer follows.
func TestPodTransportPassesInformationalAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		fmt.Fprint(w, "final")
	}))
	t.Cleanup(srv.Close)
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	var got []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, code)
			assert.Equal(t, "</a.css>; rel=preload", h.Get("Link"))
			return nil
		},
	})
	res, body, err := getVia(t, tr, ctx, srv.URL+"/")
	require.NoError(t, err)
	assert.Equal(t, []int{http.StatusEarlyHints}, got)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "final", body)
}

// fallbackSpy counts the requests the fallback transport got.
type fallbackSpy struct {
	http.RoundTripper
	n int
}

func (f *fallbackSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	f.n++
	return f.RoundTripper.RoundTrip(r)
}

func TestPodTransportSendsBodiesAndUpgradesThroughItsFallback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	t.Cleanup(srv.Close)
	spy := &fallbackSpy{RoundTripper: &http.Transport{}}
	tr := newPodTransport(spy)
	t.Cleanup(tr.CloseIdleConnections)

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("payload"))
	res, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, "POST payload", string(b))
	assert.Equal(t, 1, spy.n)

	_, body, err := getVia(t, tr, context.Background(), srv.URL+"/")
	require.NoError(t, err)
	assert.Equal(t, "GET ", body)
	assert.Equal(t, 1, spy.n, "a GET goes direct")
}

// A refused dial is a dial error, which the proxy quarantines the pod on.
func TestPodTransportDialErrorIsADialOpError(t *testing.T) {
	tr := newTransport()
	_, _, err := getVia(t, tr, context.Background(), fmt.Sprintf("http://127.0.0.1:%d/", deadPort(t)))
	var op *net.OpError
	require.True(t, errors.As(err, &op), "%v", err)
	assert.Equal(t, "dial", op.Op)
}

func TestPodTransportSweepsStaleIdleConnections(t *testing.T) {
	back := &remotes{addrs: map[string]int{}}
	srv := httptest.NewServer(back)
	t.Cleanup(srv.Close)
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	_, _, err := getVia(t, tr, context.Background(), srv.URL+"/")
	require.NoError(t, err)
	tr.mu.Lock()
	require.Len(t, tr.idle, 1)
	for _, conns := range tr.idle {
		conns[0].idleFrom = time.Now().Add(-tr.idleTimeout)
	}
	tr.mu.Unlock()
	tr.sweep()
	tr.mu.Lock()
	assert.Empty(t, tr.idle, "closed")
	tr.mu.Unlock()
}
