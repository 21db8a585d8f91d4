// Command demo-exporter emulates the request counter of a Spin app for
// hack/demo-rps.sh (internal/spinemu): it serves the app's requests as
// Traefik counts them, traefik_service_requests_total{service="<ns>-<app>-80@kubernetes"}
// (--shape traefik, the default), or per pod as an OpenTelemetry Collector
// exports Spin's own counter, spin_request_count_total{k8s_pod_name, ...}
// (--shape collector). The total request rate is read every second from a
// file the demo rewrites, and spread evenly over the app's Running, Ready
// pods, as a load balancer would.
//
// Usage: go run ./hack/demo-exporter --kubeconfig FILE --namespace NS --app APP --listen 127.0.0.1:PORT --rps-file FILE [--shape traefik|collector]
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spinscale/spinscale/internal/spinemu"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	namespace := flag.String("namespace", "default", "the app's namespace")
	app := flag.String("app", "", "the app: pods labelled core.spinkube.dev/app-name=APP")
	listen := flag.String("listen", "127.0.0.1:9464", "address to serve /metrics on")
	rpsFile := flag.String("rps-file", "", "file holding the total requests per second (re-read every second)")
	shapeName := flag.String("shape", string(spinemu.Traefik), "the series served: traefik (one counter for the app) or collector (one per pod)")
	flag.Parse()
	if *app == "" || *rpsFile == "" {
		log.Fatal("demo-exporter: --app and --rps-file are required")
	}
	shape, err := spinemu.ParseShape(*shapeName)
	if err != nil {
		log.Fatalf("demo-exporter: --shape: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("demo-exporter: load kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("demo-exporter: kubernetes client: %v", err)
	}

	e := spinemu.New(*namespace, *app, shape, 0)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		for {
			if rps, ok := readRate(*rpsFile); ok {
				e.SetRate(rps)
			}
			if err := e.Refresh(ctx, client); err != nil && ctx.Err() == nil {
				log.Printf("demo-exporter: %v", err)
			}
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

// readRate reads the total requests per second from the demo's file; false
// when it is missing or not a number >= 0 (the rate then stays as it was).
func readRate(name string) (float64, bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return v, err == nil && v >= 0
}
