package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"

	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

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
	// servers are the named servers of config prometheus.servers, which
	// share this source's Metrics and clock.
	servers map[string]*Prometheus
}

var _ QuerySource = (*Prometheus)(nil)

// NewPrometheus builds the source from config: address, per-query timeout,
// bearer token or basic auth (secrets read from files, re-read on every
// request), TLS and extra headers. Settings that fail Validate or
// CheckFiles are refused with their messages: these are the rules the
// configuration was loaded with.
func NewPrometheus(cfg config.Prometheus, log *zap.Logger) (*Prometheus, error) {
	if err := errors.Join(cfg.Validate(), cfg.CheckFiles()); err != nil {
		return nil, err
	}
	if cfg.Address == "" {
		return nil, errors.New("prometheus.address: required for the Prometheus source")
	}
	if log == nil {
		log = zap.NewNop()
	}
	p, err := newServer(cfg, cfg.Key(""), log)
	if err != nil {
		return nil, err
	}
	p.servers = map[string]*Prometheus{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Servers)) {
		s, _ := cfg.Server(name)
		if p.servers[name], err = newServer(s, cfg.Key(name), log.With(zap.String("server", name))); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newServer builds the client of one server, whose settings are under the
// configuration key `key`.
func newServer(cfg config.Prometheus, key string, log *zap.Logger) (*Prometheus, error) {
	rt, err := newTransport(cfg, key)
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", cfg.Address, err)
	}
	client, err := promapi.NewClient(promapi.Config{Address: cfg.Address, RoundTripper: rt})
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
func (p *Prometheus) Query(ctx context.Context, queries []Query) map[Query]recommender.Observation {
	distinct := slices.CompactFunc(slices.SortedFunc(slices.Values(queries), compareQueries), func(a, b Query) bool { return a == b })
	results := make([]recommender.Observation, len(distinct))
	ran := make([]bool, len(distinct))
	at := p.now()
	// Each piece writes only its own index: no lock is needed.
	workqueue.ParallelizeUntil(ctx, p.concurrency, len(distinct), func(i int) {
		q := distinct[i]
		server := p
		if q.Server != "" {
			if server = p.servers[q.Server]; server == nil {
				results[i], ran[i] = p.failed(p.Metrics, &QueryError{Kind: KindInvalid, Query: q.PromQL,
					Detail: fmt.Sprintf("no server %q in prometheus.servers", q.Server)}, 0), true
				return
			}
		}
		results[i], ran[i] = server.query(withParams(ctx, q.Params), q.PromQL, at, p.Metrics), true
	})
	out := make(map[Query]recommender.Observation, len(distinct))
	for i, q := range distinct {
		if !ran[i] {
			results[i] = p.notRun(ctx, q.PromQL)
		}
		out[q] = results[i]
	}
	return out
}

func compareQueries(a, b Query) int {
	return cmp.Or(cmp.Compare(a.Server, b.Server), cmp.Compare(a.Params, b.Params), cmp.Compare(a.PromQL, b.PromQL))
}

// query runs one instant query on this server and maps its result; m
// records it (the source's Metrics, shared by its servers).
func (p *Prometheus) query(ctx context.Context, q string, at time.Time, m *PrometheusMetrics) recommender.Observation {
	if ctx.Err() != nil {
		return p.notRun(ctx, q)
	}
	qctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
	v, warnings, infos, err := p.api.Query(qctx, q, at, promv1.WithTimeout(p.timeout))
	took := time.Since(start)
	if len(warnings) > 0 || len(infos) > 0 {
		p.log.Debug("prometheus annotations", zap.String("query", q), zap.Strings("warnings", warnings), zap.Strings("infos", infos))
	}
	obs := QueryObservation(q, p.podLabel, v, err)
	qe := (*QueryError)(nil)
	if errors.As(obs.Err, &qe) {
		if err != nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
			// The source's own limit: the client saw only a cancelled
			// request.
			qe.Kind, qe.Detail = KindTimeout, fmt.Sprintf("no answer within %s", p.timeout)
		}
		if qe.Kind == KindTimeout && ctx.Err() != nil {
			qe.Detail = "the tick ended first (" + ctx.Err().Error() + ")"
		}
		return p.failed(m, qe, took)
	}
	if m != nil {
		m.QueryDuration.Observe(took.Seconds())
	}
	return obs
}

// notRun is a query whose turn came after the tick's deadline.
func (p *Prometheus) notRun(ctx context.Context, q string) recommender.Observation {
	return p.failed(p.Metrics, &QueryError{Kind: KindTimeout, Query: q, Detail: fmt.Sprintf("not run: the tick ended first (%v)", ctx.Err())}, 0)
}

func (p *Prometheus) failed(m *PrometheusMetrics, qe *QueryError, took time.Duration) recommender.Observation {
	if m != nil {
		if took > 0 {
			m.QueryDuration.Observe(took.Seconds())
		}
		m.Failures.WithLabelValues(qe.Kind).Inc()
	}
	p.log.Debug("prometheus query failed", zap.String("query", qe.Query), zap.String("kind", qe.Kind), zap.Error(qe))
	return recommender.Observation{Err: qe}
}
