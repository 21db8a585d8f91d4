package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// evalTime is the fixed evaluation instant of every test query.
var evalTime = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// ts is evalTime as the API writes it: Unix seconds with a fraction.
const ts = "1767268800.000"

// fakeProm speaks the /api/v1/query part of the Prometheus HTTP API: each
// query maps to a status code and a body.
type fakeProm struct {
	mu        sync.Mutex
	replies   map[string]reply
	calls     map[string]int
	times     []string
	headers   []http.Header
	inFlight  atomic.Int32
	maxFlight atomic.Int32
	delay     time.Duration
}

type reply struct {
	code int
	body string
}

func newFakeProm() *fakeProm {
	return &fakeProm{replies: map[string]reply{}, calls: map[string]int{}}
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxFlight.Load()
		if n <= m || f.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	q := r.Form.Get("query")
	f.mu.Lock()
	f.calls[q]++
	f.times = append(f.times, r.Form.Get("time"))
	f.headers = append(f.headers, r.Header.Clone())
	rep, ok := f.replies[q]
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if !ok {
		rep = reply{http.StatusOK, vector(`{"metric":{},"value":[` + ts + `,"1"]}`)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.code)
	_, _ = w.Write([]byte(rep.body))
}

func (f *fakeProm) set(query string, code int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[query] = reply{code, body}
}

func success(resultType, result string) string {
	return `{"status":"success","data":{"resultType":"` + resultType + `","result":` + result + `}}`
}

func vector(samples ...string) string { return success("vector", "["+strings.Join(samples, ",")+"]") }

func sample(pod, value string) string {
	if pod == "" {
		return `{"metric":{"app":"shop"},"value":[` + ts + `,"` + value + `"]}`
	}
	return `{"metric":{"app":"shop","pod":"` + pod + `"},"value":[` + ts + `,"` + value + `"]}`
}

func apiError(errorType, msg string) string {
	return `{"status":"error","errorType":"` + errorType + `","error":"` + msg + `"}`
}

func newSource(t *testing.T, cfg config.Prometheus) *Prometheus {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.PodLabel == "" {
		cfg.PodLabel = "pod"
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	p, err := NewPrometheus(cfg, zap.NewNop())
	require.NoError(t, err)
	p.now = func() time.Time { return evalTime }
	return p
}

func queryOne(t *testing.T, p *Prometheus, q string) recommender.Observation {
	t.Helper()
	out := p.Query(context.Background(), promql(q))
	require.Contains(t, out, Query{PromQL: q})
	return out[Query{PromQL: q}]
}

func TestPrometheusResults(t *testing.T) {
	at := evalTime
	for _, tc := range []struct {
		name string
		code int
		body string
		want recommender.Observation
		// kind and text are checked instead of want when kind is set.
		kind, text string
		noData     bool
	}{
		{name: "scalar", body: success("scalar", `[`+ts+`,"2000"]`),
			want: recommender.Observation{Value: 2_000_000, Timestamp: at}},
		{name: "one series without a pod label is one value", body: vector(sample("", "12.3456")),
			want: recommender.Observation{Value: 12_346, Timestamp: at}},
		{name: "a true zero is data", body: vector(sample("", "0")),
			want: recommender.Observation{Value: 0, Timestamp: at}},
		{name: "values round to the nearest milli-unit", body: vector(sample("", "2.0006")),
			want: recommender.Observation{Value: 2001, Timestamp: at}},
		{name: "series per pod", body: vector(sample("shop-a", "310"), sample("shop-b", "290.5")),
			want: recommender.Observation{PerPod: true, Samples: []recommender.Sample{
				{Pod: "shop-a", Value: 310_000, Timestamp: at}, {Pod: "shop-b", Value: 290_500, Timestamp: at}}}},
		{name: "one series with a pod label is per pod", body: vector(sample("shop-a", "5")),
			want: recommender.Observation{PerPod: true, Samples: []recommender.Sample{{Pod: "shop-a", Value: 5000, Timestamp: at}}}},
		{name: "a NaN pod is left out: the engine counts it missing", body: vector(sample("shop-a", "NaN"), sample("shop-b", "7")),
			want: recommender.Observation{PerPod: true, Samples: []recommender.Sample{{Pod: "shop-b", Value: 7000, Timestamp: at}}}},
		{name: "huge values saturate", body: vector(sample("", "1e300")),
			want: recommender.Observation{Value: 1<<63 - 1, Timestamp: at}},

		{name: "empty vector", body: vector(), kind: KindEmpty, text: "no data: query \"q\": empty result", noData: true},
		{name: "NaN scalar", body: success("scalar", `[`+ts+`,"NaN"]`), kind: KindNaN, text: "not a number", noData: true},
		{name: "+Inf value", body: vector(sample("", "+Inf")), kind: KindNaN, text: "+Inf", noData: true},
		{name: "every pod NaN", body: vector(sample("shop-a", "NaN"), sample("shop-b", "-Inf")), kind: KindNaN, text: "every one of 2 pods", noData: true},
		{name: "several series without a pod label", body: vector(sample("", "1"), `{"metric":{"app":"cart"},"value":[`+ts+`,"2"]}`),
			kind: KindShape, text: `query "q": 2 series without a "pod" label, e.g. {app="shop"}: aggregate to one value with sum(...) or to one series per pod with sum by (pod) (...)`},
		{name: "some series without a pod label", body: vector(sample("shop-a", "1"), sample("", "2")),
			kind: KindShape, text: `1 of 2 series without a "pod" label`},
		{name: "two series for one pod", body: vector(sample("shop-a", "1"), `{"metric":{"pod":"shop-a","instance":"x"},"value":[`+ts+`,"2"]}`),
			kind: KindShape, text: `several series for pod "shop-a": aggregate to one series per pod with sum by (pod)`},
		{name: "matrix", body: success("matrix", `[{"metric":{},"values":[[`+ts+`,"1"]]}]`), kind: KindShape, text: "range vector (matrix)"},
		{name: "string", body: success("string", `[`+ts+`,"hello"]`), kind: KindShape, text: "a string result"},
		{name: "native histogram", body: vector(`{"metric":{},"histogram":[` + ts + `,{"count":"2","sum":"3","buckets":[[0,"0","1","2"]]}]}`),
			kind: KindShape, text: "native histogram"},

		{name: "syntax error", code: 400, body: apiError("bad_data", `invalid parameter \"query\": 1:5: parse error: unexpected end of input`),
			kind: KindInvalid, text: `invalid PromQL: query "q": invalid parameter "query": 1:5: parse error: unexpected end of input`},
		{name: "execution error", code: 422, body: apiError("execution", "many-to-many matching not allowed"),
			kind: KindExecution, text: "many-to-many matching not allowed"},
		{name: "server-side timeout", code: 503, body: apiError("timeout", "query timed out in expression evaluation"),
			kind: KindTimeout, text: "prometheus query timed out"},
		{name: "unavailable with a JSON body", code: 503, body: apiError("unavailable", "TSDB not ready"),
			kind: KindUnavailable, text: "unavailable: TSDB not ready"},
		{name: "unauthorized", code: 401, body: "Unauthorized", kind: KindRejected, text: "client error: 401"},
		{name: "proxy error", code: 502, body: "<html>bad gateway</html>", kind: KindUnavailable, text: "server error: 502"},
		{name: "not a Prometheus API", code: 200, body: "<html>hello</html>", kind: KindBadResponse, text: "unexpected response from prometheus"},
		{name: "status error with 200", code: 200, body: apiError("execution", "odd"), kind: KindExecution, text: "odd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProm()
			code := tc.code
			if code == 0 {
				code = http.StatusOK
			}
			f.set("q", code, tc.body)
			srv := httptest.NewServer(f)
			defer srv.Close()
			obs := queryOne(t, newSource(t, config.Prometheus{Address: srv.URL}), "q")
			if tc.kind == "" {
				require.NoError(t, obs.Err)
				assert.Equal(t, tc.want.Value, obs.Value)
				assert.True(t, tc.want.Timestamp.Equal(obs.Timestamp), "timestamp %v", obs.Timestamp)
				assert.Equal(t, tc.want.PerPod, obs.PerPod)
				require.Len(t, obs.Samples, len(tc.want.Samples))
				for i, s := range tc.want.Samples {
					assert.Equal(t, s.Pod, obs.Samples[i].Pod)
					assert.Equal(t, s.Value, obs.Samples[i].Value)
					assert.True(t, s.Timestamp.Equal(obs.Samples[i].Timestamp), "sample timestamp %v", obs.Samples[i].Timestamp)
				}
				return
			}
			var qe *QueryError
			require.ErrorAs(t, obs.Err, &qe)
			assert.Equal(t, tc.kind, qe.Kind)
			assert.Contains(t, obs.Err.Error(), tc.text)
			assert.Contains(t, obs.Err.Error(), `query "q"`, "the error names the query")
			assert.Equal(t, tc.noData, errors.Is(obs.Err, recommender.ErrNoData))
		})
	}
}

// The Summary of a failure is what a Warning Event shows: it must not
// change from one tick to the next, or the Event is recorded again.
func TestPrometheusErrorSummaryIsStable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		a, b      string
		summary   string
		sameError bool
	}{
		{"series counts differ", vector(sample("", "1"), sample("", "2")), vector(sample("", "1"), sample("", "2"), sample("", "3")),
			`unusable result: several series without a "pod" label: aggregate to one value with sum(...) or to one series per pod with sum by (pod) (...)`, false},
		{"NaN then +Inf", vector(sample("", "NaN")), vector(sample("", "+Inf")), "not a number: the result is NaN or infinite (a division by zero?)", false},
		{"empty", vector(), vector(), "no data: empty result", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeProm()
			srv := httptest.NewServer(f)
			defer srv.Close()
			p := newSource(t, config.Prometheus{Address: srv.URL})
			var errs [2]*QueryError
			for i, body := range []string{tc.a, tc.b} {
				f.set("q", 200, body)
				require.ErrorAs(t, queryOne(t, p, "q").Err, &errs[i])
			}
			assert.Equal(t, tc.summary, errs[0].Summary())
			assert.Equal(t, errs[0].Summary(), errs[1].Summary())
			assert.Equal(t, tc.sameError, errs[0].Error() == errs[1].Error())
		})
	}
}

func TestPrometheusSyntaxErrorSummaryNamesTheParseError(t *testing.T) {
	f := newFakeProm()
	f.set("sum(", 400, apiError("bad_data", `invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis`))
	srv := httptest.NewServer(f)
	defer srv.Close()
	var qe *QueryError
	require.ErrorAs(t, queryOne(t, newSource(t, config.Prometheus{Address: srv.URL}), "sum(").Err, &qe)
	assert.Equal(t, `invalid PromQL: invalid parameter "query": 1:5: parse error: unclosed left parenthesis`, qe.Summary())
}

func TestPrometheusQueriesAtOneInstant(t *testing.T) {
	f := newFakeProm()
	srv := httptest.NewServer(f)
	defer srv.Close()
	p := newSource(t, config.Prometheus{Address: srv.URL})
	p.Query(context.Background(), promql("a", "b", "c"))
	assert.Equal(t, []string{ts[:10], ts[:10], ts[:10]}, f.times, "every query of a tick is evaluated at the same instant")
}

func TestPrometheusRunsEachDistinctQueryOnceUnderTheLimit(t *testing.T) {
	f := newFakeProm()
	f.delay = 50 * time.Millisecond
	srv := httptest.NewServer(f)
	defer srv.Close()
	p := newSource(t, config.Prometheus{Address: srv.URL, Concurrency: 2})
	queries := []string{"a", "b", "a", "c", "d", "e", "f", "b", "a"}
	out := p.Query(context.Background(), promql(queries...))
	assert.Len(t, out, 6)
	for _, q := range queries {
		require.Contains(t, out, Query{PromQL: q})
		assert.NoError(t, out[Query{PromQL: q}].Err)
		assert.Equal(t, 1, f.calls[q], "query %s runs once", q)
	}
	assert.LessOrEqual(t, f.maxFlight.Load(), int32(2), "at most `concurrency` queries in flight")
	assert.Equal(t, int32(2), f.maxFlight.Load(), "queries do run concurrently")
}

func TestPrometheusTimeouts(t *testing.T) {
	t.Run("per query", func(t *testing.T) {
		f := newFakeProm()
		f.delay = 5 * time.Second
		srv := httptest.NewServer(f)
		defer srv.Close()
		p := newSource(t, config.Prometheus{Address: srv.URL, Timeout: 200 * time.Millisecond, Concurrency: 4})
		start := time.Now()
		out := p.Query(context.Background(), promql("a", "b"))
		assert.Less(t, time.Since(start), 2*time.Second, "slow queries end at their timeout")
		for _, q := range []string{"a", "b"} {
			var qe *QueryError
			require.ErrorAs(t, out[Query{PromQL: q}].Err, &qe)
			assert.Equal(t, KindTimeout, qe.Kind)
			assert.Contains(t, qe.Error(), "no answer within 200ms")
		}
	})
	t.Run("the tick's deadline bounds queued queries", func(t *testing.T) {
		f := newFakeProm()
		f.delay = 5 * time.Second
		srv := httptest.NewServer(f)
		defer srv.Close()
		p := newSource(t, config.Prometheus{Address: srv.URL, Timeout: 10 * time.Second, Concurrency: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		out := p.Query(ctx, promql("a", "b", "c"))
		assert.Less(t, time.Since(start), 2*time.Second)
		require.Len(t, out, 3, "every query has an entry")
		for q, obs := range out {
			var qe *QueryError
			require.ErrorAs(t, obs.Err, &qe, q)
			assert.Equal(t, KindTimeout, qe.Kind, q)
		}
	})
}

func TestPrometheusUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	reg := prometheus.NewRegistry()
	p := newSource(t, config.Prometheus{Address: "http://" + addr})
	p.Metrics = NewPrometheusMetrics(reg)
	obs := queryOne(t, p, "up")
	var qe *QueryError
	require.ErrorAs(t, obs.Err, &qe)
	assert.Equal(t, KindUnavailable, qe.Kind)
	assert.Equal(t, "prometheus unavailable", qe.Summary())
	assert.Contains(t, qe.Error(), "connection refused")
	assert.Equal(t, 1.0, gathered(t, reg, "spinscale_prometheus_query_failures_total", "unavailable"))
	assert.Equal(t, 0.0, gathered(t, reg, "spinscale_prometheus_query_failures_total", "invalid"), "every kind is exported from the start")
	assert.Equal(t, 1.0, gathered(t, reg, "spinscale_prometheus_query_duration_seconds", ""))
}

// gathered returns a counter's value, or a histogram's sample count.
func gathered(t *testing.T, reg *prometheus.Registry, name, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{kind=%q} not found", name, kind)
	return 0
}

func TestPrometheusAuthAndHeaders(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("first\n"), 0o600))
	passwordFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(passwordFile, []byte("s3cret\n"), 0o600))

	t.Run("bearer token, re-read when the file changes", func(t *testing.T) {
		f := newFakeProm()
		srv := httptest.NewServer(f)
		defer srv.Close()
		p := newSource(t, config.Prometheus{Address: srv.URL, BearerTokenFile: tokenFile,
			Headers: map[string]string{"x-scope-orgid": "tenant-1"}})
		queryOne(t, p, "up")
		require.NoError(t, os.WriteFile(tokenFile, []byte("second-token\n"), 0o600))
		queryOne(t, p, "up")
		require.Len(t, f.headers, 2)
		assert.Equal(t, "Bearer first", f.headers[0].Get("Authorization"))
		assert.Equal(t, "Bearer second-token", f.headers[1].Get("Authorization"))
		assert.Equal(t, "tenant-1", f.headers[0].Get("X-Scope-OrgID"))
	})
	t.Run("a token that cannot be read again fails the query, naming the setting", func(t *testing.T) {
		f := newFakeProm()
		srv := httptest.NewServer(f)
		defer srv.Close()
		rotating := filepath.Join(dir, "rotating")
		require.NoError(t, os.WriteFile(rotating, []byte("first\n"), 0o600))
		p := newSource(t, config.Prometheus{Address: srv.URL, BearerTokenFile: rotating})
		require.NoError(t, queryOne(t, p, "up").Err)
		require.NoError(t, os.Remove(rotating))
		obs := queryOne(t, p, "up")
		var qe *QueryError
		require.ErrorAs(t, obs.Err, &qe)
		assert.Equal(t, KindUnavailable, qe.Kind)
		assert.Contains(t, qe.Error(), "prometheus.bearerTokenFile: ")
		assert.Contains(t, qe.Error(), rotating)
		assert.ErrorIs(t, obs.Err, os.ErrNotExist)
		assert.Len(t, f.headers, 1, "the request is not sent without its credentials")
	})
	t.Run("a Host header sets the request's host", func(t *testing.T) {
		var host atomic.Value
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host.Store(r.Host)
			_, _ = w.Write([]byte(vector(sample("", "1"))))
		}))
		defer srv.Close()
		p := newSource(t, config.Prometheus{Address: srv.URL, Headers: map[string]string{"host": "prometheus.example.com"}})
		require.NoError(t, queryOne(t, p, "up").Err)
		assert.Equal(t, "prometheus.example.com", host.Load())
	})
	t.Run("basic auth from a password file", func(t *testing.T) {
		f := newFakeProm()
		srv := httptest.NewServer(f)
		defer srv.Close()
		p := newSource(t, config.Prometheus{Address: srv.URL, BasicAuth: config.BasicAuth{Username: "spinscale", PasswordFile: passwordFile}})
		queryOne(t, p, "up")
		require.Len(t, f.headers, 1)
		r := &http.Request{Header: f.headers[0]}
		user, pw, ok := r.BasicAuth()
		require.True(t, ok)
		assert.Equal(t, "spinscale", user)
		assert.Equal(t, "s3cret", pw)
	})
}

func TestPrometheusTLS(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := newCA(t)
	clientCert, clientKey := writeLeaf(t, dir, "client", caCert, caKey)

	f := newFakeProm()
	srv := httptest.NewUnstartedServer(f)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	serverCA := filepath.Join(dir, "server-ca.pem")
	require.NoError(t, os.WriteFile(serverCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	for _, tc := range []struct {
		name string
		tls  config.TLS
		kind string
	}{
		{"CA and client certificate", config.TLS{CAFile: serverCA, CertFile: clientCert, KeyFile: clientKey}, ""},
		{"insecureSkipVerify with a client certificate", config.TLS{InsecureSkipVerify: true, CertFile: clientCert, KeyFile: clientKey}, ""},
		{"unknown server CA", config.TLS{CertFile: clientCert, KeyFile: clientKey}, KindUnavailable},
		{"no client certificate", config.TLS{CAFile: serverCA}, KindUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := queryOne(t, newSource(t, config.Prometheus{Address: srv.URL, TLS: tc.tls}), "up")
			if tc.kind == "" {
				assert.NoError(t, obs.Err)
				return
			}
			var qe *QueryError
			require.ErrorAs(t, obs.Err, &qe)
			assert.Equal(t, tc.kind, qe.Kind)
		})
	}
}

// TestPrometheusClientCertificateReload: a client certificate replaced on
// disk is used by the next query, without a restart.
func TestPrometheusClientCertificateReload(t *testing.T) {
	dir := t.TempDir()
	trusted, trustedKey := newCA(t)
	other, otherKey := newCA(t)
	goodCert, goodKey := writeLeaf(t, dir, "good", trusted, trustedKey)
	certFile, keyFile := writeLeaf(t, dir, "client", other, otherKey)

	srv := httptest.NewUnstartedServer(newFakeProm())
	pool := x509.NewCertPool()
	pool.AddCert(trusted)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the first, refused handshake is expected
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	p := newSource(t, config.Prometheus{Address: srv.URL, TLS: config.TLS{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}})
	require.Error(t, queryOne(t, p, "up").Err, "a certificate from an unknown CA is refused")
	for src, dst := range map[string]string{goodCert: certFile, goodKey: keyFile} {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, b, 0o600))
	}
	assert.NoError(t, queryOne(t, p, "up").Err, "the rotated certificate is used")
}

func TestNewPrometheusErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	missing := filepath.Join(dir, "missing")
	ok := config.Prometheus{Address: "http://prometheus:9090", Timeout: time.Second, PodLabel: "pod", Concurrency: 1}
	for _, tc := range []struct {
		name   string
		change func(*config.Prometheus)
		want   string
	}{
		{"empty address", func(c *config.Prometheus) { c.Address = "" }, "prometheus.address: required"},
		{"relative address", func(c *config.Prometheus) { c.Address = "prometheus:9090" }, "not an absolute http or https URL"},
		{"zero timeout", func(c *config.Prometheus) { c.Timeout = 0 }, "prometheus.timeout"},
		{"no pod label", func(c *config.Prometheus) { c.PodLabel = "" }, "prometheus.podLabel"},
		{"no concurrency", func(c *config.Prometheus) { c.Concurrency = 0 }, "prometheus.concurrency"},
		{"missing token file", func(c *config.Prometheus) { c.BearerTokenFile = missing }, "prometheus.bearerTokenFile: unable to read file " + missing},
		{"empty token file", func(c *config.Prometheus) { c.BearerTokenFile = empty }, "is empty"},
		{"bearer and basic auth", func(c *config.Prometheus) {
			c.BearerTokenFile, c.BasicAuth = empty, config.BasicAuth{Username: "u", PasswordFile: empty}
		}, "not both"},
		{"username without password", func(c *config.Prometheus) { c.BasicAuth.Username = "u" }, "set both or neither"},
		{"missing password file", func(c *config.Prometheus) { c.BasicAuth = config.BasicAuth{Username: "u", PasswordFile: missing} }, "prometheus.basicAuth.passwordFile"},
		{"missing CA", func(c *config.Prometheus) { c.TLS.CAFile = missing }, "prometheus.tls.caFile"},
		{"CA not PEM", func(c *config.Prometheus) { c.TLS.CAFile = notPEM }, "prometheus.tls.caFile: unable to use specified CA cert file " + notPEM},
		{"certificate without key", func(c *config.Prometheus) { c.TLS.CertFile = notPEM }, "set both or neither"},
		{"bad key pair", func(c *config.Prometheus) { c.TLS.CertFile, c.TLS.KeyFile = notPEM, notPEM }, "prometheus.tls.certFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			_, err := NewPrometheus(cfg, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := NewPrometheus(ok, nil)
	assert.NoError(t, err)
}

func TestMilli(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want int64
		ok   bool
	}{
		{0, 0, true}, {1, 1000, true}, {0.0004, 0, true}, {0.0006, 1, true}, {-2.5, -2500, true},
		{1e30, 1<<63 - 1, true}, {-1e30, -1 << 63, true},
	} {
		got, ok := milli(tc.in)
		assert.Equal(t, tc.ok, ok, "%v", tc.in)
		assert.Equal(t, tc.want, got, "%v", tc.in)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// writeLeaf writes a client certificate signed by the CA and its key.
func writeLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// promql are queries on the default server without parameters.
func promql(qs ...string) []Query {
	out := make([]Query, len(qs))
	for i, q := range qs {
		out[i] = Query{PromQL: q}
	}
	return out
}
