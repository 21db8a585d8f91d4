package metrics

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// Failure kinds of a query: the `kind` label of
// spinscale_prometheus_query_failures_total and QueryError.Kind.
const (
	// KindTimeout: no answer within prometheus.timeout (or the tick ended).
	KindTimeout = "timeout"
	// KindUnavailable: Prometheus could not be reached or answered 5xx.
	KindUnavailable = "unavailable"
	// KindRejected: Prometheus (or a proxy) refused the request: 401, 403, 404...
	KindRejected = "rejected"
	// KindBadResponse: the answer is not a Prometheus API response.
	KindBadResponse = "bad_response"
	// KindInvalid: the PromQL does not parse (Prometheus' bad_data).
	KindInvalid = "invalid"
	// KindExecution: the query parsed but failed to evaluate.
	KindExecution = "execution"
	// KindEmpty: the result has no sample.
	KindEmpty = "empty"
	// KindNaN: the result is NaN or infinite, which is not data.
	KindNaN = "nan"
	// KindShape: a result Spinscale cannot map onto the app: several series
	// without a pod label, a range vector, a string.
	KindShape = "shape"
)

var failureKinds = []string{KindTimeout, KindUnavailable, KindRejected, KindBadResponse, KindInvalid, KindExecution, KindEmpty, KindNaN, KindShape}

// kindPhrase is the stable first clause of a QueryError's message, so that
// a Warning keyed on it is not re-emitted on every tick.
var kindPhrase = map[string]string{
	KindTimeout:     "prometheus query timed out",
	KindUnavailable: "prometheus unavailable",
	KindRejected:    "prometheus rejected the request",
	KindBadResponse: "unexpected response from prometheus",
	KindInvalid:     "invalid PromQL",
	KindExecution:   "prometheus failed to evaluate the query",
	KindEmpty:       recommender.ErrNoData.Error(),
	KindNaN:         "not a number",
	KindShape:       "unusable result",
}

// QueryError is a failed query. Its message names the kind, the query and
// the details; Summary is the part that stays the same from tick to tick.
// Empty and NaN results unwrap to recommender.ErrNoData.
type QueryError struct {
	Kind  string
	Query string
	// Reason is stable for a given query and failure (it is in Summary);
	// Detail may change between ticks (counts, addresses). Either may be
	// empty.
	Reason, Detail string
	err            error
}

func (e *QueryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: query %q", kindPhrase[e.Kind], e.Query)
	switch {
	case e.Detail != "":
		b.WriteString(": " + e.Detail)
	case e.Reason != "":
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

// Summary is the failure without the query and without anything that may
// change from one tick to the next.
func (e *QueryError) Summary() string {
	if e.Reason == "" {
		return kindPhrase[e.Kind]
	}
	return kindPhrase[e.Kind] + ": " + e.Reason
}

func (e *QueryError) Unwrap() error { return e.err }

// PrometheusMetrics are the Prometheus source's own metrics.
type PrometheusMetrics struct {
	QueryDuration prometheus.Histogram
	Failures      *prometheus.CounterVec
}

// NewPrometheusMetrics creates the source's metrics and registers them on reg.
func NewPrometheusMetrics(reg prometheus.Registerer) *PrometheusMetrics {
	m := &PrometheusMetrics{
		QueryDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spinscale_prometheus_query_duration_seconds",
			Help: "Duration of each PromQL query, failed ones included.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_prometheus_query_failures_total",
			Help: "Failed PromQL queries by kind: " + strings.Join(failureKinds, ", ") + "."}, []string{"kind"}),
	}
	// Every kind exists from the start, so that rate() and alerts see the
	// first failure.
	for _, k := range failureKinds {
		m.Failures.WithLabelValues(k)
	}
	reg.MustRegister(m.QueryDuration, m.Failures)
	return m
}

// Prometheus is a QuerySource that runs instant queries against the
// Prometheus HTTP API.
type Prometheus struct {
	api         promv1.API
	timeout     time.Duration
	podLabel    model.LabelName
	concurrency int
	log         *zap.Logger
	// now is the evaluation time of a tick's queries; a test replaces it.
	now func() time.Time
	// Metrics, when set before the first Query, records durations and
	// failures.
	Metrics *PrometheusMetrics
}

var _ QuerySource = (*Prometheus)(nil)

// NewPrometheus builds the source from config: address, per-query timeout,
// bearer token or basic auth (secrets read from files, re-read when the
// files change), TLS and extra headers.
func NewPrometheus(cfg config.Prometheus, log *zap.Logger) (*Prometheus, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus.address: %q is not an absolute http or https URL", cfg.Address)
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("prometheus.timeout: %s must be more than 0s", cfg.Timeout)
	}
	if cfg.PodLabel == "" {
		return nil, errors.New("prometheus.podLabel: a label name is required")
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("prometheus.concurrency: %d must be at least 1", cfg.Concurrency)
	}
	if log == nil {
		log = zap.NewNop()
	}

	auth := &authTransport{headers: cfg.Headers}
	if cfg.BearerTokenFile != "" && cfg.BasicAuth.Username != "" {
		return nil, errors.New("prometheus.bearerTokenFile and prometheus.basicAuth: set one or the other, not both")
	}
	if cfg.BearerTokenFile != "" {
		auth.token = &fileCache{path: cfg.BearerTokenFile}
		if _, err := auth.token.read(); err != nil {
			return nil, fmt.Errorf("prometheus.bearerTokenFile: %w", err)
		}
	}
	if cfg.BasicAuth.Username != "" || cfg.BasicAuth.PasswordFile != "" {
		if cfg.BasicAuth.Username == "" || cfg.BasicAuth.PasswordFile == "" {
			return nil, errors.New("prometheus.basicAuth: username and passwordFile go together")
		}
		auth.username = cfg.BasicAuth.Username
		auth.password = &fileCache{path: cfg.BasicAuth.PasswordFile}
		if _, err := auth.password.read(); err != nil {
			return nil, fmt.Errorf("prometheus.basicAuth.passwordFile: %w", err)
		}
	}
	tlsCfg, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	auth.next = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   cfg.Concurrency, // the default of 2 would re-dial under concurrency
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tlsCfg,
	}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.Address, RoundTripper: auth})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", cfg.Address, err)
	}
	return &Prometheus{
		api:         promv1.NewAPI(client),
		timeout:     cfg.Timeout,
		podLabel:    model.LabelName(cfg.PodLabel),
		concurrency: cfg.Concurrency,
		log:         log,
		now:         time.Now,
	}, nil
}

// Query runs each distinct query once, at most `concurrency` at a time, each
// bounded by the per-query timeout and all by ctx. Every query of the tick
// is evaluated at the same instant. A query that could not run (ctx ended
// first) gets a timeout error; the map has an entry for every query.
func (p *Prometheus) Query(ctx context.Context, queries []string) map[string]recommender.Observation {
	distinct := slices.Compact(slices.Sorted(slices.Values(queries)))
	out := make(map[string]recommender.Observation, len(distinct))
	if len(distinct) == 0 {
		return out
	}
	at := p.now()
	work := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(p.concurrency, len(distinct)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range work {
				obs := p.query(ctx, q, at)
				mu.Lock()
				out[q] = obs
				mu.Unlock()
			}
		}()
	}
	for _, q := range distinct {
		work <- q
	}
	close(work)
	wg.Wait()
	return out
}

// query runs one instant query and maps its result.
func (p *Prometheus) query(ctx context.Context, q string, at time.Time) recommender.Observation {
	if err := ctx.Err(); err != nil {
		// The tick's deadline passed while the query waited for a slot.
		return p.failed(&QueryError{Kind: KindTimeout, Query: q, Detail: "not run: the tick ended first (" + err.Error() + ")"}, 0)
	}
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
	v, warnings, infos, err := p.api.Query(qctx, q, at, promv1.WithTimeout(p.timeout))
	took := time.Since(start)
	if len(warnings) > 0 || len(infos) > 0 {
		p.log.Debug("prometheus annotations", zap.String("query", q), zap.Strings("warnings", warnings), zap.Strings("infos", infos))
	}
	if err != nil {
		qe := classify(qctx, q, err, p.timeout)
		if ctx.Err() != nil && qe.Kind == KindTimeout {
			qe.Detail = "the tick ended first (" + ctx.Err().Error() + ")"
		}
		return p.failed(qe, took)
	}
	obs := p.observation(q, v)
	if qe := (*QueryError)(nil); errors.As(obs.Err, &qe) {
		return p.failed(qe, took)
	}
	if p.Metrics != nil {
		p.Metrics.QueryDuration.Observe(took.Seconds())
	}
	return obs
}

func (p *Prometheus) failed(qe *QueryError, took time.Duration) recommender.Observation {
	if p.Metrics != nil {
		if took > 0 {
			p.Metrics.QueryDuration.Observe(took.Seconds())
		}
		p.Metrics.Failures.WithLabelValues(qe.Kind).Inc()
	}
	p.log.Debug("prometheus query failed", zap.String("query", qe.Query), zap.String("kind", qe.Kind), zap.Error(qe))
	return recommender.Observation{Err: qe}
}

// classify turns a client error into a QueryError of the right kind.
func classify(qctx context.Context, q string, err error, timeout time.Duration) *QueryError {
	qe := &QueryError{Query: q, Detail: err.Error()}
	var apiErr *promv1.Error
	var netErr net.Error
	switch {
	case errors.Is(qctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		qe.Kind, qe.Detail = KindTimeout, fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		qe.Kind = KindTimeout
	case errors.As(err, &apiErr):
		apiErr = fromBody(apiErr)
		qe.Detail = apiErr.Msg
		switch apiErr.Type {
		case promv1.ErrBadData:
			// The query is the only parameter a user controls: a parse
			// error, stable for a given query, and the one thing to fix.
			qe.Kind, qe.Reason, qe.Detail = KindInvalid, apiErr.Msg, ""
		case promv1.ErrExec:
			qe.Kind = KindExecution
		case promv1.ErrTimeout, promv1.ErrCanceled:
			qe.Kind = KindTimeout
		case promv1.ErrClient:
			qe.Kind, qe.Reason = KindRejected, apiErr.Msg
			qe.Detail = apiErr.Msg + detailOf(apiErr.Detail)
		case promv1.ErrServer:
			// No Reason: the status of a restarting server or its proxy
			// varies, the remedy does not.
			qe.Kind, qe.Detail = KindUnavailable, apiErr.Msg+detailOf(apiErr.Detail)
		case promv1.ErrBadResponse:
			qe.Kind = KindBadResponse
			if strings.Contains(apiErr.Msg, "unexpected value type") {
				// The client decodes scalars, vectors and matrices only:
				// this is a string result.
				qe.Kind, qe.Reason = KindShape, "a string result: the query must return a number"
				qe.Detail = ""
			} else {
				qe.Reason = "is prometheus.address the Prometheus API?"
			}
		case "unavailable", "internal":
			qe.Kind, qe.Detail = KindUnavailable, string(apiErr.Type)+": "+apiErr.Msg
		case "not_found":
			qe.Kind, qe.Reason = KindRejected, string(apiErr.Type)
			qe.Detail = string(apiErr.Type) + ": " + apiErr.Msg
		default:
			qe.Kind = KindExecution
			qe.Detail = string(apiErr.Type) + ": " + apiErr.Msg
		}
	case errors.As(err, &netErr) && netErr.Timeout():
		qe.Kind = KindTimeout
	default:
		qe.Kind = KindUnavailable
	}
	return qe
}

// fromBody returns the error a Prometheus API body carries when the client
// could not see it: the client reads the body of 400 and 422 answers only,
// but Prometheus also answers 503 (timeout, unavailable), 499 (canceled)
// and 500 (internal) with a JSON error.
func fromBody(e *promv1.Error) *promv1.Error {
	if e.Type != promv1.ErrServer && e.Type != promv1.ErrClient {
		return e
	}
	var body struct {
		Status    string           `json:"status"`
		ErrorType promv1.ErrorType `json:"errorType"`
		Error     string           `json:"error"`
	}
	if json.Unmarshal([]byte(e.Detail), &body) != nil || body.Status != "error" || body.ErrorType == "" {
		return e
	}
	return &promv1.Error{Type: body.ErrorType, Msg: body.Error}
}

// detailOf shortens an error body for a message.
func detailOf(body string) string {
	body = strings.TrimSpace(body)
	if body == "" {
		return ""
	}
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	return ": " + body
}

// observation maps a query result onto an Observation: a scalar or one
// series without the pod label is a single value; series that all carry the
// pod label are per-pod samples; anything else is an error naming the
// query and what came back.
func (p *Prometheus) observation(q string, v model.Value) recommender.Observation {
	fail := func(kind, reason, detail string) recommender.Observation {
		qe := &QueryError{Kind: kind, Query: q, Reason: reason, Detail: detail}
		if kind == KindEmpty || kind == KindNaN {
			qe.err = recommender.ErrNoData
		}
		return recommender.Observation{Err: qe}
	}
	const aggregate = "aggregate to one value with sum(...) or to one series per pod with sum by (%s) (...)"
	switch r := v.(type) {
	case *model.Scalar:
		if r == nil {
			return fail(KindEmpty, "empty result", "")
		}
		m, ok := milli(float64(r.Value))
		if !ok {
			return fail(KindNaN, nonFinite, "scalar "+r.Value.String())
		}
		return recommender.Observation{Value: m, Timestamp: r.Timestamp.Time()}
	case model.Vector:
		if len(r) == 0 {
			return fail(KindEmpty, "empty result", "")
		}
		withPod := 0
		for _, s := range r {
			if s.Metric[p.podLabel] != "" {
				withPod++
			}
			if s.Histogram != nil {
				return fail(KindShape, "native histogram samples: reduce them to a number, e.g. with histogram_quantile, histogram_count or histogram_sum", "")
			}
		}
		switch {
		case withPod == len(r):
			return p.perPod(q, r, fail)
		case len(r) == 1:
			m, ok := milli(float64(r[0].Value))
			if !ok {
				return fail(KindNaN, nonFinite, "value "+r[0].Value.String())
			}
			return recommender.Observation{Value: m, Timestamp: r[0].Timestamp.Time()}
		case withPod == 0:
			return fail(KindShape, fmt.Sprintf("several series without a %q label: "+aggregate, p.podLabel, p.podLabel),
				fmt.Sprintf("%d series without a %q label, e.g. %s: "+aggregate, len(r), p.podLabel, r[0].Metric, p.podLabel))
		default:
			return fail(KindShape, fmt.Sprintf("some series without a %q label: "+aggregate, p.podLabel, p.podLabel),
				fmt.Sprintf("%d of %d series without a %q label: "+aggregate, len(r)-withPod, len(r), p.podLabel, p.podLabel))
		}
	case model.Matrix:
		return fail(KindShape, "a range vector (matrix): use an instant vector, e.g. rate(x[1m]) rather than x[1m]", "")
	case *model.String:
		return fail(KindShape, "a string result: the query must return a number", "")
	case nil:
		return fail(KindEmpty, "empty result", "")
	default:
		return fail(KindShape, fmt.Sprintf("result type %s: the query must return a scalar or an instant vector", v.Type()), "")
	}
}

const nonFinite = "the result is NaN or infinite (a division by zero?)"

// perPod maps a vector whose series all carry the pod label. A pod with a
// NaN or infinite value is left out, so the engine treats it as a pod
// without a sample (HPA's missing-pod rules); when every pod is left out
// the metric fails.
func (p *Prometheus) perPod(q string, r model.Vector, fail func(kind, reason, detail string) recommender.Observation) recommender.Observation {
	obs := recommender.Observation{PerPod: true, Samples: make([]recommender.Sample, 0, len(r))}
	seen := make(map[model.LabelValue]bool, len(r))
	nonFiniteIn := 0
	for _, s := range r {
		pod := s.Metric[p.podLabel]
		if seen[pod] {
			return fail(KindShape, fmt.Sprintf("several series for one pod: aggregate to one series per pod with sum by (%s) (...)", p.podLabel),
				fmt.Sprintf("several series for %s %q: aggregate to one series per pod with sum by (%s) (...)", p.podLabel, pod, p.podLabel))
		}
		seen[pod] = true
		m, ok := milli(float64(s.Value))
		if !ok {
			nonFiniteIn++
			continue
		}
		obs.Samples = append(obs.Samples, recommender.Sample{Pod: string(pod), Value: m, Timestamp: s.Timestamp.Time()})
	}
	if len(obs.Samples) == 0 {
		return fail(KindNaN, nonFinite, fmt.Sprintf("every one of %d pods is NaN or infinite", nonFiniteIn))
	}
	return obs
}

// milli converts a value to integer milli-units, rounding to the nearest;
// false for NaN and ±Inf. Values beyond int64 saturate: they are data, only
// enormous.
func milli(v float64) (int64, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	m := math.Round(v * 1000)
	switch {
	case m >= math.MaxInt64:
		return math.MaxInt64, true
	case m <= math.MinInt64:
		return math.MinInt64, true
	}
	return int64(m), true
}

// authTransport adds the configured headers and credentials to every
// request.
type authTransport struct {
	next     http.RoundTripper
	headers  map[string]string
	token    *fileCache
	username string
	password *fileCache
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request.
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if t.token != nil {
		tok, err := t.token.read()
		if err != nil {
			return nil, fmt.Errorf("prometheus.bearerTokenFile: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if t.password != nil {
		pw, err := t.password.read()
		if err != nil {
			return nil, fmt.Errorf("prometheus.basicAuth.passwordFile: %w", err)
		}
		req.SetBasicAuth(t.username, pw)
	}
	return t.next.RoundTrip(req)
}

// fileCache holds a secret read from a file and reads it again when the
// file's size or modification time changes, so that a rotated token or
// Secret is picked up without a restart. A failed re-read keeps the last
// good value (a Secret volume swaps its files atomically, but a hand edit
// may not).
type fileCache struct {
	path string

	mu    sync.Mutex
	mod   time.Time
	size  int64
	value string
	ok    bool
}

func (f *fileCache) read() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		if f.ok {
			return f.value, nil
		}
		return "", fmt.Errorf("read %s: %w", f.path, err)
	}
	if f.ok && fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return f.value, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		if f.ok {
			return f.value, nil
		}
		return "", fmt.Errorf("read %s: %w", f.path, err)
	}
	// As Prometheus' own *_file settings: surrounding whitespace, such as
	// the newline an editor adds, is not part of the secret.
	value := string(bytes.TrimSpace(b))
	if value == "" {
		if f.ok {
			return f.value, nil
		}
		return "", fmt.Errorf("%s is empty", f.path)
	}
	f.mod, f.size, f.value, f.ok = fi.ModTime(), fi.Size(), value, true
	return f.value, nil
}

// tlsConfig builds the client TLS settings. The client certificate is
// re-read when its files change, so a rotated certificate is used without
// a restart.
func tlsConfig(c config.TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("prometheus.tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("prometheus.tls.caFile: no PEM certificate in %s", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, errors.New("prometheus.tls: certFile and keyFile go together")
		}
		kp := &keyPair{certFile: c.CertFile, keyFile: c.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// keyPair is a client certificate reloaded when either file changes; a
// failed reload keeps the last good pair.
type keyPair struct {
	certFile, keyFile string

	mu    sync.Mutex
	stamp string
	cert  *tls.Certificate
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var stamp strings.Builder
	for _, f := range []string{k.certFile, k.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&stamp, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	if k.cert != nil && stamp.String() == k.stamp {
		return k.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("prometheus.tls.certFile, keyFile: %w", err)
	}
	k.stamp, k.cert = stamp.String(), &cert
	return k.cert, nil
}
