package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/spinscale/spinscale/internal/endpoints"
	"github.com/spinscale/spinscale/internal/httpstats"
	"github.com/spinscale/spinscale/internal/recommender"
)

// The activator source: the leader streams every activator replica's
// per-second counts (httpstats) and keeps, per app, the seconds of the
// longest window its HTTP metrics average over.
//
// Per app and second, Requests and Concurrency are summed over the
// activators and Held is their largest. A second keyed by the report's own
// time (rounded to the second), so that the activators' reports of one
// second meet whatever their arrival order; the windows end at the newest
// second any activator reported, so that a gap between the activators'
// clocks and the controller's does not shift them.
//
// An app with no traffic has no entry in a tick: that is zero traffic, not
// missing data. Data is missing when no activator stream is connected, or
// every connected stream has been silent for longer than StreamSilence.

// Timing of the activator streams.
const (
	// StreamSilence is how long every stream may go without a report
	// before the counts are missing (the activators report each second).
	StreamSilence = 3 * time.Second
	// streamDeadSilence is how long one stream may be silent before it is
	// dropped and dialled again.
	streamDeadSilence = 10 * time.Second
	// Reconnect backoff: doubling from minBackoff up to maxBackoff, each
	// wait drawn from its upper half.
	minBackoff = 250 * time.Millisecond
	maxBackoff = 10 * time.Second
	// rediscover is how often the activator Service's EndpointSlices are
	// listed.
	rediscover = 10 * time.Second
	// maxRetain bounds the seconds kept per app: the longest stable window.
	maxRetain = time.Hour
	// defaultRetain is kept until an app's windows are known.
	defaultRetain = time.Minute
)

// errSilent drops a stream that stopped reporting.
var errSilent = fmt.Errorf("activator stats stream silent for more than %s", streamDeadSilence)

// ActivatorOptions wires an Activators source.
type ActivatorOptions struct {
	// Addresses are static base URLs of activator admin endpoints.
	Addresses []string
	// Service is the activator admin Service ("namespace/name"), whose
	// EndpointSlices list the replicas; empty for none. Client reads them.
	Service string
	Client  kubernetes.Interface
	// HTTP dials the streams; nil is a client without a timeout (a stream
	// lasts as long as leadership).
	HTTP   *http.Client
	Clock  clock.WithTicker
	Logger *zap.Logger
	// Wake is called, without blocking for long, for each app of a wake
	// report.
	Wake func(httpstats.App)
	// Jitter returns a number in [0, 1); nil is math/rand.
	Jitter func() float64
}

// Activators is the activator source. Observe is safe for concurrent use
// with Run.
type Activators struct {
	opts ActivatorOptions
	log  *zap.Logger

	mu sync.Mutex
	// streams are the activators being streamed, by base URL.
	streams map[string]*streamState
	apps    map[httpstats.App]*appSeries
	// latest is the newest second reported (unix seconds); coverFrom the
	// first second reported since the counts were last missing.
	latest, coverFrom int64
	// retain is the longest window asked for.
	retain time.Duration
	// afterReport, when set, is called after each report is recorded.
	afterReport func()
}

// streamState is one activator stream as Observe sees it.
type streamState struct {
	connected  bool
	lastReport time.Time
	cancel     context.CancelFunc
	cause      string
}

// appSeries is one app's recent seconds, oldest first, and its last wake.
type appSeries struct {
	seconds  []HTTPSecond
	wakeAt   time.Time
	wakeHeld int64
}

// NewActivators checks the options and returns the source; nothing runs
// until Run.
func NewActivators(opts ActivatorOptions) (*Activators, error) {
	if opts.Clock == nil || opts.Logger == nil {
		return nil, errors.New("activators: Clock and Logger are required")
	}
	if opts.Service != "" && opts.Client == nil {
		return nil, errors.New("activators: a Service needs a Kubernetes client")
	}
	if opts.Service != "" {
		if ns, name, ok := strings.Cut(opts.Service, "/"); !ok || ns == "" || name == "" {
			return nil, fmt.Errorf("activators: service %q is not namespace/name", opts.Service)
		}
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{}
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	return &Activators{opts: opts, log: opts.Logger.With(zap.String("source", "activator")),
		streams: map[string]*streamState{}, apps: map[httpstats.App]*appSeries{}, retain: defaultRetain}, nil
}

// Run streams every activator until ctx ends, then closes the streams.
// The controller runs it while it leads.
func (a *Activators) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		a.mu.Lock()
		for addr, s := range a.streams {
			s.cancel()
			delete(a.streams, addr)
		}
		a.coverFrom = 0
		a.mu.Unlock()
		wg.Wait()
	}()
	ticker := a.opts.Clock.NewTicker(rediscover)
	defer ticker.Stop()
	for {
		addrs := a.addresses(ctx)
		a.mu.Lock()
		for addr, s := range a.streams {
			if !slices.Contains(addrs, addr) {
				s.cancel()
				delete(a.streams, addr)
			}
		}
		for _, addr := range addrs {
			if a.streams[addr] != nil {
				continue
			}
			sctx, cancel := context.WithCancel(ctx)
			s := &streamState{cancel: cancel}
			a.streams[addr] = s
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.follow(sctx, addr, s)
			}()
		}
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// addresses are the static addresses and the Service's ready endpoints.
func (a *Activators) addresses(ctx context.Context) []string {
	out := slices.Clone(a.opts.Addresses)
	if a.opts.Service == "" {
		return out
	}
	found, err := a.discover(ctx)
	if err != nil {
		a.log.Warn("list the activator Service's endpoints", zap.String("service", a.opts.Service), zap.Error(err))
		// Keep the streams already known: a failed LIST is not a change.
		a.mu.Lock()
		for addr := range a.streams {
			if !slices.Contains(out, addr) {
				out = append(out, addr)
			}
		}
		a.mu.Unlock()
		return out
	}
	for _, addr := range found {
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out
}

// discover lists the ready endpoints of the activator Service's
// EndpointSlices, on the port named "admin" or the slice's only port.
func (a *Activators) discover(ctx context.Context) ([]string, error) {
	ns, name, _ := strings.Cut(a.opts.Service, "/")
	list, err := a.opts.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("list EndpointSlices of service %s: %w", a.opts.Service, err)
	}
	return endpointURLs(list.Items), nil
}

// endpointURLs are the base URLs of the slices' ready endpoints on their
// only port, else the one named "admin".
func endpointURLs(slices []discoveryv1.EndpointSlice) []string {
	ptrs := make([]*discoveryv1.EndpointSlice, len(slices))
	for i := range slices {
		ptrs[i] = &slices[i]
	}
	out := endpoints.Ready(ptrs, "", "admin", nil)
	for i, addr := range out {
		out[i] = "http://" + addr
	}
	sort.Strings(out)
	return out
}

// follow streams one activator until ctx ends, dialling again with a
// bounded, jittered backoff after each failure.
func (a *Activators) follow(ctx context.Context, addr string, s *streamState) {
	backoff := minBackoff
	for ctx.Err() == nil {
		got, err := a.stream(ctx, addr, s)
		a.mu.Lock()
		s.connected = false
		a.noteLive()
		a.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = minBackoff
		}
		a.noteCause(addr, s, err)
		wait := time.Duration(float64(backoff) * (0.5 + a.opts.Jitter()/2))
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Clock.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// noteCause logs a stream's failure once per change of its cause.
func (a *Activators) noteCause(addr string, s *streamState, err error) {
	cause := "the stream ended"
	if err != nil {
		cause = err.Error()
	}
	a.mu.Lock()
	changed := cause != s.cause
	s.cause = cause
	a.mu.Unlock()
	if changed {
		a.log.Warn("activator stream down; dialling again with backoff", zap.String("activator", addr), zap.String("cause", cause))
	}
}

// stream reads one connection to its end; got is true when a report
// arrived on it.
func (a *Activators) stream(ctx context.Context, addr string, s *streamState) (got bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(addr, "/")+httpstats.StreamPath, nil)
	if err != nil {
		return false, fmt.Errorf("build stats request: %w", err)
	}
	req.Header.Set("Accept", httpstats.ContentType)
	resp, err := a.opts.HTTP.Do(req)
	if err != nil {
		return false, fmt.Errorf("dial activator stats: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("activator stats: HTTP %d", resp.StatusCode)
	}
	a.mu.Lock()
	s.connected, s.lastReport = true, a.opts.Clock.Now()
	if s.cause != "" {
		a.log.Info("activator stream connected", zap.String("activator", addr))
		s.cause = ""
	}
	a.mu.Unlock()

	// A silent stream is dropped, so that a hung activator is dialled again.
	go func() {
		t := a.opts.Clock.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				a.mu.Lock()
				silent := a.opts.Clock.Since(s.lastReport)
				a.mu.Unlock()
				if silent > streamDeadSilence {
					cancel(errSilent)
					return
				}
			}
		}
	}()

	dec := httpstats.NewDecoder(resp.Body)
	for {
		r, err := dec.Decode()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			if cause := context.Cause(ctx); errors.Is(cause, errSilent) {
				return got, cause
			}
			return got, err
		}
		got = true
		a.add(s, r)
		if a.afterReport != nil {
			a.afterReport()
		}
	}
}

// add records one report.
func (a *Activators) add(s *streamState, r httpstats.Report) {
	now := a.opts.Clock.Now()
	a.mu.Lock()
	s.lastReport = now
	if r.Kind == httpstats.KindWake {
		for _, st := range r.Apps {
			sr := a.series(st.App)
			sr.wakeAt, sr.wakeHeld = now, max(st.Held, 1)
		}
		a.mu.Unlock()
		if a.opts.Wake != nil {
			for _, st := range r.Apps {
				a.opts.Wake(st.App)
			}
		}
		return
	}
	at := r.Time.Round(time.Second).Unix()
	if a.coverFrom == 0 || at < a.coverFrom {
		a.coverFrom = at
	}
	a.latest = max(a.latest, at)
	cutoff := a.latest - int64(a.retain/time.Second)
	for _, st := range r.Apps {
		sr := a.series(st.App)
		sr.addSecond(at, st)
		sr.prune(cutoff)
	}
	// Every minute's worth of seconds, drop the apps that had no report
	// for longer than the longest window.
	if at%60 == 0 {
		for app, sr := range a.apps {
			if sr.prune(cutoff); len(sr.seconds) == 0 && now.Sub(sr.wakeAt) > a.retain {
				delete(a.apps, app)
			}
		}
	}
	a.mu.Unlock()
}

// noteLive forgets the coverage once no stream is connected: the next
// counts start a new one. The caller holds a.mu.
func (a *Activators) noteLive() {
	for _, s := range a.streams {
		if s.connected {
			return
		}
	}
	a.coverFrom = 0
}

func (a *Activators) series(app httpstats.App) *appSeries {
	sr := a.apps[app]
	if sr == nil {
		sr = &appSeries{}
		a.apps[app] = sr
	}
	return sr
}

// addSecond adds one activator's counts of second at.
func (sr *appSeries) addSecond(at int64, st httpstats.AppStats) {
	i := len(sr.seconds)
	for i > 0 && sr.seconds[i-1].At > at {
		i--
	}
	if i > 0 && sr.seconds[i-1].At == at {
		s := &sr.seconds[i-1]
		s.Requests += max(st.Requests, 0)
		s.Concurrency += max(st.Concurrency, 0)
		s.Held = max(s.Held, st.Held)
		return
	}
	sr.seconds = slices.Insert(sr.seconds, i, HTTPSecond{At: at, Requests: max(st.Requests, 0),
		Concurrency: max(st.Concurrency, 0), Held: max(st.Held, 0)})
}

// prune drops the seconds at or before cutoff.
func (sr *appSeries) prune(cutoff int64) {
	n := 0
	for n < len(sr.seconds) && sr.seconds[n].At <= cutoff {
		n++
	}
	if n > 0 {
		sr.seconds = slices.Delete(sr.seconds, 0, n)
	}
}

// Observe returns app's counts over the windows of h at now: a failed
// observation when the counts are missing.
func (a *Activators) Observe(namespace, name string, h recommender.HTTPSpec, now time.Time) recommender.Observation {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := min(max(h.StableWindow, h.PanicWindow), maxRetain); w > a.retain {
		a.retain = w
	}
	connected, live := 0, 0
	for _, s := range a.streams {
		if s.connected {
			connected++
			if now.Sub(s.lastReport) <= StreamSilence {
				live++
			}
		}
	}
	switch {
	case len(a.streams) == 0:
		return recommender.Observation{Err: fmt.Errorf("%w: no activator to stream (activator.addresses, activator.service)", recommender.ErrNoData)}
	case connected == 0:
		return recommender.Observation{Err: fmt.Errorf("%w: no activator stream connected (of %d)", recommender.ErrNoData, len(a.streams))}
	case live == 0:
		return recommender.Observation{Err: fmt.Errorf("%w: every activator stream silent for more than %s", recommender.ErrStale, StreamSilence)}
	case a.coverFrom == 0:
		return recommender.Observation{Err: fmt.Errorf("%w: no count from the activators yet", recommender.ErrNoData)}
	}
	sr := a.apps[httpstats.App{Namespace: namespace, Name: name}]
	var secs []HTTPSecond
	if sr != nil {
		secs = sr.seconds
	}
	w := HTTPWindowsOf(secs, a.latest, a.coverFrom, h)
	if sr != nil {
		// A wake comes before the tick that counts its request.
		if !sr.wakeAt.IsZero() && now.Sub(sr.wakeAt) <= h.PanicWindow {
			w.PanicHeld = max(w.PanicHeld, sr.wakeHeld)
			w.Idle = false
		}
	}
	return recommender.Observation{HTTP: &w, Timestamp: w.Latest}
}

// HTTPSecond is one app's counts over the second ending at At (unix
// seconds), summed over the activators.
type HTTPSecond struct {
	At          int64
	Requests    int64
	Concurrency float64
	Held        int64
}

// HTTPWindowsOf averages secs (oldest first; a second without an entry
// counted zero) over h's windows ending at the second latest. Seconds
// before coverFrom were not counted: a window reaching past it averages
// over the seconds since, not over seconds nobody counted.
func HTTPWindowsOf(secs []HTTPSecond, latest, coverFrom int64, h recommender.HTTPSpec) recommender.HTTPWindows {
	covered := max(latest-coverFrom+1, 1)
	stableN := min(int64(h.StableWindow/time.Second), covered)
	panicN := min(int64(h.PanicWindow/time.Second), covered)
	w := recommender.HTTPWindows{Idle: true, Latest: time.Unix(latest, 0).UTC(), Covered: time.Duration(stableN) * time.Second}
	var stableSum, panicSum float64
	for _, s := range secs {
		age := latest - s.At
		if age < 0 || age >= stableN {
			continue
		}
		v := s.Concurrency
		if h.Metric == recommender.HTTPRPS {
			v = float64(s.Requests)
		}
		stableSum += v
		if s.Requests > 0 || s.Concurrency > 0 || s.Held > 0 {
			w.Idle = false
		}
		if age < panicN {
			panicSum += v
			w.PanicRequests += s.Requests
			w.PanicHeld = max(w.PanicHeld, s.Held)
		}
	}
	if stableN > 0 {
		w.Stable = stableSum / float64(stableN)
	}
	if panicN > 0 {
		w.Panic = panicSum / float64(panicN)
	}
	return w
}
