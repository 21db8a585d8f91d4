// Command demo-exporter emulates the request counter of a Spin app for
// hack/demo-rps.sh: it serves spin_http_requests_total{app, pod} for every
// Running, Ready pod of the app, and spreads a total request rate, read
// from a file the demo rewrites, evenly over them, as a load balancer would.
//
// Each sample carries its own timestamp and each counter grows by its pod's
// share times the time since its previous sample, so Prometheus' rate()
// reads the configured rate exactly.
//
// Usage: go run ./hack/demo-exporter --kubeconfig FILE --namespace NS --app APP --listen 127.0.0.1:PORT --rps-file FILE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	namespace := flag.String("namespace", "default", "the app's namespace")
	app := flag.String("app", "", "the app: pods labelled core.spinkube.dev/app-name=APP")
	listen := flag.String("listen", "127.0.0.1:9464", "address to serve /metrics on")
	rpsFile := flag.String("rps-file", "", "file holding the total requests per second (re-read every second)")
	flag.Parse()
	if *app == "" || *rpsFile == "" {
		log.Fatal("demo-exporter: --app and --rps-file are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("demo-exporter: load kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("demo-exporter: kubernetes client: %v", err)
	}

	e := &exporter{app: *app, counters: map[string]float64{}, last: map[string]time.Time{}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		for {
			e.refresh(ctx, client, *namespace, *rpsFile)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	srv := &http.Server{Addr: *listen, Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("demo-exporter: %v", err)
	}
}

type exporter struct {
	app string

	mu       sync.Mutex
	total    float64
	pods     []string
	counters map[string]float64
	last     map[string]time.Time
}

// refresh reads the total rate and lists the pods that get traffic.
func (e *exporter) refresh(ctx context.Context, client kubernetes.Interface, ns, rpsFile string) {
	total := -1.0
	if b, err := os.ReadFile(rpsFile); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && v >= 0 {
			total = v
		}
	}
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + e.app})
	if err != nil {
		if ctx.Err() == nil {
			log.Printf("demo-exporter: list pods: %v", err)
		}
		return
	}
	var pods []string
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				pods = append(pods, p.Name)
			}
		}
	}
	sort.Strings(pods)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pods = pods
	if total >= 0 {
		e.total = total
	}
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	now := time.Now().Truncate(time.Millisecond)
	var b strings.Builder
	b.WriteString("# HELP spin_http_requests_total Requests handled by the Spin app.\n# TYPE spin_http_requests_total counter\n")
	e.mu.Lock()
	for _, pod := range e.pods {
		if last, ok := e.last[pod]; ok {
			e.counters[pod] += e.total / float64(len(e.pods)) * now.Sub(last).Seconds()
		}
		e.last[pod] = now
		fmt.Fprintf(&b, "spin_http_requests_total{app=%q,pod=%q} %s %d\n", e.app, pod,
			strconv.FormatFloat(e.counters[pod], 'f', -1, 64), now.UnixMilli())
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}
