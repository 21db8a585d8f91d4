package activator

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// benchActivator is an Activator on the real clock serving on loopback,
// with the app web routed to the given backends (none: every request is
// held), without informers: the table is fed directly.
func benchActivator(b *testing.B, backends ...*httptest.Server) (x *Activator, proxyAddr string) {
	b.Helper()
	x, err := New(Options{Name: "bench", Logger: zap.NewNop(), QueueSize: 100000, QueueTimeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	var eps []*discoveryv1.EndpointSlice
	for i, srv := range backends {
		eps = append(eps, backendSlice("ns", fmt.Sprintf("web-%d", i), "web", srv))
	}
	x.table.slices = func(string, string) []*discoveryv1.EndpointSlice { return eps }
	x.table.SetDeployment(deployment("ns", "web", epoch, "http-hosts", "web.example.com"))
	if a, _ := x.table.lookup("web.example.com", "/"); a == nil || a.readyCount() != len(backends) {
		b.Fatalf("web is not routed to its %d backends", len(backends))
	}
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- x.Serve(ctx, proxyLn, adminLn, 5*time.Second) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
	})
	return x, proxyLn.Addr().String()
}

// benchGet sends GETs for host to addr on c until the benchmark's
// iterations run out, keeping the connections alive.
func benchGet(b *testing.B, addr, host string) {
	b.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	defer c.CloseIdleConnections()
	url := "http://" + addr + "/"
	b.ReportAllocs()
	b.SetParallelism(4) // 4 clients per core
	b.ResetTimer()
	cpu := cpuTime(b)
	defer func() { b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				b.Error(err)
				return
			}
			req.Host = host
			res, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// helloBackend answers a short body.
func helloBackend(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello\n")
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkDirect is the baseline of BenchmarkProxy: the same client and
// backend without the activator. The difference per op is the activator's.
func BenchmarkDirect(b *testing.B) {
	srv := helloBackend(b)
	benchGet(b, srv.Listener.Addr().String(), "web.example.com")
}

// BenchmarkProxy is requests through the activator to one loopback backend,
// from parallel keep-alive clients; ns/op, cpu-ns/op (the process's CPU
// time per request) and allocs/op count the client, the activator and the
// backend, all in this process: the activator's share is the difference
// with BenchmarkDirect.
func BenchmarkProxy(b *testing.B) {
	srv := helloBackend(b)
	_, addr := benchActivator(b, srv)
	benchGet(b, addr, "web.example.com")
}

// BenchmarkServeHTTP is the activator's handler alone, called in process,
// forwarding to a loopback backend: its allocations are the activator's and
// its transport's.
func BenchmarkServeHTTP(b *testing.B) {
	srv := helloBackend(b)
	x, _ := benchActivator(b, srv)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "http://web.example.com/", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			w := httptest.NewRecorder()
			x.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}

// heldRequests is the number of requests BenchmarkHeld holds at once.
const heldRequests = 1000

// BenchmarkHeld holds heldRequests requests, each on its own connection,
// for an app with no pod, and reports the heap and stack in use per held
// request (bytes/held), the server's per-connection costs included. The
// client side is raw connections that only write their request, so that
// almost all of the difference is the activator's.
func BenchmarkHeld(b *testing.B) {
	x, addr := benchActivator(b)
	a, _ := x.table.lookup("web.example.com", "/")
	var heap, stack float64
	for range b.N {
		heap0, stack0 := inUse()
		conns := dialHeld(b, addr, heldRequests)
		waitHeld(b, a, heldRequests)
		heap1, stack1 := inUse()
		heap = (float64(heap1) - float64(heap0)) / heldRequests
		stack = (float64(stack1) - float64(stack0)) / heldRequests
		// Release them by closing their connections: the held count falls
		// back to zero.
		for _, c := range conns {
			c.Close()
		}
		waitHeld(b, a, 0)
	}
	b.ReportMetric(heap+stack, "bytes/held")
	b.ReportMetric(heap, "heap-bytes/held")
	b.ReportMetric(stack, "stack-bytes/held")
	b.ReportMetric(0, "ns/op")
}

// dialHeld opens n connections to addr, each sending one GET for the
// app web, and never reads their answers.
func dialHeld(b *testing.B, addr string, n int) []net.Conn {
	b.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		req := fmt.Sprintf("GET /held/%d HTTP/1.1\r\nHost: web.example.com\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n", i)
		if _, err := io.WriteString(c, req); err != nil {
			b.Fatal(err)
		}
	}
	return conns
}

// inUse is the heap and the stacks in use after a collection.
func inUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// waitHeld waits until a holds n requests.
func waitHeld(b *testing.B, a *app, n int64) {
	b.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := a.heldCount()
		if s == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d requests held, want %d", s, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldCount is the number of requests a holds.
func (a *app) heldCount() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held
}

// latencyRequests is the number of requests BenchmarkLatency sends each
// way per iteration.
const latencyRequests = 2000

// BenchmarkLatency sends paced requests at 1,000 per second straight to a
// backend and as many through the activator, alternating every 0.5 ms, and
// reports the percentiles of each and the activator's added p50 and p99.
func BenchmarkLatency(b *testing.B) {
	srv := helloBackend(b)
	_, addr := benchActivator(b, srv)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	defer c.CloseIdleConnections()
	urls := [2]string{"http://" + srv.Listener.Addr().String() + "/", "http://" + addr + "/"}
	var lat [2][]time.Duration
	b.ResetTimer()
	for range b.N {
		lat = [2][]time.Duration{}
		start := time.Now()
		for i := range 2 * latencyRequests {
			time.Sleep(time.Until(start.Add(time.Duration(i) * 500 * time.Microsecond)))
			req, err := http.NewRequest(http.MethodGet, urls[i%2], nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Host = "web.example.com"
			t0 := time.Now()
			res, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
			lat[i%2] = append(lat[i%2], time.Since(t0))
		}
	}
	for i := range lat {
		slices.Sort(lat[i])
	}
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds())
	}
	b.ReportMetric(pct(lat[0], .5), "direct-p50-µs")
	b.ReportMetric(pct(lat[0], .99), "direct-p99-µs")
	b.ReportMetric(pct(lat[1], .5), "proxy-p50-µs")
	b.ReportMetric(pct(lat[1], .99), "proxy-p99-µs")
	b.ReportMetric(pct(lat[1], .5)-pct(lat[0], .5), "added-p50-µs")
	b.ReportMetric(pct(lat[1], .99)-pct(lat[0], .99), "added-p99-µs")
	b.ReportMetric(0, "ns/op")
}
