package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spinscale/spinscale/internal/httpstats"
	"github.com/spinscale/spinscale/internal/podserve"
)

// The activator's tests run real HTTP through real EndpointSlices: kwok
// gives the pods addresses in 10.244.0.0/16, kube-controller-manager's
// EndpointSlice controller publishes the Ready ones for the app's Service,
// the activator (`autoscaler activator`, the real binary) rewrites them to
// loopback with --endpoint-address-map, and podserve answers on each Ready
// pod's loopback address. Each test process maps to a /16 of its own, so
// parallel runs never bind the same addresses.
var podAddressMap = fmt.Sprintf("10.244.0.0/16=127.%d.0.0/16", 100+os.Getpid()%150)

// backendPort is the port the pods serve HTTP on: the Service's targetPort.
const backendPort = 8080

// startupAnnotation gives a kwok pod a start-up time before it turns Ready
// (hack/cluster/up.sh).
const startupAnnotation = "pod-ready.stage.kwok.x-k8s.io/delay"

// httpApp creates an HTTP app: a spin-operator style Deployment routed by
// the activator under the host <app>.<ns>.test, whose pods take startup to
// turn Ready, and its Service with the port named http.
func httpApp(t *testing.T, ns, app string, replicas int32, startup time.Duration, ann map[string]string) string {
	t.Helper()
	host := app + "." + ns + ".test"
	all := map[string]string{"spinscale.dev/enabled": "true", "spinscale.dev/http-hosts": host}
	for k, v := range ann {
		all[k] = v
	}
	d := spinDeployment(ns, app, replicas, all)
	if startup > 0 {
		d.Spec.Template.Annotations = map[string]string{startupAnnotation: startup.String()}
	}
	createDeployment(t, d)
	_, err := cluster.client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: corev1.ServiceSpec{Selector: d.Spec.Selector.MatchLabels, Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(backendPort)}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return host
}

// servePods answers HTTP for the app's Ready pods until the test ends.
func servePods(t *testing.T, ns, app string, latency time.Duration) *podserve.Server {
	t.Helper()
	m, err := podserve.ParseAddressMap(podAddressMap)
	require.NoError(t, err)
	s, err := podserve.New(cluster.client, podserve.Config{Namespace: ns, Selector: "core.spinkube.dev/app-name=" + app,
		Map: m, Port: backendPort, Latency: latency})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return s
}

// waitServed waits until n pods of the app are served.
func waitServed(t *testing.T, s *podserve.Server, n int, timeout time.Duration) []podserve.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	require.NoError(t, s.WaitFor(ctx, func(p []podserve.Pod) bool { return len(p) == n }))
	return s.Pods()
}

// activator is a running `autoscaler activator`.
type activator struct {
	*proc
	url, admin string // http://127.0.0.1:PORT of the proxy and of the admin port
}

// startActivator runs `autoscaler activator` for the namespace on ports of
// its own, mapping pod addresses onto loopback, and waits until it is
// ready (/readyz: its informer caches synced).
func startActivator(t *testing.T, ns, name string, args ...string) *activator {
	t.Helper()
	listen, admin := freePort(t), freePort(t)
	base := []string{"activator", "--kubeconfig", cluster.kubeconfig, "--namespaces", ns, "--name", name,
		"--listen", fmt.Sprintf("127.0.0.1:%d", listen), "--admin-listen", fmt.Sprintf("127.0.0.1:%d", admin),
		"--endpoint-address-map", podAddressMap}
	p := &proc{cmd: exec.Command(cluster.autoscaler, append(base, args...)...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	a := &activator{proc: p, url: fmt.Sprintf("http://127.0.0.1:%d", listen), admin: fmt.Sprintf("http://127.0.0.1:%d", admin)}
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop()
		}
		if t.Failed() {
			t.Logf("activator %s output:\n%s", name, p.output())
		}
	})
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case <-p.exited:
			return false, fmt.Errorf("activator %s exited: %s", name, p.output())
		default:
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.admin+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	require.NoError(t, err, "activator %s never turned ready", name)
	return a
}

// result is one request's outcome through an activator.
type result struct {
	status int
	pod    string // the pod that answered
	err    error
	took   time.Duration
	done   time.Time
}

// client sends requests for one host through activators.
var client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}

func send(ctx context.Context, base, host, path string) result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return result{err: err}
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start), done: time.Now()}
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return result{status: resp.StatusCode, pod: resp.Header.Get(podserve.PodHeader), err: err, took: time.Since(start), done: time.Now()}
}

// sendAsync sends n requests at once and returns their results on a channel.
func sendAsync(base, host string, n int) <-chan result {
	out := make(chan result, n)
	for i := range n {
		go func() { out <- send(context.Background(), base, host, fmt.Sprintf("/r/%d", i)) }()
	}
	return out
}

// statsStream reads an activator's stats stream in the background.
type statsStream struct {
	mu      sync.Mutex
	reports []httpstats.Report
}

func readStats(t *testing.T, a *activator) *statsStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.admin+httpstats.StreamPath, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	s := &statsStream{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		dec := httpstats.NewDecoder(bufio.NewReader(resp.Body))
		for {
			r, err := dec.Decode()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.reports = append(s.reports, r)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return s
}

// find returns the reports of a kind that name the app, oldest first.
func (s *statsStream) find(kind httpstats.Kind, ns, app string) []httpstats.AppStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []httpstats.AppStats
	for _, r := range s.reports {
		if r.Kind != kind {
			continue
		}
		for _, a := range r.Apps {
			if a.Namespace == ns && a.Name == app {
				out = append(out, a)
			}
		}
	}
	return out
}

// httpScaling are the annotations of an app scaled on in-flight requests
// with short windows.
func httpScaling(minR, maxR int, target string, extra ...string) map[string]string {
	ann := map[string]string{
		"spinscale.dev/min-replicas":             fmt.Sprint(minR),
		"spinscale.dev/max-replicas":             fmt.Sprint(maxR),
		"spinscale.dev/http-target-concurrency":  target,
		"spinscale.dev/http-stable-window":       "6s",
		"spinscale.dev/scale-down-stabilization": "0s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// With no ready pod a request is held, not refused; it is answered by the
// first pod to turn Ready, soon after it does (DESIGN.md: within 100 ms).
// The stats stream reports the held request at once (a wake) and in its
// ticks. No controller runs: the test scales the Deployment by hand.
func TestActivatorHoldsARequestUntilAPodIsReady(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	host := httpApp(t, ns, "web", 0, 2*time.Second, nil)
	pods := servePods(t, ns, "web", 0)
	a := startActivator(t, ns, "activator-0", "--queue-timeout", "30s")
	stats := readStats(t, a)

	results := sendAsync(a.url, host, 1)
	select {
	case r := <-results:
		t.Fatalf("answered with no pod: %d %v", r.status, r.err)
	case <-time.After(time.Second):
	}
	require.Eventually(t, func() bool { return len(stats.find(httpstats.KindWake, ns, "web")) > 0 }, 5*time.Second, 50*time.Millisecond,
		"a request held for an app with no ready pod is reported at once")
	wake := stats.find(httpstats.KindWake, ns, "web")[0]
	assert.Equal(t, int64(1), wake.Held)
	assert.Equal(t, 0, wake.Endpoints)

	scale, err := cluster.client.AppsV1().Deployments(ns).GetScale(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	scale.Spec.Replicas = 1
	_, err = cluster.client.AppsV1().Deployments(ns).UpdateScale(context.Background(), "web", scale, metav1.UpdateOptions{})
	require.NoError(t, err)

	var r result
	select {
	case r = <-results:
	case <-time.After(30 * time.Second):
		t.Fatal("the held request was not answered within 30 s of the scale-up")
	}
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status)
	served := pods.Pods()
	require.Len(t, served, 1)
	assert.Equal(t, served[0].Name, r.pod)
	afterReady := r.done.Sub(served[0].ReadyAt)
	t.Logf("held %s in all; answered %s after its pod turned Ready (2 s start-up)", r.took.Round(time.Millisecond), afterReady.Round(time.Millisecond))
	assert.GreaterOrEqual(t, r.took, 3*time.Second, "held through the wait and the pod's start-up")
	assert.Less(t, afterReady, time.Second, "the held request goes to the pod as soon as its EndpointSlice says it is ready")
}

// A full queue answers 503 at once; a held request that waits past the
// queue timeout is answered 503 too. The app's annotations set both.
func TestActivatorQueueOverflowAndTimeoutAnswer503(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	host := httpApp(t, ns, "web", 0, 0, map[string]string{
		"spinscale.dev/http-queue-size": "2", "spinscale.dev/http-queue-timeout": "3s"})
	a := startActivator(t, ns, "activator-0")
	stats := readStats(t, a)

	held := sendAsync(a.url, host, 2)
	require.Eventually(t, func() bool {
		for _, s := range stats.find(httpstats.KindTick, ns, "web") {
			if s.Held == 2 {
				return true
			}
		}
		return false
	}, 5*time.Second, 50*time.Millisecond, "the activator reports both requests held")
	r := send(context.Background(), a.url, host, "/overflow")
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusServiceUnavailable, r.status, "a request over the queue size")
	assert.Less(t, r.took, time.Second, "is refused at once")
	for range 2 {
		select {
		case r := <-held:
			require.NoError(t, r.err)
			assert.Equal(t, http.StatusServiceUnavailable, r.status, "a held request past its queue timeout")
			assert.GreaterOrEqual(t, r.took, 3*time.Second)
			assert.Less(t, r.took, 10*time.Second)
		case <-time.After(15 * time.Second):
			t.Fatal("a held request was never answered")
		}
	}
}

// An app at one pod with no traffic goes to zero once its stable window
// saw nothing; the first request at zero wakes it, is held while its pod
// starts (2 s), and is answered: nothing is lost. After the traffic stops
// it goes back to zero.
func TestActivatorScaleToZeroAndFromZeroOnTheFirstRequest(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	host := httpApp(t, ns, "web", 1, 2*time.Second, httpScaling(0, 3, "1", "spinscale.dev/scale-to-zero-after", "2s"))
	pods := servePods(t, ns, "web", 0)
	a := startActivator(t, ns, "activator-0", "--queue-timeout", "60s")
	startAutoscaler(t, ns, "--set", "profile=default", "--set", "activator.addresses="+a.admin)

	took := waitReplicas(t, ns, "web", time.Minute, "to zero with no request", func(r int32) bool { return r == 0 })
	t.Logf("1 → 0 in %s with no request", took.Round(time.Second))
	waitServed(t, pods, 0, 30*time.Second)

	const n = 5
	start := time.Now()
	results := sendAsync(a.url, host, n)
	var answered []result
	for range n {
		select {
		case r := <-results:
			answered = append(answered, r)
		case <-time.After(time.Minute):
			t.Fatalf("only %d of %d requests answered within a minute of the first at zero", len(answered), n)
		}
	}
	served := pods.Pods()
	require.NotEmpty(t, served)
	var firstReady time.Time
	for _, p := range served {
		if firstReady.IsZero() || p.ReadyAt.Before(firstReady) {
			firstReady = p.ReadyAt
		}
	}
	for _, r := range answered {
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.status, "every request held at zero is answered by a pod")
		assert.NotEmpty(t, r.pod)
	}
	last := answered[n-1].done
	t.Logf("first request at zero → all %d answered in %s; first pod Ready %s after the first request, the last answer %s after it",
		n, last.Sub(start).Round(time.Millisecond), firstReady.Sub(start).Round(time.Millisecond), last.Sub(firstReady).Round(time.Millisecond))
	assert.Less(t, last.Sub(firstReady), time.Second)
	assert.Equal(t, int64(n), pods.Served(), "each request reached a pod once")

	took = waitReplicas(t, ns, "web", time.Minute, "back to zero once the requests stop", func(r int32) bool { return r == 0 })
	t.Logf("back to zero %s after the last answer", took.Round(time.Second))
}

// A burst of slow requests (1 s each, 12 at a time) against a target of 2
// in flight per pod scales the app up within seconds (the panic window),
// as far as the scale-up policy allows at once (1 → 5), then to
// ceil(12 / 2) = 6; every request is answered.
func TestActivatorBurstScalesOnInFlightRequests(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	host := httpApp(t, ns, "web", 1, 0, httpScaling(1, 10, "2"))
	pods := servePods(t, ns, "web", time.Second)
	a := startActivator(t, ns, "activator-0")
	waitServed(t, pods, 1, 30*time.Second)
	startAutoscaler(t, ns, "--set", "profile=default", "--set", "activator.addresses="+a.admin)

	const workers = 12
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < 40 && ctx.Err() == nil; i++ {
				r := send(ctx, a.url, host, fmt.Sprintf("/w%d/%d", w, i))
				switch {
				case ctx.Err() != nil:
				case r.err == nil && r.status == http.StatusOK:
					ok.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	start := time.Now()
	first := waitReplicas(t, ns, "web", 15*time.Second, "a scale-up on the burst", func(r int32) bool { return r > 1 })
	t.Logf("1 → %d %s into the burst", replicas(t, ns, "web"), first.Round(time.Millisecond))
	assert.Less(t, first, 6*time.Second, "the panic window reacts within seconds")
	took := waitReplicas(t, ns, "web", 35*time.Second, "ceil(12 in flight / 2) = 6", func(r int32) bool { return r >= 6 })
	t.Logf("%d replicas %s into the burst", replicas(t, ns, "web"), (first + took).Round(time.Second))
	assert.LessOrEqual(t, replicas(t, ns, "web"), int32(7), "12 in flight at 2 per pod")
	for _, e := range spinscaleEvents(t, ns, "web") {
		t.Logf("event %s: %s", e.Reason, e.Message)
	}
	cancel()
	wg.Wait()
	t.Logf("%d requests answered, %d failed, in %s", ok.Load(), failed.Load(), time.Since(start).Round(time.Second))
	assert.Zero(t, failed.Load())
	assert.Greater(t, ok.Load(), int64(workers))
}

// Two activators share the traffic of four clients; one is killed
// mid-traffic. A request it dropped is retried once on the other, which
// serves every request from then on: no request fails on both.
func TestActivatorReplicaKilledMidTraffic(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	host := httpApp(t, ns, "web", 2, 0, nil)
	pods := servePods(t, ns, "web", 20*time.Millisecond)
	waitServed(t, pods, 2, 30*time.Second)
	acts := []*activator{startActivator(t, ns, "activator-0"), startActivator(t, ns, "activator-1")}

	const clients, each = 4, 100
	var sent, okFirst, retried, lost, afterKill atomic.Int64
	var killed atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := 0; i < each && ctx.Err() == nil; i++ {
				if sent.Add(1) == clients*each/2 {
					acts[0].kill()
					killed.Store(true)
				}
				wasKilled := killed.Load()
				path := fmt.Sprintf("/c%d/%d", c, i)
				first := (c + i) % 2 // the clients alternate between the replicas
				r := send(ctx, acts[first].url, host, path)
				if r.err != nil || r.status != http.StatusOK {
					r = send(ctx, acts[1-first].url, host, path)
					if r.err != nil || r.status != http.StatusOK {
						lost.Add(1)
						t.Logf("%s failed on both activators: %d %v", path, r.status, r.err)
						continue
					}
					retried.Add(1)
				} else {
					okFirst.Add(1)
				}
				if wasKilled && first == 0 && r.pod != "" {
					afterKill.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d answered by the first activator tried, %d after a retry on the other, %d lost; %d sent to the killed one after the kill",
		okFirst.Load(), retried.Load(), lost.Load(), afterKill.Load())
	require.True(t, killed.Load(), "the clients reached the kill")
	assert.Zero(t, lost.Load())
	assert.Equal(t, int64(clients*each), okFirst.Load()+retried.Load())
	assert.GreaterOrEqual(t, retried.Load(), afterKill.Load(), "whatever went to the killed activator was retried on the other")
	assert.Positive(t, afterKill.Load())
	// A request in flight at the kill may have reached a pod and been
	// retried, so a pod can see a few more than were sent.
	assert.GreaterOrEqual(t, pods.Served(), int64(clients*each))
	assert.LessOrEqual(t, pods.Served(), int64(clients*each+clients))
	for _, p := range pods.Pods() {
		assert.Positive(t, p.Served, "both pods got traffic")
	}
	select {
	case <-acts[1].exited:
		t.Fatal("the surviving activator exited")
	default:
	}
}

// The path the activator relies on, without it: kwok marks the pods Ready
// after their start-up time, the EndpointSlice controller publishes their
// 10.244 addresses under the Service's port named http, and podserve
// answers on each address mapped onto loopback, as the activator dials it.
func TestEndpointSliceAddressesAnswerOnLoopback(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	httpApp(t, ns, "web", 2, time.Second, nil)
	pods := servePods(t, ns, "web", 0)
	served := waitServed(t, pods, 2, 30*time.Second)
	m, err := podserve.ParseAddressMap(podAddressMap)
	require.NoError(t, err)

	var published time.Time
	var ready map[string]bool
	seen := map[string]time.Time{} // when each address was first listed ready
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		slices, err := cluster.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, nil
		}
		ready = map[string]bool{}
		for _, s := range slices.Items {
			if len(s.Endpoints) == 0 {
				continue // a slice with no endpoint has no port either
			}
			require.Len(t, s.Ports, 1)
			assert.Equal(t, "http", *s.Ports[0].Name)
			assert.Equal(t, int32(backendPort), *s.Ports[0].Port)
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready[e.Addresses[0]] = true
					if _, ok := seen[e.Addresses[0]]; !ok {
						seen[e.Addresses[0]] = time.Now()
					}
				}
			}
		}
		published = time.Now()
		return len(ready) == 2, nil
	})
	require.NoError(t, err, "the EndpointSlices never listed both pods ready")
	last := served[0].ReadyAt
	for _, p := range served {
		if p.ReadyAt.After(last) {
			last = p.ReadyAt
		}
	}
	t.Logf("both endpoints ready in the slices %s after the second pod was seen Ready", published.Sub(last).Round(time.Millisecond))
	assert.Less(t, published.Sub(last), 2*time.Second)

	for _, p := range served {
		require.True(t, ready[p.IP], "pod %s (%s) is in the slices", p.Name, p.IP)
		t.Logf("pod %s ready in the slices %s after it was seen Ready", p.Name, seen[p.IP].Sub(p.ReadyAt).Round(time.Millisecond))
		ip, ok := m.Map(p.IP)
		require.True(t, ok)
		r := send(context.Background(), fmt.Sprintf("http://%s:%d", ip, backendPort), "web", "/direct")
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, p.Name, r.pod)
	}
}
