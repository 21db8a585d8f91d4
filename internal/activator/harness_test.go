package activator

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/httpstats"
)

// waitLimit bounds every wait of these tests for an event that must come.
const waitLimit = 10 * time.Second

var epoch = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// harness is an Activator serving on loopback, fed by informers on a fake
// clientset, on a fake clock.
type harness struct {
	t       *testing.T
	client  *fake.Clientset
	x       *Activator
	clock   *clocktesting.FakeClock
	proxy   string // http://127.0.0.1:port
	admin   string
	holds   chan httpstats.App
	changed chan struct{}
	drain   chan struct{}
	cancel  context.CancelFunc
	served  chan error
}

type harnessOption func(*Options)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts...)
}

// newHarnessWith starts with objs already in the API.
func newHarnessWith(t *testing.T, objs []runtime.Object, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{
		t: t, client: fake.NewClientset(objs...), clock: clocktesting.NewFakeClock(epoch),
		holds: make(chan httpstats.App, 1000), changed: make(chan struct{}, 1), drain: make(chan struct{}), served: make(chan error, 1),
	}
	o := Options{
		Name: "activator-0", Logger: zap.NewNop(), Clock: h.clock, QueueTimeout: 30 * time.Second,
		onHold:  func(a httpstats.App) { h.holds <- a },
		onDrain: func() { close(h.drain) },
		onTableChange: func() {
			select {
			case h.changed <- struct{}{}:
			default:
			}
		},
	}
	for _, f := range opts {
		f(&o)
	}
	x, err := New(o)
	require.NoError(t, err)
	h.x = x
	// As the command does: the informers outlive the drain.
	informers, stopInformers := context.WithCancel(context.Background())
	t.Cleanup(stopInformers)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	require.NoError(t, x.Start(informers, h.client, nil, waitLimit))
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h.proxy, h.admin = "http://"+proxyLn.Addr().String(), "http://"+adminLn.Addr().String()
	go func() { h.served <- x.Serve(ctx, proxyLn, adminLn, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.served:
			require.NoError(t, err)
		case <-time.After(waitLimit):
			t.Error("Serve did not return")
		}
	})
	return h
}

// waitUntil waits for cond, re-checked at each change of the table.
func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(waitLimit)
	for !cond() {
		select {
		case <-h.changed:
		case <-deadline:
			h.t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// routed waits until host and path reach the app ns/name.
func (h *harness) routed(host, path, ns, name string) {
	h.t.Helper()
	h.waitUntil(fmt.Sprintf("%s%s routes to %s/%s", host, path, ns, name), func() bool {
		a, _ := h.x.table.lookup(host, path)
		return a != nil && a.key == httpstats.App{Namespace: ns, Name: name}
	})
}

// readyCount waits until the app has n ready backends.
func (h *harness) ready(ns, name string, n int) {
	h.t.Helper()
	h.waitUntil(fmt.Sprintf("%s/%s has %d ready endpoints", ns, name, n), func() bool {
		h.x.table.mu.Lock()
		a := h.x.table.apps[httpstats.App{Namespace: ns, Name: name}]
		h.x.table.mu.Unlock()
		return a != nil && a.readyCount() == n
	})
}

func (h *harness) create(obj any) {
	h.t.Helper()
	ctx := context.Background()
	var err error
	switch o := obj.(type) {
	case *appsv1.Deployment:
		_, err = h.client.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = h.client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		h.t.Fatalf("cannot create %T", obj)
	}
	require.NoError(h.t, err)
}

// awaitHold waits until a request is held for the app.
func (h *harness) awaitHold(ns, name string) {
	h.t.Helper()
	select {
	case a := <-h.holds:
		require.Equal(h.t, httpstats.App{Namespace: ns, Name: name}, a)
	case <-time.After(waitLimit):
		h.t.Fatalf("no request held for %s/%s", ns, name)
	}
}

// get sends a request for host and path to the proxy.
func (h *harness) get(host, path string) (*http.Response, string) {
	h.t.Helper()
	return h.do(context.Background(), host, path)
}

func (h *harness) do(ctx context.Context, host, path string) (*http.Response, string) {
	// Called from other goroutines too: fail without FailNow, which would
	// leave the test waiting for an answer.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.proxy+path, nil)
	if err != nil {
		h.t.Errorf("request %s%s: %v", host, path, err)
		return &http.Response{Header: http.Header{}}, ""
	}
	req.Host = host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Errorf("GET %s%s: %v", host, path, err)
		return &http.Response{Header: http.Header{}}, ""
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Errorf("GET %s%s: read the body: %v", host, path, err)
	}
	return res, string(body)
}

// deployment is a routed Deployment created at created.
func deployment(ns, name string, created time.Time, kv ...string) *appsv1.Deployment {
	ann := map[string]string{annotations.KeyEnabled: "true"}
	for i := 0; i+1 < len(kv); i += 2 {
		ann[annotations.Prefix+kv[i]] = kv[i+1]
	}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name, Annotations: ann, CreationTimestamp: metav1.NewTime(created),
	}}
}

// ep is one endpoint of a slice.
type ep struct {
	addr        string
	ready       *bool
	terminating bool
}

// slice is an EndpointSlice of service with one port.
func slice(ns, name, service string, portName string, port int, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(int32(port))}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Terminating: ptr.To(e.terminating)},
		})
	}
	return s
}

// backendSlice is a slice listing srv (on 127.0.0.1) as a ready endpoint.
func backendSlice(ns, name, service string, srv *httptest.Server) *discoveryv1.EndpointSlice {
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	return slice(ns, name, service, "http", port, ep{addr: u.Hostname(), ready: ptr.To(true)})
}

// named is a backend that answers its name.
func named(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}
