package activator

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/httpstats"
)

func TestRoutesByHostAndLongestPrefix(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"site", "api", "other"} {
		h.create(backendSlice("shop", name, name, named(t, name)))
	}
	h.create(deployment("shop", "site", epoch, "http-hosts", "shop.example.com"))
	h.create(deployment("shop", "api", epoch, "http-hosts", "shop.example.com", "http-path-prefix", "/api"))
	h.create(deployment("shop", "other", epoch, "http-hosts", "other.example.com,www.other.example.com"))
	h.routed("shop.example.com", "/api", "shop", "api")
	h.routed("shop.example.com", "/", "shop", "site")
	h.routed("www.other.example.com", "/", "shop", "other")
	for _, a := range []string{"site", "api", "other"} {
		h.ready("shop", a, 1)
	}

	tests := []struct{ host, path, want string }{
		{"shop.example.com", "/", "site"},
		{"shop.example.com", "/api", "api"},
		{"shop.example.com", "/api/v1/items?x=1", "api"},
		{"shop.example.com", "/apix", "site"}, // prefixes match whole path elements
		{"SHOP.example.com:8080", "/api/", "api"},
		{"other.example.com", "/api", "other"},
		{"www.other.example.com.", "/", "other"},
	}
	for _, tt := range tests {
		res, body := h.get(tt.host, tt.path)
		assert.Equal(t, http.StatusOK, res.StatusCode, "%s%s", tt.host, tt.path)
		assert.Equal(t, tt.want, body, "%s%s", tt.host, tt.path)
	}
}

// Objects listed before the caches synced are routed once Start returns,
// whatever order the informers delivered them in.
func TestAppsPresentAtStartAreRoutedOnceSynced(t *testing.T) {
	pod := named(t, "early")
	h := newHarnessWith(t, []runtime.Object{
		backendSlice("ns", "early", "early", pod),
		deployment("ns", "early", epoch, "http-hosts", "early"),
	})
	assert.True(t, h.x.synced.Load())
	assert.Equal(t, http.StatusOK, h.status("/readyz"))
	res, body := h.get("early", "/")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "early", body)
}

func TestUnknownHostIs404NamingIt(t *testing.T) {
	h := newHarness(t)
	res, body := h.get("nobody.example.com", "/")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Contains(t, body, `no app for host "nobody.example.com"`)

	h.create(deployment("ns", "api", epoch, "http-hosts", "api.example.com", "http-path-prefix", "/api"))
	h.routed("api.example.com", "/api", "ns", "api")
	res, body = h.get("api.example.com", "/other")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Contains(t, body, `no app for host "api.example.com" and path "/other": no app of this host serves this path`)
}

func TestInvalidAnnotationsAreNotRoutedAnd404WithAHint(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("shop", "bad", epoch, "http-hosts", "bad.example.com", "http-queue-size", "lots"))
	h.waitUntil("the invalid app is known", func() bool {
		_, hint := h.x.table.lookup("bad.example.com", "/")
		return hint != ""
	})
	res, body := h.get("bad.example.com", "/")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Contains(t, body, "shop/bad")
	assert.Contains(t, body, "annotations are invalid")
}

func TestOlderDeploymentWinsAHostAndPrefix(t *testing.T) {
	h := newHarness(t)
	h.create(backendSlice("a", "new", "new", named(t, "new")))
	h.create(backendSlice("b", "old", "old", named(t, "old")))
	h.create(deployment("a", "new", epoch.Add(time.Hour), "http-hosts", "dup.example.com"))
	h.create(deployment("b", "old", epoch, "http-hosts", "dup.example.com"))
	h.routed("dup.example.com", "/", "b", "old")
	h.ready("b", "old", 1)
	_, body := h.get("dup.example.com", "/")
	assert.Equal(t, "old", body)
}

func TestLeastLoadedPodIsChosen(t *testing.T) {
	h := newHarness(t)
	arrived := make(chan string, 10)
	release := make(chan struct{})
	pod := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- name
			if r.URL.Path == "/slow" {
				<-release
			}
			fmt.Fprint(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	h.create(backendSlice("ns", "web-1", "web", pod("pod-1")))
	h.create(backendSlice("ns", "web-2", "web", pod("pod-2")))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 2)

	slow := make(chan string)
	go func() { _, body := h.get("web", "/slow"); slow <- body }()
	busy := <-arrived
	// With one pod busy, every request goes to the other.
	for range 5 {
		_, body := h.get("web", "/")
		<-arrived
		assert.NotEqual(t, busy, body)
	}
	close(release)
	assert.Equal(t, busy, <-slow)
}

func TestHeldRequestIsReleasedWithin100msOfReady(t *testing.T) {
	h := newHarness(t)
	stream := h.openStream()
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle.example.com"))
	h.routed("idle.example.com", "/", "ns", "idle")

	type answer struct {
		at   time.Time
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		res, body := h.get("idle.example.com", "/")
		done <- answer{time.Now(), res.StatusCode, body}
	}()
	h.awaitHold("ns", "idle")

	wake := stream.next(t)
	assert.Equal(t, "wake", string(wake.Kind))
	require.Len(t, wake.Apps, 1)
	assert.Equal(t, "ns/idle", wake.Apps[0].App.String())
	assert.EqualValues(t, 1, wake.Apps[0].Held)
	assert.Equal(t, 0, wake.Apps[0].Endpoints)

	readyAt := time.Now()
	h.create(backendSlice("ns", "idle-x", "idle", named(t, "idle-pod")))
	a := <-done
	assert.Equal(t, http.StatusOK, a.code)
	assert.Equal(t, "idle-pod", a.body)
	assert.Less(t, a.at.Sub(readyAt), 100*time.Millisecond, "the held request is answered at once when its pod is ready")
}

func TestHoldQueueOverflowIs503WithRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle", "http-queue-size", "1"))
	h.routed("idle", "/", "ns", "idle")
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.proxy+"/", nil)
		req.Host = "idle"
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	h.awaitHold("ns", "idle")
	res, body := h.get("idle", "/")
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))
	assert.Contains(t, body, "ns/idle")
	assert.Contains(t, body, "queue is full")
	cancel()
	<-held
	assert.Contains(t, h.metrics(), `spinscale_activator_held_rejected_total{app="idle",namespace="ns",reason="overflow"} 1`)
}

func TestHeldRequestTimesOutWith503(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle", "http-queue-timeout", "5s"))
	h.routed("idle", "/", "ns", "idle")
	type answer struct {
		res  *http.Response
		body string
	}
	done := make(chan answer, 1)
	go func() { res, body := h.get("idle", "/"); done <- answer{res, body} }()
	h.awaitHold("ns", "idle")
	h.clock.Step(4 * time.Second)
	select {
	case <-done:
		t.Fatal("answered before its queue timeout")
	default:
	}
	h.clock.Step(time.Second)
	a := <-done
	assert.Equal(t, http.StatusServiceUnavailable, a.res.StatusCode)
	assert.Equal(t, "1", a.res.Header.Get("Retry-After"))
	assert.Contains(t, a.body, "app ns/idle had no ready pod in time")
	assert.Contains(t, h.metrics(), `spinscale_activator_held_rejected_total{app="idle",namespace="ns",reason="timeout"} 1`)
}

func TestClientCancelWhileHeldLeavesTheQueue(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle", "http-queue-size", "1"))
	h.routed("idle", "/", "ns", "idle")
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.proxy+"/", nil)
		req.Host = "idle"
		_, err := http.DefaultClient.Do(req)
		gone <- err
	}()
	h.awaitHold("ns", "idle")
	cancel()
	require.Error(t, <-gone)
	// Its place is free again: with a queue of 1, the next is held, not
	// refused. (The server learns of the cancel asynchronously: retry
	// until the slot is free, each attempt bounded.)
	deadline := time.Now().Add(waitLimit)
	for {
		done := make(chan int, 1)
		ctx2, cancel2 := context.WithCancel(context.Background())
		go func() {
			req, _ := http.NewRequestWithContext(ctx2, http.MethodGet, h.proxy+"/", nil)
			req.Host = "idle"
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			res.Body.Close()
			done <- res.StatusCode
		}()
		select {
		case <-h.holds:
			cancel2()
			<-done
			return
		case code := <-done:
			cancel2()
			require.Equal(t, http.StatusServiceUnavailable, code)
			require.True(t, time.Now().Before(deadline), "the cancelled request never left the queue")
		}
	}
}

func TestUpgradePassesThrough(t *testing.T) {
	h := newHarness(t)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo: "+line)
		_ = brw.Flush()
	}))
	t.Cleanup(echo.Close)
	h.create(backendSlice("ns", "ws", "ws", echo))
	h.create(deployment("ns", "ws", epoch, "http-hosts", "ws"))
	h.ready("ns", "ws", 1)

	conn, err := net.Dial("tcp", strings.TrimPrefix(h.proxy, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(waitLimit)))
	fmt.Fprint(conn, "GET /socket HTTP/1.1\r\nHost: ws\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	fmt.Fprint(conn, "ping\n")
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "echo: ping\n", line)
}

func TestH2CRequestsReachHTTP1Backends(t *testing.T) {
	h := newHarness(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "web", "web", backend))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 1)

	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}}
	req, _ := http.NewRequest(http.MethodGet, h.proxy+"/", nil)
	req.Host = "web"
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assert.Equal(t, "HTTP/2.0", res.Proto, "the client spoke h2c to the activator")
	assert.Equal(t, "HTTP/1.1", string(body), "the backend is spoken to in HTTP/1.1")
}

func TestStreamedResponsesAreFlushedAtOnce(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "second\n")
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "web", "web", backend))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 1)

	req, _ := http.NewRequest(http.MethodGet, h.proxy+"/", nil)
	req.Host = "web"
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "first\n", line, "the first chunk arrives while the backend still writes")
	close(release)
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "second\n", line)
}

func TestXForwardedHeaders(t *testing.T) {
	h := newHarness(t)
	seen := make(chan http.Header, 2)
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		hd := r.Header.Clone()
		hd.Set("Host", r.Host)
		seen <- hd
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "web", "web", backend))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web.example.com"))
	h.ready("ns", "web", 1)

	h.get("web.example.com:8080", "/")
	got := <-seen
	assert.Equal(t, "127.0.0.1", got.Get("X-Forwarded-For"))
	assert.Equal(t, "web.example.com:8080", got.Get("X-Forwarded-Host"))
	assert.Equal(t, "http", got.Get("X-Forwarded-Proto"))
	assert.Equal(t, "web.example.com:8080", got.Get("Host"), "Host is kept")

	req, _ := http.NewRequest(http.MethodGet, h.proxy+"/", nil)
	req.Host = "web.example.com"
	req.Header.Set("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "shop.example.org")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	got = <-seen
	assert.Equal(t, "203.0.113.7, 10.0.0.1, 127.0.0.1", got.Get("X-Forwarded-For"), "the chain is kept and the client appended")
	assert.Equal(t, "https", got.Get("X-Forwarded-Proto"), "the ingress's scheme is kept")
	assert.Equal(t, "shop.example.org", got.Get("X-Forwarded-Host"))
}

// appOf returns the routed app ns/name.
func (h *harness) appOf(ns, name string) *app {
	h.t.Helper()
	h.x.table.mu.Lock()
	defer h.x.table.mu.Unlock()
	a := h.x.table.apps[httpstats.App{Namespace: ns, Name: name}]
	require.NotNil(h.t, a)
	return a
}

type answer struct {
	code int
	body string
}

// getAsync sends a GET and returns where its answer comes.
func (h *harness) getAsync(host, path string) <-chan answer {
	done := make(chan answer, 1)
	go func() {
		res, body := h.get(host, path)
		done <- answer{res.StatusCode, body}
	}()
	return done
}

// notYet fails if done already has an answer.
func notYet(t *testing.T, done <-chan answer, why string) {
	t.Helper()
	select {
	case a := <-done:
		t.Fatalf("answered %d %q %s", a.code, a.body, why)
	default:
	}
}

func TestRefusedGETIsHeldUntilTheSliceListsAServingPod(t *testing.T) {
	h := newHarness(t)
	h.refusingApp(t, "web-x")

	done := h.getAsync("web", "/")
	// Refused by the only pod: held as at zero, not answered 502.
	h.awaitHold("ns", "web")
	notYet(t, done, "while its only pod is quarantined")
	a := h.appOf("ns", "web")
	a.mu.Lock()
	require.Len(t, a.backends, 1)
	assert.True(t, a.backends[0].quarantined)
	assert.Zero(t, a.backends[0].inFlight.Load(), "a held request is not counted on the pod that refused it")
	a.mu.Unlock()

	// The slice replaces the pod with one that serves.
	_, err := h.client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(),
		backendSlice("ns", "web-x", "web", named(t, "new-pod")), metav1.UpdateOptions{})
	require.NoError(t, err)
	got := <-done
	assert.Equal(t, http.StatusOK, got.code)
	assert.Equal(t, "new-pod", got.body)
}

func TestRefusedGETIsSentAgainWhenThePodListensAfterItsQuarantine(t *testing.T) {
	h := newHarness(t)
	port := h.refusingApp(t, "web-x")

	done := h.getAsync("web", "/")
	h.awaitHold("ns", "web")
	// The pod starts listening; it is dialed again when its quarantine
	// ends, not before.
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "late-pod") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	h.clock.Step(quarantineFirst - time.Millisecond)
	notYet(t, done, "before the quarantine ended")
	h.clock.Step(time.Millisecond)
	a := <-done
	assert.Equal(t, http.StatusOK, a.code)
	assert.Equal(t, "late-pod", a.body)
}

func TestPodThatKeepsRefusingIs502AfterTheBound(t *testing.T) {
	h := newHarness(t)
	dead := h.refusingApp(t, "web")

	done := h.getAsync("web", "/")
	for i := range maxResends {
		h.awaitHold("ns", "web")
		notYet(t, done, fmt.Sprintf("after %d refusals", i+1))
		// Each refusal in a row doubles the quarantine, up to its bound.
		d := quarantineAfter(i + 1)
		assert.Equal(t, min(quarantineFirst<<i, quarantineFor), d)
		h.clock.Step(d - time.Millisecond)
		notYet(t, done, fmt.Sprintf("before quarantine %d ended", i+1))
		h.clock.Step(time.Millisecond)
	}
	a := <-done
	assert.Equal(t, http.StatusBadGateway, a.code)
	assert.Contains(t, a.body, "app ns/web")
	assert.Contains(t, a.body, fmt.Sprintf("its pod 127.0.0.1:%d failed", dead))
	select {
	case <-h.holds:
		t.Fatal("held again after the last re-send")
	default:
	}
	assert.Contains(t, h.metrics(), `spinscale_activator_requests_total{app="web",code="502",namespace="ns"} 1`)
}

func TestPodThatKeepsRefusingIs503AtTheQueueTimeout(t *testing.T) {
	h := newHarness(t)
	dead := h.refusingApp(t, "web", "http-queue-timeout", "1s")
	// Refused, held; then the slice drops the refusing pod: the request
	// waits for a pod that never comes, and gets a held request's 503.
	done := h.getAsync("web", "/")
	h.awaitHold("ns", "web")
	_, err := h.client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(),
		slice("ns", "web", "web", "http", dead), metav1.UpdateOptions{})
	require.NoError(t, err)
	h.ready("ns", "web", 0)
	h.clock.Step(time.Second)
	a := <-done
	assert.Equal(t, http.StatusServiceUnavailable, a.code)
	assert.Contains(t, a.body, "app ns/web had no ready pod in time")
}

func TestRefusedPOSTIs502AtOnce(t *testing.T) {
	h := newHarness(t)
	dead := h.refusingApp(t, "web")
	// A POST's body is consumed by the failed attempt: it is not sent
	// twice, nor held.
	req, err := http.NewRequest(http.MethodPost, h.proxy+"/", strings.NewReader("order"))
	require.NoError(t, err)
	req.Host = "web"
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
	assert.Contains(t, string(body), "app ns/web")
	assert.Contains(t, string(body), fmt.Sprintf("127.0.0.1:%d", dead))
	select {
	case <-h.holds:
		t.Fatal("a POST was held")
	default:
	}
}

func TestRefusedConnectionIsRetriedOnAnotherPodForGET(t *testing.T) {
	h := newHarness(t)
	h.create(slice("ns", "web-dead", "web", "http", deadPort(t), ep{addr: "127.0.0.1", ready: ptr.To(true)}))
	liveSrv := named(t, "live")
	h.create(backendSlice("ns", "web-live", "web", liveSrv))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 2)
	// Load the live pod by one so that the dead one is picked first.
	a := h.appOf("ns", "web")
	a.mu.Lock()
	var live *backend
	for _, b := range a.backends {
		if b.addr == strings.TrimPrefix(liveSrv.URL, "http://") {
			live = b
		}
	}
	a.mu.Unlock()
	require.NotNil(t, live)
	live.inFlight.Add(1)
	defer live.inFlight.Add(-1)

	res, body := h.get("web", "/")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "live", body)

	// The dead pod is quarantined: though less loaded, it is not picked,
	// and a POST (never re-sent) reaches the live one.
	req, _ := http.NewRequest(http.MethodPost, h.proxy+"/", strings.NewReader("order"))
	req.Host = "web"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "live", string(got))
}

// deadPort is a loopback port nothing listens on.
func deadPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func TestGarbageRequestIs400(t *testing.T) {
	h := newHarness(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.proxy, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(waitLimit)))
	fmt.Fprint(conn, "THIS IS NOT HTTP\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
}

func TestGracefulDrain(t *testing.T) {
	h := newHarness(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		fmt.Fprint(w, "finished")
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "web", "web", backend))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 1)
	assert.Equal(t, http.StatusOK, h.status("/readyz"))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, body := h.get("web", "/")
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "finished", body, "the request in flight finishes during the drain")
	}()
	<-arrived
	h.cancel() // SIGTERM
	<-h.drain
	assert.Equal(t, http.StatusServiceUnavailable, h.status("/readyz"))
	select {
	case <-h.served:
		t.Fatal("Serve returned with a request in flight")
	default:
	}
	close(release)
	wg.Wait()
	require.NoError(t, <-h.served)
	h.served <- nil // for the cleanup
	_, err := net.Dial("tcp", strings.TrimPrefix(h.proxy, "http://"))
	assert.Error(t, err, "the proxy no longer accepts")
}

// status GETs an admin path.
func (h *harness) status(path string) int {
	h.t.Helper()
	res, err := http.Get(h.admin + path)
	require.NoError(h.t, err)
	res.Body.Close()
	return res.StatusCode
}

func (h *harness) metrics() string {
	h.t.Helper()
	res, err := http.Get(h.admin + "/metrics")
	require.NoError(h.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(h.t, err)
	return string(b)
}

// A request held when the drain starts still gets its pod if one turns
// ready within the drain.
func TestDrainWaitsForHeldRequests(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle"))
	h.routed("idle", "/", "ns", "idle")
	done := make(chan string, 1)
	go func() { _, body := h.get("idle", "/"); done <- body }()
	h.awaitHold("ns", "idle")
	h.cancel() // SIGTERM
	<-h.drain
	assert.Equal(t, http.StatusServiceUnavailable, h.status("/readyz"))
	h.create(backendSlice("ns", "idle", "idle", named(t, "woken")))
	assert.Equal(t, "woken", <-done)
	require.NoError(t, <-h.served)
	h.served <- nil // for the cleanup
}

// refusingApp routes host "web" to the app ns/web whose only ready pod, in
// the EndpointSlice named sliceName, refuses connections; it returns that
// pod's port. ann are further annotations of the app.
func (h *harness) refusingApp(t *testing.T, sliceName string, ann ...string) int {
	t.Helper()
	port := deadPort(t)
	h.create(slice("ns", sliceName, "web", "http", port, ep{addr: "127.0.0.1", ready: ptr.To(true)}))
	h.create(deployment("ns", "web", epoch, append([]string{"http-hosts", "web"}, ann...)...))
	h.ready("ns", "web", 1)
	return port
}

func TestQuarantineStartsShortAgainAfterAQuietSpell(t *testing.T) {
	clk := clocktesting.NewFakeClock(epoch)
	var after []time.Duration
	h := &holder{
		now: clk.Now,
		afterFunc: func(d time.Duration, f func()) clock.Timer {
			after = append(after, d)
			return clk.AfterFunc(d, f)
		},
	}
	a := newApp(httpstats.App{Namespace: "ns", Name: "web"}, epoch)
	b := &backend{addr: "127.0.0.1:1"}
	a.backends = []*backend{b}
	refuse := func() {
		a.quarantine(b, h)
		a.release(b)
	}
	refuse()
	clk.Step(quarantineFirst)
	refuse()
	clk.Step(2 * quarantineFirst)
	refuse()
	// Quiet for longer than the longest quarantine: the next refusal is
	// a new episode.
	clk.Step(quarantineFor + 4*quarantineFirst + time.Millisecond)
	refuse()
	assert.Equal(t, []time.Duration{quarantineFirst, 2 * quarantineFirst, 4 * quarantineFirst, quarantineFirst}, after)
	assert.Equal(t, quarantineFor, quarantineAfter(100), "the quarantine is bounded")
}

// TestContentEncodingIsTheClients: the activator asks the pod for no
// encoding the client did not ask for, and passes a compressed answer on
// as it came, undecoded.
func TestContentEncodingIsTheClients(t *testing.T) {
	h := newHarness(t)
	seen := make(chan string, 2)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Accept-Encoding")
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write([]byte("compressed"))
			_ = zw.Close()
			return
		}
		_, _ = w.Write([]byte("plain"))
	}))
	t.Cleanup(backend.Close)
	h.create(backendSlice("ns", "web", "web", backend))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web.example.com"))
	h.ready("ns", "web", 1)

	// A client that asks for no encoding (curl, a load balancer's check).
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodGet, h.proxy+"/", nil)
	req.Host = "web.example.com"
	res, err := tr.RoundTrip(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	res.Body.Close()
	assert.Empty(t, received(t, seen), "no Accept-Encoding added on the way")
	assert.Equal(t, "plain", string(body))

	req, _ = http.NewRequest(http.MethodGet, h.proxy+"/", nil)
	req.Host = "web.example.com"
	req.Header.Set("Accept-Encoding", "gzip")
	res, err = tr.RoundTrip(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "gzip", received(t, seen))
	assert.Equal(t, "gzip", res.Header.Get("Content-Encoding"), "passed on compressed")
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, "compressed", string(plain))
}

// received is what the backend saw, failing the test if the request never
// reached it.
func received(t *testing.T, seen <-chan string) string {
	t.Helper()
	select {
	case v := <-seen:
		return v
	case <-time.After(waitLimit):
		t.Fatal("the request did not reach the pod")
		return ""
	}
}
