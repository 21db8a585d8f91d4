package activator

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/clock"

	"github.com/spinscale/spinscale/internal/httpstats"
)

// Defaults of the activator's options.
const (
	DefaultQueueSize    = 1000
	DefaultQueueTimeout = 30 * time.Second
	// RetryAfter is the Retry-After, in seconds, of a 503 for a held request.
	RetryAfter = 1
)

// Options configure an Activator.
type Options struct {
	// Name identifies this replica in its reports (its pod name).
	Name   string
	Logger *zap.Logger
	Clock  clock.WithTickerAndDelayedExecution
	// QueueSize and QueueTimeout apply to apps that do not set
	// http-queue-size and http-queue-timeout.
	QueueSize    int
	QueueTimeout time.Duration
	// AddressMap rewrites endpoint addresses before they are dialed.
	AddressMap AddressMap
	// Transport forwards to the pods; nil is an HTTP/1.1 transport that
	// ignores proxy environment variables.
	Transport http.RoundTripper

	// onHold is told of each request held (tests).
	onHold func(httpstats.App)
	// onTableChange is told of each change of the table (tests).
	onTableChange func()
	// onDrain is told when the drain starts (tests).
	onDrain func()
	// clientIdleTimeout and clientHeaderTimeout replace fastIdleTimeout
	// and fastHeaderTimeout (tests; zero: those).
	clientIdleTimeout, clientHeaderTimeout time.Duration
}

// Activator is the proxy, its table of apps and its stats stream.
type Activator struct {
	name    string
	log     *zap.Logger
	clock   clock.WithTickerAndDelayedExecution
	table   *Table
	hub     *hub
	reg     *prometheus.Registry
	metrics *Metrics
	proxy   *httputil.ReverseProxy
	holder  *holder
	active  counter
	onDrain func()
	// clientIdle closes client connections idle longer between requests;
	// clientHeader bounds the wait for a head (a new connection's first,
	// or one begun).
	clientIdle, clientHeader time.Duration

	synced   atomic.Bool
	draining atomic.Bool
	// baseCtx is the proxy server's base context, set by Serve: it ends
	// when the drain runs out.
	baseCtx atomic.Pointer[context.Context]
	// sweeps starts the sweep of parked connections once.
	sweeps sync.Once
	// streamsDone ends the stats streams once the proxy has drained.
	streamsDone chan struct{}
	closeOnce   sync.Once
}

// New returns an Activator with an empty table; Start fills it from the
// API and Serve serves it.
func New(o Options) (*Activator, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.QueueTimeout == 0 {
		o.QueueTimeout = DefaultQueueTimeout
	}
	if o.QueueSize < 1 {
		return nil, fmt.Errorf("queue size %d: must be at least 1", o.QueueSize)
	}
	if o.QueueTimeout < 0 {
		return nil, fmt.Errorf("queue timeout %s: must be positive", o.QueueTimeout)
	}
	if o.Transport == nil {
		o.Transport = newTransport()
	}
	x := &Activator{
		name: o.Name, log: o.Logger, clock: o.Clock, onDrain: o.onDrain,
		clientIdle: cmp.Or(o.clientIdleTimeout, fastIdleTimeout), clientHeader: cmp.Or(o.clientHeaderTimeout, fastHeaderTimeout),
		reg:         prometheus.NewRegistry(),
		streamsDone: make(chan struct{}),
	}
	x.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	x.metrics = NewMetrics(x.reg)
	x.hub = newHub(func(n int) { x.metrics.streamReaders.Set(float64(n)) })
	x.table = NewTable(o.Logger, o.Clock.Now, o.AddressMap, func(string, string) []*discoveryv1.EndpointSlice { return nil })
	x.table.onRemove = x.metrics.forget
	if o.onTableChange != nil {
		x.table.changed = o.onTableChange
	}
	x.holder = &holder{
		now:       o.Clock.Now,
		timer:     o.Clock.NewTimer,
		afterFunc: o.Clock.AfterFunc,
		size:      o.QueueSize,
		timeout:   o.QueueTimeout,
		wake: func(a *app, s httpstats.AppStats) {
			x.hub.publish(httpstats.Report{Kind: httpstats.KindWake, Activator: x.name, Time: o.Clock.Now(), Apps: []httpstats.AppStats{s}})
			x.log.Debug("wake sent", zap.String("namespace", a.key.Namespace), zap.String("deployment", a.key.Name))
		},
		onHold:      o.onHold,
		heldChanged: func(a *app, d float64) { x.metrics.of(a).held.Add(d) },
	}
	x.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    o.Transport,
		ErrorHandler: x.proxyError,
		// Streamed responses (no Content-Length, or text/event-stream)
		// are flushed at each write whatever this says.
		FlushInterval: 0,
		ErrorLog:      zap.NewStdLog(o.Logger.Named("proxy")),
		BufferPool:    bufferPool{},
	}
	return x, nil
}

// newTransport forwards over HTTP/1.1 with pooled connections.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // pods are dialed directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          10000,
		MaxIdleConnsPerHost:   1000,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes to the pod as it came: without
		// this, a request that asks for no encoding would be sent asking
		// for gzip and the answer decompressed here, at the activator's
		// CPU cost.
		DisableCompression: true,
	}
}

// Registry is the activator's own Prometheus registry.
func (x *Activator) Registry() *prometheus.Registry { return x.reg }

// target is where one request goes.
type target struct {
	app     *app
	backend *backend
	in      *http.Request // the request as received, for a re-send
	// resends counts the times it was sent again after a refused dial;
	// refusedAt is the first refusal, from which it is held.
	resends   int
	refusedAt time.Time
}

// maxResends bounds the times a request whose dial was refused is sent
// again: with the quarantine's doubling, about 4.5 s of refusals in a row.
const maxResends = 8

type targetKey struct{}

// targetContext carries a request's target: one allocation where
// context.WithValue would make two.
type targetContext struct {
	context.Context
	t target
}

func (c *targetContext) Value(key any) any {
	if _, ok := key.(targetKey); ok {
		return &c.t
	}
	return c.Context.Value(key)
}

// exchange is what one proxied request needs, allocated at once: the
// recorder of its response and the context carrying its target.
type exchange struct {
	rec recorder
	ctx targetContext
}

// The X-Forwarded-Proto values, shared: headers set from them are only
// read.
var (
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// rewrite sends the request to its backend, keeping Host, and sets the
// X-Forwarded headers as an ingress controller does: the client is
// appended to an incoming X-Forwarded-For chain; an incoming
// X-Forwarded-Host or -Proto (set by the ingress in front) is kept, else it
// is this request's. It is ProxyRequest.SetXForwarded without its
// allocations.
func rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(*target)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.backend.addr
	pr.Out.Host = pr.In.Host
	in, out := pr.In.Header, pr.Out.Header
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out["X-Forwarded-For"] = []string{ip}
	} else {
		delete(out, "X-Forwarded-For")
	}
	if v := in["X-Forwarded-Host"]; len(v) > 0 && v[0] != "" {
		out["X-Forwarded-Host"] = v[:1:1]
	} else {
		out["X-Forwarded-Host"] = []string{pr.In.Host}
	}
	switch v := in["X-Forwarded-Proto"]; {
	case len(v) > 0 && v[0] != "":
		out["X-Forwarded-Proto"] = v[:1:1]
	case pr.In.TLS != nil:
		out["X-Forwarded-Proto"] = protoHTTPS
	default:
		out["X-Forwarded-Proto"] = protoHTTP
	}
}

// ServeHTTP routes, holds and forwards one request.
func (x *Activator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x.active.add(1)
	defer x.active.add(-1)
	start := x.clock.Now()
	host := canonicalHost(r.Host)
	a, hint := x.table.lookup(host, r.URL.Path)
	if a == nil {
		x.notRouted(w, r, host, hint)
		return
	}
	m := x.metrics.of(a)
	a.begin(start)
	m.inFlight.Inc()
	if parkable(r) {
		if b := a.pickNow(); b != nil {
			x.forward(w, r, a, m, start, b, nil)
			return
		}
		x.park(w, r, a, m, start)
		return
	}
	// A held request waits in acquire: ServeHTTP's frame, below it, is kept
	// small, and forward's is not on the stack yet.
	b, err := a.acquire(r.Context(), x.holder)
	x.forward(w, r, a, m, start, b, err)
}

// forward proxies a request to the backend acquire gave it, or refuses it,
// and counts its end.
func (x *Activator) forward(w http.ResponseWriter, r *http.Request, a *app, m *appMetrics, start time.Time, b *backend, err error) {
	ex := &exchange{rec: recorder{ResponseWriter: w}}
	defer x.counted(a, m, start, &ex.rec)
	if err != nil {
		x.refuse(&ex.rec, r, a, err)
		return
	}
	defer b.inFlight.Add(-1)
	ex.ctx = targetContext{Context: r.Context(), t: target{app: a, backend: b, in: r}}
	x.proxy.ServeHTTP(&ex.rec, r.WithContext(&ex.ctx))
}

// notRouted answers a request no app serves: 404, saying why.
func (x *Activator) notRouted(w http.ResponseWriter, r *http.Request, host, hint string) {
	msg := fmt.Sprintf("no app for host %q", host)
	if hint != "" {
		msg = fmt.Sprintf("no app for host %q and path %q: %s", host, r.URL.Path, hint)
	}
	x.log.Info("request not routed", zap.String("host", host), zap.String("path", r.URL.Path), zap.String("reason", msg))
	x.metrics.requests.WithLabelValues("", "", "404").Inc()
	http.Error(w, msg, http.StatusNotFound)
}

// refuse answers a request that got no backend.
func (x *Activator) refuse(w *recorder, r *http.Request, a *app, err error) {
	ns, name := a.key.Namespace, a.key.Name
	log := x.log.With(zap.String("namespace", ns), zap.String("deployment", name))
	switch {
	case errors.Is(err, errOverflow):
		x.metrics.heldRejected.WithLabelValues(ns, name, "overflow").Inc()
		log.Warn("request refused: hold queue full")
		retryLater(w, fmt.Sprintf("app %s has no ready pod and its queue is full; retry later", a.key))
	case errors.Is(err, errTimeout):
		x.metrics.heldRejected.WithLabelValues(ns, name, "timeout").Inc()
		log.Warn("request refused: no ready pod in time")
		retryLater(w, fmt.Sprintf("app %s had no ready pod in time; retry later", a.key))
	case errors.Is(err, errCut):
		x.metrics.heldRejected.WithLabelValues(ns, name, "shutdown").Inc()
		log.Warn("request refused: the activator is shutting down")
		retryLater(w, fmt.Sprintf("app %s had no ready pod before this activator shut down; retry later", a.key))
	case errors.Is(err, errRemoved):
		http.Error(w, fmt.Sprintf("app %s is no longer routed", a.key), http.StatusNotFound)
	default: // the client went while held
		w.code = statusClientClosed
		log.Debug("held request cancelled by the client", zap.Error(err))
	}
}

// statusClientClosed counts a request whose client went before its answer
// (nginx's 499); it is never sent.
const statusClientClosed = 499

func retryLater(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// proxyError answers a request the backend failed: 502 naming the pod. A
// pod whose dial failed is quarantined; a GET or HEAD without a body, which
// was never sent, is held again as at zero (for another ready pod, or the
// quarantined one once its quarantine ends) and re-sent, up to maxResends
// times and within its queue timeout.
func (x *Activator) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	t, _ := r.Context().Value(targetKey{}).(*target)
	rec, _ := w.(*recorder)
	if r.Context().Err() != nil {
		if rec != nil {
			rec.code = statusClientClosed
		}
		return
	}
	if t == nil {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	log := x.log.With(zap.String("namespace", t.app.key.Namespace), zap.String("deployment", t.app.key.Name),
		zap.String("backend", t.backend.addr))
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		t.app.quarantine(t.backend, x.holder)
		if t.resends < maxResends && retriable(t.in) && rec != nil {
			x.resend(rec, t, log, err)
			return
		}
	}
	log.Warn("backend failed", zap.Error(err))
	http.Error(w, fmt.Sprintf("bad gateway: app %s: its pod %s failed: %v", t.app.key, t.backend.addr, err), http.StatusBadGateway)
}

// resend holds a request whose dial failed until a backend can be picked,
// and sends it again.
func (x *Activator) resend(w *recorder, t *target, log *zap.Logger, err error) {
	now := x.clock.Now()
	refusedAt := t.refusedAt
	if refusedAt.IsZero() {
		refusedAt = now
	}
	log.Info("backend refused the connection; holding the request to send it again", zap.Int("resend", t.resends+1), zap.Error(err))
	// The refused pod does not count it while it waits and is re-sent;
	// its caller's deferred decrement is balanced on return.
	t.backend.inFlight.Add(-1)
	defer t.backend.inFlight.Add(1)
	next, herr := t.app.hold(t.in.Context(), x.holder, now.Sub(refusedAt))
	if herr != nil {
		x.refuse(w, t.in, t.app, herr)
		return
	}
	defer next.inFlight.Add(-1)
	ctx := &targetContext{Context: t.in.Context(), t: target{app: t.app, backend: next, in: t.in, resends: t.resends + 1, refusedAt: refusedAt}}
	x.proxy.ServeHTTP(w, t.in.WithContext(ctx))
}

// retriable reports whether r may be sent again: an idempotent request
// without a body.
func retriable(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0)
}

// canonicalHost is the request's host name, lower-cased, without port or
// trailing dot. It allocates only for a name with upper-case letters.
func canonicalHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		} else if strings.HasSuffix(h, "]") {
			h = h[1 : len(h)-1]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i] // host:port; more colons are an unbracketed IPv6 address
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// tick publishes the counts of the second ending at now.
func (x *Activator) tick(now time.Time) {
	rep := httpstats.Report{Kind: httpstats.KindTick, Activator: x.name, Time: now, Apps: []httpstats.AppStats{}}
	for _, a := range x.table.appList() {
		if s, ok := a.snapshot(now); ok {
			rep.Apps = append(rep.Apps, s)
		}
	}
	x.hub.publish(rep)
}

// runTicks publishes a tick each second until ctx ends.
func (x *Activator) runTicks(ctx context.Context) {
	t := x.clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C():
			x.tick(now)
		}
	}
}

// AdminHandler serves /healthz, /readyz, /metrics and the stats stream.
func (x *Activator) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case x.draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !x.synced.Load():
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	mux.Handle("/metrics", promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{Registry: x.reg}))
	mux.HandleFunc(httpstats.StreamPath, func(w http.ResponseWriter, r *http.Request) {
		x.hub.serveStream(w, r, x.streamsDone, x.log)
	})
	return mux
}

// recorder remembers the status code written, for the metrics.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Hijack is an upgrade (a WebSocket): the proxy took the connection.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.code == 0 {
		r.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *recorder) FlushError() error { return http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// counter counts the requests being served, and tells when none is.
type counter struct {
	n  atomic.Int64
	mu sync.Mutex
	// idle is closed when n falls to 0; nil until someone waits.
	idle chan struct{}
}

func (c *counter) add(d int64) {
	if c.n.Add(d) != 0 {
		return
	}
	c.mu.Lock()
	if c.idle != nil && c.n.Load() == 0 {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
}

// wait returns when no request is being served, or ctx ends.
func (c *counter) wait(ctx context.Context) error {
	c.mu.Lock()
	if c.n.Load() == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d requests still in flight: %w", c.load(), ctx.Err())
	}
}

func (c *counter) load() int64 { return c.n.Load() }

// bufferSize is the size of the buffers copying response bodies.
const bufferSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

// bufferPool lends the proxy its copy buffers, which it would otherwise
// allocate for each request.
type bufferPool struct{}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == bufferSize {
		buffers.Put((*[bufferSize]byte)(b))
	}
}
