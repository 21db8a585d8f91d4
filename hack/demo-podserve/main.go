// Command demo-podserve gives the kwok pods of hack/demo-zero.sh a real HTTP
// server (internal/podserve): for each Running, Ready pod of the app it
// listens on the pod's address mapped onto loopback, on the container port
// named "http", and answers every request with the pod's name and the path.
// It stops listening when the pod stops being Ready or goes away. Its log
// (console, one line per pod served or no longer served) goes to stderr.
//
// Usage: go run ./hack/demo-podserve --kubeconfig FILE --namespace NS --selector SELECTOR --address-map 10.244.0.0/16=127.250.0.0/16
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spinscale/spinscale/internal/podserve"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	namespace := flag.String("namespace", "", "the pods' namespace")
	selector := flag.String("selector", "", "label selector of the pods to serve (empty: every pod of the namespace)")
	addressMap := flag.String("address-map", "10.244.0.0/16=127.244.0.0/16", "FROM=TO: pod addresses under FROM are served on the same host bits under TO (inside 127.0.0.0/8)")
	flag.Parse()
	if *namespace == "" {
		log.Fatal("demo-podserve: --namespace is required")
	}
	m, err := podserve.ParseAddressMap(*addressMap)
	if err != nil {
		log.Fatalf("demo-podserve: --address-map: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("demo-podserve: load kubeconfig %q: %v", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("demo-podserve: kubernetes client: %v", err)
	}

	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	logger := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.DebugLevel))
	defer func() { _ = logger.Sync() }()

	s, err := podserve.New(client, podserve.Config{Namespace: *namespace, Selector: *selector, Map: m, Log: logger})
	if err != nil {
		log.Fatalf("demo-podserve: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := s.Run(ctx); err != nil {
		log.Fatalf("demo-podserve: %v", err)
	}
}
