package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/spinscale/spinscale/bench/internal/localcluster"
	"github.com/spinscale/spinscale/bench/internal/procstat"
	"github.com/spinscale/spinscale/internal/httpstats"
	"github.com/spinscale/spinscale/internal/podserve"
)

// Namespaces: the proxy parts run without the controller, the scaling
// parts with it, limited to its own namespace.
const (
	proxyNS = "bench"
	scaleNS = "bench-scale"
)

// bench holds what the parts share: the cluster, the activator, the apps.
type bench struct {
	o         options
	c         *localcluster.Cluster
	ctx       context.Context
	cancel    context.CancelFunc
	activator *process
	url       string // the proxy, http://127.0.0.1:PORT
	admin     string // the admin port
	web, idle app
	webPods   *podserve.Server

	controller *process
	// relay is part a's floor (relay.go).
	relay *process
}

// newBench creates the proxy parts' apps, serves their pods and starts the
// activator for both namespaces.
func newBench(ctx context.Context, o options, c *localcluster.Cluster) (*bench, error) {
	b := &bench{o: o, c: c}
	b.ctx, b.cancel = context.WithCancel(ctx)
	for _, ns := range []string{proxyNS, scaleNS} {
		if err := createNamespace(ctx, c.Client, ns); err != nil {
			return b, err
		}
	}
	var err error
	// web: one pod that answers at once. idle: no pod, and room for every
	// held request for the longest queue timeout.
	if b.web, err = createApp(ctx, c.Client, proxyNS, "web", 1, 0, nil); err != nil {
		return b, err
	}
	if b.idle, err = createApp(ctx, c.Client, proxyNS, "idle", 0, 0, map[string]string{
		"spinscale.dev/http-queue-size": "100000", "spinscale.dev/http-queue-timeout": "10m"}); err != nil {
		return b, err
	}
	if b.webPods, err = servePods(b.ctx, c.Client, b.web, o.addressMap, 0); err != nil {
		return b, err
	}
	if err := waitServed(ctx, b.webPods, 30*time.Second, func(p []podserve.Pod) bool { return len(p) == 1 }); err != nil {
		return b, fmt.Errorf("the web pod never turned Ready: %w", err)
	}
	listen, err := procstat.FreePort()
	if err != nil {
		return b, err
	}
	admin, err := procstat.FreePort()
	if err != nil {
		return b, err
	}
	b.url, b.admin = fmt.Sprintf("http://127.0.0.1:%d", listen), fmt.Sprintf("http://127.0.0.1:%d", admin)
	logf("starting the activator on %s (admin %s)", b.url, b.admin)
	b.activator, err = startProcess("activator", filepath.Join(o.dir, "activator.log"), o.autoscaler, "activator",
		"--kubeconfig", c.Kubeconfig(), "--namespaces", proxyNS+","+scaleNS, "--name", "bench-activator",
		"--listen", fmt.Sprintf("127.0.0.1:%d", listen), "--admin-listen", fmt.Sprintf("127.0.0.1:%d", admin),
		"--endpoint-address-map", o.addressMap.String(), "--log-level", "warn")
	if err != nil {
		return b, err
	}
	if err := waitHTTP(ctx, b.activator, b.admin+"/readyz", 30*time.Second); err != nil {
		return b, err
	}
	// Until its slice is read, web may not be routed to its pod yet.
	client := newClient(1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, err := get(ctx, client, b.url, b.web.host, "/ready")
		if err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("the activator never answered for web: %d %v", status, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b, nil
}

func (b *bench) close() {
	if b.relay != nil {
		b.relay.stop()
	}
	if b.controller != nil {
		b.controller.stop()
	}
	if b.activator != nil {
		b.activator.stop()
	}
	b.cancel()
}

// latency is part a: runs of the open loop one after the other, each
// with the activator and then with the relay in its place.
func (b *bench) latency(ctx context.Context, rep *report) error {
	pods := b.webPods.Pods()
	if len(pods) != 1 {
		return fmt.Errorf("web has %d served pods, want 1", len(pods))
	}
	relayURL, err := b.startRelay(ctx, pods[0].Addr)
	if err != nil {
		return err
	}
	direct := target{name: "straight to the pod", base: "http://" + pods[0].Addr, host: b.web.host}
	proxied := target{name: "through the activator", base: b.url, host: b.web.host}
	relayed := target{name: "through the relay", base: relayURL, host: b.web.host}
	for run := range b.o.runs {
		logf("a: run %d of %d: %d req/s to each path for %s", run+1, b.o.runs, b.o.rate, b.o.latencyFor)
		cpu0, err := procstat.CPUTime(b.activator.pid())
		if err != nil {
			return err
		}
		res, err := openLoop(ctx, newClient(1000), []target{direct, proxied}, b.o.rate, b.o.warm, b.o.latencyFor, 5000)
		if err != nil {
			return err
		}
		cpu1, err := procstat.CPUTime(b.activator.pid())
		if err != nil {
			return err
		}
		logf("a: run %d of %d, the floor: the same through the relay", run+1, b.o.runs)
		floor, err := openLoop(ctx, newClient(1000), []target{direct, relayed}, b.o.rate, b.o.warm, b.o.latencyFor, 5000)
		if err != nil {
			return err
		}
		rep.latency = append(rep.latency, latencyResult{direct: res[0], proxied: res[1], rate: b.o.rate, for_: b.o.latencyFor,
			cpu: cpu1 - cpu0, relayDirect: floor[0], relayed: floor[1]})
	}
	return nil
}

// startRelay runs the relay to the pod at addr in its own process and
// returns its URL.
func (b *bench) startRelay(ctx context.Context, addr string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	port, err := procstat.FreePort()
	if err != nil {
		return "", err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	if b.relay, err = startProcess("relay", filepath.Join(b.o.dir, "relay.log"), exe, "-relay-listen", listen, "-relay-to", addr); err != nil {
		return "", err
	}
	url := "http://" + listen
	client := newClient(1)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, err := get(ctx, client, url, b.web.host, "/ready")
		if err == nil && status == http.StatusOK {
			return url, nil
		}
		if ferr := b.relay.failed(); ferr != nil {
			return "", ferr
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the relay never answered: %d %v", status, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// throughput is part b: runs closed loops one after the other.
func (b *bench) throughput(ctx context.Context, rep *report) error {
	for run := range b.o.runs {
		logf("b: run %d of %d: %d clients in a closed loop for %s", run+1, b.o.runs, b.o.workers, b.o.throughputFor)
		pid := b.activator.pid()
		cpu0, err := procstat.CPUTime(pid)
		if err != nil {
			return err
		}
		self0, _ := procstat.CPUTime(selfPid())
		start := time.Now()
		ok, failed := closedLoop(ctx, newClient(b.o.workers), target{base: b.url, host: b.web.host}, b.o.workers, b.o.throughputFor, b.o.maxThroughputRequests)
		wall := time.Since(start)
		cpu1, err := procstat.CPUTime(pid)
		if err != nil {
			return err
		}
		self1, _ := procstat.CPUTime(selfPid())
		rep.throughput = append(rep.throughput, throughputResult{ok: ok, failed: failed, wall: wall, cpu: cpu1 - cpu0, benchCPU: self1 - self0, workers: b.o.workers})
	}
	return nil
}

// heldMemory is part c.
func (b *bench) heldMemory(ctx context.Context, rep *report) error {
	pid := b.activator.pid()
	stats, err := openStats(ctx, b.admin)
	if err != nil {
		return err
	}
	defer stats.close()
	time.Sleep(2 * time.Second) // let the start-up garbage settle
	before, err := procstat.RSS(pid)
	if err != nil {
		return err
	}
	logf("c: holding %d requests for an app with no pod (RSS before %.1f MiB)", b.o.held, mib(before))
	hctx, release := context.WithCancel(ctx)
	defer release()
	// One connection per held request, as separate clients would open.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unexpected []string
	for i := range b.o.held {
		wg.Go(func() {
			status, err := get(hctx, client, b.url, b.idle.host, fmt.Sprintf("/held/%d", i))
			if hctx.Err() != nil {
				return // released, as intended
			}
			mu.Lock()
			defer mu.Unlock()
			if len(unexpected) < 5 {
				unexpected = append(unexpected, fmt.Sprintf("%d %v", status, err))
			}
		})
	}
	held, err := stats.waitHeld(ctx, b.idle, int64(b.o.held), time.Minute)
	if err != nil {
		release()
		wg.Wait()
		return fmt.Errorf("%w (answered early: %v)", err, unexpected)
	}
	time.Sleep(2 * time.Second)
	after, err := procstat.RSS(pid)
	release()
	wg.Wait()
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(unexpected) > 0 {
		return fmt.Errorf("held requests were answered before their release: %v", unexpected)
	}
	rep.memory = &memoryResult{held: held, before: before, after: after}
	return nil
}

// statsReader follows an activator's stats stream.
type statsReader struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	held   map[httpstats.App]int64 // as of the newest tick
	seen   chan struct{}           // closed and replaced on each tick
	done   chan struct{}
}

func openStats(ctx context.Context, admin string) (*statsReader, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+httpstats.StreamPath, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open the stats stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		_ = resp.Body.Close()
		return nil, fmt.Errorf("open the stats stream: %s", resp.Status)
	}
	s := &statsReader{cancel: cancel, held: map[httpstats.App]int64{}, seen: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer func() { _ = resp.Body.Close() }()
		dec := httpstats.NewDecoder(resp.Body)
		for {
			r, err := dec.Decode()
			if err != nil {
				return
			}
			if r.Kind != httpstats.KindTick {
				continue
			}
			s.mu.Lock()
			clear(s.held)
			for _, a := range r.Apps {
				s.held[a.App] = a.Held
			}
			close(s.seen)
			s.seen = make(chan struct{})
			s.mu.Unlock()
		}
	}()
	return s, nil
}

func (s *statsReader) close() { s.cancel(); <-s.done }

// waitHeld waits for a tick reporting n requests held for the app.
func (s *statsReader) waitHeld(ctx context.Context, a app, n int64, timeout time.Duration) (int64, error) {
	deadline := time.After(timeout)
	key := httpstats.App{Namespace: a.ns, Name: a.name}
	for {
		s.mu.Lock()
		got, ch := s.held[key], s.seen
		s.mu.Unlock()
		if got >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-deadline:
			return got, fmt.Errorf("the activator reported %d of %d requests held after %s", got, n, timeout)
		case <-s.done:
			return got, errors.New("the stats stream ended")
		case <-ch:
		}
	}
}

// startController runs `autoscaler run` for the scaling parts' namespace,
// reading the activator's stats.
func (b *bench) startController(ctx context.Context) error {
	if b.controller != nil {
		return nil
	}
	logf("starting the controller for namespace %s", scaleNS)
	var err error
	b.controller, err = startProcess("controller", filepath.Join(b.o.dir, "controller.log"), b.o.autoscaler, "run",
		"--kubeconfig", b.c.Kubeconfig(), "--set", "namespaces="+scaleNS, "--set", "interval=2s",
		"--set", "leaderElection.enabled=false", "--set", "server.metricsAddress=0", "--set", "server.healthAddress=0",
		"--set", "activator.addresses="+b.admin)
	if err != nil {
		return err
	}
	select {
	case <-b.controller.exited:
		return b.controller.failed()
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// httpScaling are the annotations of an app scaled on in-flight requests
// with the shortest stable window.
func httpScaling(minR, maxR int, target string, extra ...string) map[string]string {
	ann := map[string]string{
		"spinscale.dev/min-replicas": fmt.Sprint(minR), "spinscale.dev/max-replicas": fmt.Sprint(maxR),
		"spinscale.dev/http-target-concurrency": target, "spinscale.dev/http-stable-window": "6s",
		"spinscale.dev/scale-down-stabilization": "0s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// firstAtZero is part d.
func (b *bench) firstAtZero(ctx context.Context, rep *report) error {
	zero, err := createApp(ctx, b.c.Client, scaleNS, "zero", 1, b.o.startup,
		httpScaling(0, 3, "10", "spinscale.dev/scale-to-zero-after", "2s"))
	if err != nil {
		return err
	}
	pods, err := servePods(b.ctx, b.c.Client, zero, b.o.addressMap, 0)
	if err != nil {
		return err
	}
	if err := b.startController(ctx); err != nil {
		return err
	}
	client := newClient(1)
	res := &zeroResult{startup: b.o.startup}
	rep.zero = res
	for run := range b.o.runs {
		logf("d: run %d: waiting for zero", run+1)
		if err := b.waitReplicas(ctx, zero, 2*time.Minute, func(r int32) bool { return r == 0 }); err != nil {
			return err
		}
		if err := waitServed(ctx, pods, time.Minute, func(p []podserve.Pod) bool { return len(p) == 0 }); err != nil {
			return err
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		status, body, err := getBody(rctx, client, b.url, zero.host, "/first")
		cancel()
		done := time.Now()
		if err != nil || status != http.StatusOK {
			// Recorded, and the next run goes on: a failure is a result.
			res.runs = append(res.runs, zeroRun{total: done.Sub(start), failure: fmt.Sprintf("%d %q %v", status, body, err)})
			logf("d: run %d: the first request at zero failed: %d %q %v", run+1, status, body, err)
			continue
		}
		var ready time.Time
		for _, p := range pods.Pods() {
			if ready.IsZero() || p.ReadyAt.Before(ready) {
				ready = p.ReadyAt
			}
		}
		if ready.IsZero() {
			return fmt.Errorf("run %d: answered, but no pod is served", run+1)
		}
		res.runs = append(res.runs, zeroRun{total: done.Sub(start), ready: ready.Sub(start), afterReady: done.Sub(ready)})
		logf("d: run %d: answered %s after the first request, %s after its pod turned Ready",
			run+1, done.Sub(start).Round(time.Millisecond), done.Sub(ready).Round(time.Millisecond))
	}
	return nil
}

// loadStep is part e.
func (b *bench) loadStep(ctx context.Context, rep *report) error {
	step, err := createApp(ctx, b.c.Client, scaleNS, "step", 1, 0, httpScaling(1, 10, "2"))
	if err != nil {
		return err
	}
	pods, err := servePods(b.ctx, b.c.Client, step, b.o.addressMap, b.o.stepLatency)
	if err != nil {
		return err
	}
	if err := waitServed(ctx, pods, 30*time.Second, func(p []podserve.Pod) bool { return len(p) == 1 }); err != nil {
		return err
	}
	if err := b.startController(ctx); err != nil {
		return err
	}
	res := &stepResult{low: b.o.stepLow, high: b.o.stepHigh, latency: b.o.stepLatency}
	rep.step = res
	want := int32((b.o.stepHigh + 1) / 2) // in flight / target 2
	for run := range b.o.runs {
		if err := b.waitReplicas(ctx, step, 2*time.Minute, func(r int32) bool { return r == 1 }); err != nil {
			return err
		}
		logf("e: run %d: %d clients for 8 s, then %d", run+1, b.o.stepLow, b.o.stepHigh)
		lctx, stopLoad := context.WithTimeout(ctx, 8*time.Second+b.o.stepTimeout+5*time.Second)
		client := newClient(b.o.stepHigh)
		t := target{base: b.url, host: step.host}
		var wg sync.WaitGroup
		load := func(n int, d time.Duration) {
			for range n {
				wg.Go(func() { closedLoop(lctx, client, t, 1, d, 10_000) })
			}
		}
		load(b.o.stepLow, 8*time.Second+b.o.stepTimeout)
		select {
		case <-time.After(8 * time.Second):
		case <-ctx.Done():
		}
		r, err := b.watchFrom(lctx, step)
		if err != nil {
			stopLoad()
			wg.Wait()
			return err
		}
		stepAt := time.Now()
		load(b.o.stepHigh-b.o.stepLow, b.o.stepTimeout)
		first, full, last := r.until(lctx, want, b.o.stepTimeout)
		stopLoad()
		wg.Wait()
		if first.IsZero() {
			return fmt.Errorf("run %d: no scale write within %s of the step (replicas %d)", run+1, b.o.stepTimeout, last)
		}
		sr := stepRun{write: first.Sub(stepAt), reached: last}
		if !full.IsZero() {
			sr.full = full.Sub(stepAt)
		}
		res.runs = append(res.runs, sr)
		logf("e: run %d: first /scale write %s after the step; %d replicas", run+1, sr.write.Round(time.Millisecond), last)
	}
	return nil
}

// waitReplicas polls the Deployment's spec.replicas until cond holds.
func (b *bench) waitReplicas(ctx context.Context, a app, timeout time.Duration, cond func(int32) bool) error {
	deadline := time.Now().Add(timeout)
	var last int32 = -1
	for time.Now().Before(deadline) {
		d, err := b.c.Client.AppsV1().Deployments(a.ns).Get(ctx, a.name, metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil {
			last = *d.Spec.Replicas
			if cond(last) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s/%s: replicas %d after %s", a.ns, a.name, last, timeout)
}

// replicaWatch follows one Deployment's spec.replicas.
type replicaWatch struct {
	w     watch.Interface
	start int32
}

func (b *bench) watchFrom(ctx context.Context, a app) (*replicaWatch, error) {
	d, err := b.c.Client.AppsV1().Deployments(a.ns).Get(ctx, a.name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", a.ns, a.name, err)
	}
	w, err := b.c.Client.AppsV1().Deployments(a.ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + a.name, ResourceVersion: d.ResourceVersion})
	if err != nil {
		return nil, fmt.Errorf("watch %s/%s: %w", a.ns, a.name, err)
	}
	return &replicaWatch{w: w, start: *d.Spec.Replicas}, nil
}

// until returns when spec.replicas first changed and when it first reached
// want, and the last count seen, within timeout.
func (r *replicaWatch) until(ctx context.Context, want int32, timeout time.Duration) (first, full time.Time, last int32) {
	defer r.w.Stop()
	last = r.start
	deadline := time.After(timeout)
	for {
		select {
		case <-ctx.Done():
			return first, full, last
		case <-deadline:
			return first, full, last
		case ev, ok := <-r.w.ResultChan():
			if !ok {
				return first, full, last
			}
			d, isDep := ev.Object.(*appsv1.Deployment)
			if !isDep || d.Spec.Replicas == nil {
				continue
			}
			now := time.Now()
			if *d.Spec.Replicas != r.start && first.IsZero() {
				first = now
			}
			last = *d.Spec.Replicas
			if last >= want && full.IsZero() {
				full = now
				return first, full, last
			}
		}
	}
}
