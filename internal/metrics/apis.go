package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/workqueue"
	customapi "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	customclient "k8s.io/metrics/pkg/client/custom_metrics"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"

	"github.com/spinscale/spinscale/internal/recommender"
)

// This file reads the custom and external metrics APIs the way HPA does
// (pkg/controller/podautoscaler/metrics/client.go): Pods metrics with
// GetForObjects over the app's pod selector, Object metrics with
// GetForObject on the described object, External metrics with List, their
// values summed. The metric selector goes to the API as written.

// The API groups, as failures name them.
const (
	CustomMetricsAPI   = "custom.metrics.k8s.io"
	ExternalMetricsAPI = "external.metrics.k8s.io"
)

// APITimeout bounds one request to a metrics API.
const APITimeout = 5 * time.Second

// defaultAPIConcurrency is how many requests to the metrics APIs a tick
// has in flight at most.
const defaultAPIConcurrency = 8

// podMetricWindow is the window of a Pods sample whose adapter gives none:
// HPA's metricServerDefaultMetricWindow.
const podMetricWindow = time.Minute

// APIRead is one read of a metrics API. Apps whose metrics make the same
// read in one tick share one request.
type APIRead struct {
	// Source is SourcePods, SourceObject or SourceExternal.
	Source    recommender.SourceType
	Namespace string
	Metric    string
	// Selector is the metric selector as the annotation wrote it.
	Selector string
	// PodSelector is the app's pod selector (SourcePods).
	PodSelector string
	// APIVersion, Kind and Name are the described object (SourceObject).
	APIVersion, Kind, Name string
}

// APIReadOf is the read of a metrics-API metric of an app in namespace
// whose pods podSelector selects.
func APIReadOf(namespace, podSelector string, ms *recommender.MetricSpec) APIRead {
	r := APIRead{Source: ms.Source, Namespace: namespace, Metric: ms.Metric, Selector: ms.Selector}
	switch ms.Source {
	case recommender.SourcePods:
		r.PodSelector = podSelector
	case recommender.SourceObject:
		r.APIVersion, r.Kind, r.Name = ms.Object.APIVersion, ms.Object.Kind, ms.Object.Name
	}
	return r
}

// IsAPIMetric reports whether a metric is read from a metrics API.
func IsAPIMetric(t recommender.SourceType) bool {
	return t == recommender.SourcePods || t == recommender.SourceObject || t == recommender.SourceExternal
}

// API is the group the read goes to.
func (r APIRead) API() string {
	if r.Source == recommender.SourceExternal {
		return ExternalMetricsAPI
	}
	return CustomMetricsAPI
}

// String describes the read for messages.
func (r APIRead) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Source, r.Metric)
	switch r.Source {
	case recommender.SourcePods:
		if r.PodSelector != "" {
			fmt.Fprintf(&b, " of pods %q", r.PodSelector)
		}
	case recommender.SourceObject:
		if r.Namespace != "" {
			fmt.Fprintf(&b, " of %s %s/%s", r.Kind, r.Namespace, r.Name)
		} else {
			fmt.Fprintf(&b, " of %s %s", r.Kind, r.Name)
		}
	}
	if r.Selector != "" {
		fmt.Fprintf(&b, " with selector %q", r.Selector)
	}
	if r.Source != recommender.SourceObject && r.Namespace != "" {
		fmt.Fprintf(&b, " in namespace %s", r.Namespace)
	}
	return b.String()
}

// APISource reads the metrics APIs for a tick: each distinct read once,
// concurrently under a limit and within ctx's deadline. The map has an
// entry for every read.
type APISource interface {
	Read(ctx context.Context, reads []APIRead) map[APIRead]recommender.Observation
}

// MetricsAPIs reads custom.metrics.k8s.io and external.metrics.k8s.io.
type MetricsAPIs struct {
	Custom   customclient.CustomMetricsClient
	External externalclient.ExternalMetricsClient
	// Concurrency bounds the requests in flight; 0 is 8.
	Concurrency int
	Log         *zap.Logger

	invalidate func()
}

var _ APISource = (*MetricsAPIs)(nil)

// NewMetricsAPIs builds the clients from the controller's rest config as
// kube-controller-manager builds HPA's: the custom metrics client finds the
// served version by discovery. Invalidate forgets that version and the
// kinds' resources, so that an adapter installed, upgraded or removed later
// is seen; RunInvalidation does it every period, as HPA every sync period.
func NewMetricsAPIs(cfg *rest.Config, log *zap.Logger) (*MetricsAPIs, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = APITimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client for the metrics APIs: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	versions := customclient.NewAvailableAPIsGetter(dc)
	external, err := externalclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", ExternalMetricsAPI, err)
	}
	return &MetricsAPIs{Custom: customclient.NewForConfig(cfg, mapper, versions), External: external, Log: log,
		invalidate: func() { versions.Invalidate(); mapper.Reset() }}, nil
}

// Invalidate forgets what discovery found: the custom metrics API's
// version and the resources of kinds.
func (m *MetricsAPIs) Invalidate() {
	if m.invalidate != nil {
		m.invalidate()
	}
}

// RunInvalidation calls Invalidate every period until ctx ends.
func (m *MetricsAPIs) RunInvalidation(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Invalidate()
		}
	}
}

// Read implements APISource.
func (m *MetricsAPIs) Read(ctx context.Context, reads []APIRead) map[APIRead]recommender.Observation {
	seen := make(map[APIRead]bool, len(reads))
	distinct := make([]APIRead, 0, len(reads))
	for _, r := range reads {
		if !seen[r] {
			seen[r] = true
			distinct = append(distinct, r)
		}
	}
	results := make([]recommender.Observation, len(distinct))
	ran := make([]bool, len(distinct))
	concurrency := m.Concurrency
	if concurrency <= 0 {
		concurrency = defaultAPIConcurrency
	}
	workqueue.ParallelizeUntil(ctx, concurrency, len(distinct), func(i int) {
		defer func() {
			// A client that answers nothing (a nil list and no error)
			// must not take the controller down: the read fails.
			if p := recover(); p != nil {
				results[i] = recommender.Observation{Err: &APIError{API: distinct[i].API(), Kind: KindBadResponse, Read: distinct[i].String(),
					Detail: fmt.Sprintf("reading it panicked: %v", p)}}
			}
			ran[i] = true
		}()
		results[i] = m.read(distinct[i])
	})
	out := make(map[APIRead]recommender.Observation, len(distinct))
	for i, r := range distinct {
		if !ran[i] {
			results[i] = recommender.Observation{Err: &APIError{API: r.API(), Kind: KindTimeout, Read: r.String(),
				Detail: fmt.Sprintf("not run: the tick ended first (%v)", ctx.Err())}}
		}
		if results[i].Err != nil && m.Log != nil {
			m.Log.Debug("metrics API read failed", zap.Stringer("read", r), zap.Error(results[i].Err))
		}
		out[r] = results[i]
	}
	return out
}

// read makes one request and maps its answer as HPA does.
func (m *MetricsAPIs) read(r APIRead) recommender.Observation {
	metricSelector, err := labels.Parse(r.Selector)
	if err != nil {
		return recommender.Observation{Err: &APIError{API: r.API(), Kind: KindInvalid, Read: r.String(), Reason: "selector: " + err.Error()}}
	}
	switch r.Source {
	case recommender.SourcePods:
		return m.pods(r, metricSelector)
	case recommender.SourceObject:
		return m.object(r, metricSelector)
	case recommender.SourceExternal:
		return m.external(r, metricSelector)
	}
	return recommender.Observation{Err: fmt.Errorf("%w: %s is not a metrics API source", recommender.ErrNoData, r.Source)}
}

func (m *MetricsAPIs) pods(r APIRead, metricSelector labels.Selector) recommender.Observation {
	if m.Custom == nil {
		return notConfigured(r)
	}
	podSelector, err := labels.Parse(r.PodSelector)
	if err != nil {
		return recommender.Observation{Err: &APIError{API: r.API(), Kind: KindInvalid, Read: r.String(), Reason: "pod selector: " + err.Error()}}
	}
	list, err := m.Custom.NamespacedMetrics(r.Namespace).GetForObjects(schema.GroupKind{Kind: "Pod"}, podSelector, r.Metric, metricSelector)
	if err != nil {
		return recommender.Observation{Err: classifyAPI(r, err)}
	}
	return PodsObservation(r, list.Items)
}

// PodsObservation maps a Pods metric's values onto per-pod samples, joined
// to the app's pods by the engine; no value is a failed metric, as for
// HPA. Simulate feeds its scenarios' values through it.
func PodsObservation(r APIRead, items []customapi.MetricValue) recommender.Observation {
	if len(items) == 0 {
		return recommender.Observation{Err: &APIError{API: r.API(), Kind: KindEmpty, Read: r.String(), err: recommender.ErrNoData}}
	}
	obs := recommender.Observation{PerPod: true, Samples: make([]recommender.Sample, 0, len(items))}
	for i := range items {
		v := &items[i]
		window := podMetricWindow
		if v.WindowSeconds != nil {
			window = time.Duration(*v.WindowSeconds) * time.Second
		}
		obs.Samples = append(obs.Samples, recommender.Sample{Pod: v.DescribedObject.Name, Value: quantityMilli(v.Value),
			Timestamp: v.Timestamp.Time, Window: window})
	}
	return obs
}

func (m *MetricsAPIs) object(r APIRead, metricSelector labels.Selector) recommender.Observation {
	if m.Custom == nil {
		return notConfigured(r)
	}
	gvk := schema.FromAPIVersionAndKind(r.APIVersion, r.Kind)
	var (
		v   *customapi.MetricValue
		err error
	)
	if gvk.Kind == "Namespace" && gvk.Group == "" {
		// As HPA: a Namespace's metric is the app's own namespace's.
		v, err = m.Custom.RootScopedMetrics().GetForObject(gvk.GroupKind(), r.Namespace, r.Metric, metricSelector)
	} else {
		v, err = m.Custom.NamespacedMetrics(r.Namespace).GetForObject(gvk.GroupKind(), r.Name, r.Metric, metricSelector)
	}
	if err != nil {
		return recommender.Observation{Err: classifyAPI(r, err)}
	}
	return recommender.Observation{Value: quantityMilli(v.Value), Timestamp: v.Timestamp.Time}
}

func (m *MetricsAPIs) external(r APIRead, metricSelector labels.Selector) recommender.Observation {
	if m.External == nil {
		return notConfigured(r)
	}
	list, err := m.External.NamespacedMetrics(r.Namespace).List(r.Metric, metricSelector)
	if err != nil {
		return recommender.Observation{Err: classifyAPI(r, err)}
	}
	values := make([]int64, len(list.Items))
	var ts time.Time
	for i := range list.Items {
		values[i] = quantityMilli(list.Items[i].Value)
	}
	if len(list.Items) > 0 {
		ts = list.Items[0].Timestamp.Time
	}
	return ExternalObservation(r, values, ts)
}

// ExternalObservation sums an External metric's values (saturating, as
// HPA) with the first one's timestamp; no value is a failed metric.
func ExternalObservation(r APIRead, values []int64, ts time.Time) recommender.Observation {
	if len(values) == 0 {
		return recommender.Observation{Err: &APIError{API: r.API(), Kind: KindEmpty, Read: r.String(), err: recommender.ErrNoData}}
	}
	var sum int64
	for _, v := range values {
		if v > 0 && sum > math.MaxInt64-v {
			sum = math.MaxInt64
			break
		}
		sum += v
	}
	return recommender.Observation{Value: sum, Timestamp: ts}
}

// APIFailure is the observation of a read that failed with err, as the
// source classifies it. Simulate feeds its scenarios' failures through it.
func APIFailure(r APIRead, err error) recommender.Observation {
	return recommender.Observation{Err: classifyAPI(r, err)}
}

// quantityMilli is q in milli-units, saturating at the int64 range:
// Quantity.MilliValue wraps above about 9.2e15, which would turn a huge
// value (a scale-up signal) into zero or a negative one.
func quantityMilli(q resource.Quantity) int64 {
	f := q.AsApproximateFloat64()
	if math.Abs(f) < 9e15 {
		return q.MilliValue()
	}
	v, _ := milli(f)
	return v
}

// Milli converts a value to integer milli-units, rounding to the nearest;
// false for NaN and ±Inf.
func Milli(v float64) (int64, bool) { return milli(v) }

func notConfigured(r APIRead) recommender.Observation {
	return recommender.Observation{Err: &APIError{API: r.API(), Kind: KindUnavailable, Read: r.String(), Reason: "no client: the controller was started without access to the metrics APIs"}}
}

// KindNotFound: the API, or the metric in it, does not exist.
const KindNotFound = "not_found"

// apiPhrase is the stable first clause of an APIError's message.
var apiPhrase = map[string]string{
	KindTimeout:     "timed out",
	KindUnavailable: "unavailable",
	KindRejected:    "refused the request",
	KindNotFound:    "has no such metric or object",
	KindInvalid:     "cannot be asked",
	KindEmpty:       recommender.ErrNoData.Error(),
	KindBadResponse: "gave an unexpected response",
}

// APIError is a failed read of a metrics API. Summary, which Warning Events
// are keyed on, names the API and the kind of failure and stays the same
// while the failure does; the message adds the read and the details.
// An empty answer unwraps to recommender.ErrNoData.
type APIError struct {
	API  string
	Kind string
	Read string
	// Reason is stable for a given read and failure; Detail may change
	// from one tick to the next.
	Reason, Detail string
	err            error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", e.API, apiPhrase[e.Kind], e.Read)
	switch {
	case e.Detail != "":
		b.WriteString(": " + e.Detail)
	case e.Reason != "":
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

// Summary is the failure without the read and without what may change
// between ticks.
func (e *APIError) Summary() string {
	s := e.API + " " + apiPhrase[e.Kind]
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

func (e *APIError) Unwrap() error { return e.err }

// adapterDown is the reason of a registered API that is not served.
const adapterDown = "the APIService answers 503 or discovery lists no version of it: is its adapter running?"

// classifyAPI maps a client error onto an APIError: a missing or
// unregistered API (discovery finds no group or no version HPA knows, the
// aggregator answers 404 or 503), a refused request, a timeout.
func classifyAPI(r APIRead, err error) *APIError {
	e := &APIError{API: r.API(), Read: r.String(), Detail: err.Error(), err: err}
	var netErr net.Error
	var status apierrors.APIStatus
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err),
		errors.As(err, &netErr) && netErr.Timeout():
		e.Kind = KindTimeout
	case apierrors.IsNotFound(err) && strings.Contains(msg, "the server could not find the requested resource"):
		// kube-apiserver's own 404: nothing serves the group.
		e.Kind, e.Reason = KindUnavailable, fmt.Sprintf("%s is not served: is an APIService registered for it?", r.API())
	case apierrors.IsNotFound(err):
		e.Kind, e.Reason = KindNotFound, "is the metric served by the adapter, and its name and selector right?"
	case apierrors.IsServiceUnavailable(err), strings.Contains(msg, "no known available metric versions"):
		// One cause for one outage: the aggregator answers 503 while the
		// adapter is down, then drops the group's versions from discovery
		// once the APIService turns unavailable.
		e.Kind, e.Reason = KindUnavailable, adapterDown
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		e.Kind, e.Reason = KindRejected, fmt.Sprintf("%s: Spinscale's ClusterRole needs get and list on %s", apierrors.ReasonForError(err), r.API())
	case meta.IsNoMatchError(err) || strings.Contains(msg, "unable to map kind"):
		e.Kind, e.Reason = KindInvalid, fmt.Sprintf("no resource for kind %s (apiVersion %q) in the cluster", r.Kind, r.APIVersion)
	case strings.Contains(msg, "no custom metrics API"):
		// Discovery: the group is not registered.
		e.Kind, e.Reason = KindUnavailable, msg
	case errors.As(err, &status):
		e.Kind = KindUnavailable
		e.Reason = fmt.Sprintf("the API answered %d %s", status.Status().Code, apierrors.ReasonForError(err))
	case strings.Contains(msg, "didn't return"), strings.Contains(msg, "results when we asked for exactly one"):
		e.Kind, e.Reason = KindBadResponse, msg
	default:
		e.Kind = KindUnavailable
	}
	return e
}
