// Command custom-metrics-adapter serves custom.metrics.k8s.io (v1beta2 and
// v1beta1) and external.metrics.k8s.io (v1beta1) behind kube-apiserver's
// aggregation layer for Spinscale's local test cluster. It holds no data of
// its own: tests write every value over the adapter's HTTPS port.
//
// Custom metrics come from the sample provider of
// sigs.k8s.io/custom-metrics-apiserver (its test-adapter), with its write
// routes:
//
//	POST /write-metrics/namespaces/NS/RESOURCE/NAME/METRIC   (e.g. RESOURCE pods, services, deployments.apps)
//	POST /write-metrics/RESOURCE/NAME/METRIC                 (cluster-scoped objects)
//
// The sample's external metrics are fixed values, so external metrics are
// served from a store of this command's own:
//
//	POST /write-external-metrics/namespaces/NS/METRIC[?labels=k=v,...]
//
// The body of every write is a JSON quantity ("250m", 3) and the request
// needs Content-Type: application/json. The routes share the authentication
// and authorization of the metrics APIs (delegated to kube-apiserver), so a
// client presents a certificate the cluster trusts, such as the admin one.
// Values live in memory: a restarted adapter serves nothing until they are
// written again.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/emicklei/go-restful/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"

	"sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver/metrics"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	sample "sigs.k8s.io/custom-metrics-apiserver/test-adapter/provider"
)

func main() {
	logs.InitLogs()
	defer logs.FlushLogs()
	if err := run(); err != nil {
		klog.ErrorS(err, "custom-metrics-adapter")
		logs.FlushLogs()
		os.Exit(1)
	}
}

func run() error {
	a := &basecmd.AdapterBase{Name: "custom-metrics-adapter"}
	logs.AddFlags(a.Flags())
	if err := a.Flags().Parse(os.Args[1:]); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	client, err := a.DynamicClient()
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	mapper, err := a.RESTMapper()
	if err != nil {
		return fmt.Errorf("REST mapper: %w", err)
	}
	custom, customWrites := sample.NewFakeProvider(client, mapper)
	external := &externalStore{values: map[externalKey]externalValue{}}
	a.WithCustomMetrics(custom)
	a.WithExternalMetrics(external)
	if err := metrics.RegisterMetrics(legacyregistry.Register); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	server, err := a.Server()
	if err != nil {
		return fmt.Errorf("build server: %w", err)
	}
	// The write routes sit behind the same filters (authentication,
	// authorization) as the metrics APIs, on a container of their own: the
	// server's builds its OpenAPI document from every route it holds, and
	// the sample's routes have no operation names.
	writes := restful.NewContainer()
	writes.Add(customWrites)
	writes.Add(external.webService())
	mux := server.GenericAPIServer.Handler.NonGoRestfulMux
	mux.HandlePrefix("/write-metrics/", writes)
	mux.HandlePrefix("/write-external-metrics/", writes)
	ctx := genericapiserver.SetupSignalContext()
	klog.InfoS("serving custom.metrics.k8s.io and external.metrics.k8s.io")
	if err := server.GenericAPIServer.PrepareRun().RunWithContext(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

type externalKey struct {
	namespace, metric, labels string
}

type externalValue struct {
	labels    labels.Set
	value     resource.Quantity
	timestamp metav1.Time
}

// externalStore is an external metrics provider whose values are written
// through its web service; a write replaces the value of the same
// namespace, metric and labels.
type externalStore struct {
	mu     sync.RWMutex
	values map[externalKey]externalValue
}

var _ provider.ExternalMetricsProvider = (*externalStore)(nil)

func (s *externalStore) webService() *restful.WebService {
	ws := new(restful.WebService)
	ws.Path("/write-external-metrics")
	ws.Route(ws.POST("/namespaces/{namespace}/{metric}").To(s.write).
		Param(ws.QueryParameter("labels", "labels of the series, k=v,...")).
		Param(ws.BodyParameter("value", "the value, a JSON quantity")))
	return ws
}

func (s *externalStore) write(req *restful.Request, resp *restful.Response) {
	ns, metric := req.PathParameter("namespace"), req.PathParameter("metric")
	set := labels.Set{}
	if sel := req.QueryParameter("labels"); sel != "" {
		var err error
		if set, err = labels.ConvertSelectorToLabelsMap(sel); err != nil {
			writeError(resp, http.StatusBadRequest, fmt.Errorf("labels %q: %w", sel, err))
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(req.Request.Body, 1<<10))
	if err != nil {
		writeError(resp, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		return
	}
	var q resource.Quantity
	if err := json.Unmarshal(body, &q); err != nil {
		writeError(resp, http.StatusBadRequest, fmt.Errorf("value %q is not a JSON quantity: %w", body, err))
		return
	}
	s.mu.Lock()
	s.values[externalKey{ns, metric, set.String()}] = externalValue{labels: set, value: q, timestamp: metav1.Now()}
	s.mu.Unlock()
	klog.V(2).InfoS("external metric written", "namespace", ns, "metric", metric, "labels", set.String(), "value", q.String())
}

func writeError(resp *restful.Response, code int, err error) {
	if werr := resp.WriteErrorString(code, err.Error()+"\n"); werr != nil {
		klog.ErrorS(werr, "write error response")
	}
}

// GetExternalMetric returns every series of the metric in the namespace
// whose labels match the selector; none is an empty list, as with the
// sample adapter.
func (s *externalStore) GetExternalMetric(_ context.Context, namespace string, sel labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	items := []external_metrics.ExternalMetricValue{}
	for k, v := range s.values {
		if k.namespace != namespace || k.metric != info.Metric || !sel.Matches(v.labels) {
			continue
		}
		items = append(items, external_metrics.ExternalMetricValue{
			MetricName: k.metric, MetricLabels: map[string]string(v.labels),
			Timestamp: v.timestamp, Value: v.value,
		})
	}
	slices.SortFunc(items, func(a, b external_metrics.ExternalMetricValue) int {
		return strings.Compare(labels.Set(a.MetricLabels).String(), labels.Set(b.MetricLabels).String())
	})
	return &external_metrics.ExternalMetricValueList{Items: items}, nil
}

// ListAllExternalMetrics names every metric written so far.
func (s *externalStore) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for k := range s.values {
		if !slices.Contains(names, k.metric) {
			names = append(names, k.metric)
		}
	}
	slices.Sort(names)
	out := make([]provider.ExternalMetricInfo, 0, len(names))
	for _, n := range names {
		out = append(out, provider.ExternalMetricInfo{Metric: n})
	}
	return out
}
