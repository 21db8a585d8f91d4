package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/spinscale/spinscale/internal/activator"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/httpstats"
)

const activatorUsage = `Usage: autoscaler activator [flags]

Runs the HTTP activator: a reverse proxy to put between an ingress and the
Spin apps. It routes each request by host and path prefix (the apps'
spinscale.dev/http-* annotations) straight to a ready pod of the app's
EndpointSlices, holds requests for an app with no ready pod until one turns
Ready, and streams per-app request counts to the controller on
` + httpstats.StreamPath + ` of the admin address (also /healthz, /readyz, /metrics).

Flags:
`

// activatorFlags are the activator's settings, checked by validate.
type activatorFlags struct {
	listen, adminListen, kubeconfig, name, addressMap, logLevel, logFormat string
	namespaces                                                             []string
	queueSize                                                              int
	queueTimeout, drainTimeout                                             time.Duration
}

func (f *activatorFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.listen, "listen", ":8080", "address the proxy listens on (HTTP/1.1 and h2c)")
	fs.StringVar(&f.adminListen, "admin-listen", ":9090", "address of /healthz, /readyz, /metrics and the stats stream "+httpstats.StreamPath)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	fs.StringSliceVar(&f.namespaces, "namespaces", nil, "namespaces whose apps are routed, comma-separated (default: all)")
	fs.IntVar(&f.queueSize, "queue-size", activator.DefaultQueueSize, "requests held per app while it has no ready pod, unless the app sets spinscale.dev/http-queue-size; 1..100000")
	fs.DurationVar(&f.queueTimeout, "queue-timeout", activator.DefaultQueueTimeout, "how long a held request waits for a ready pod before a 503, unless the app sets spinscale.dev/http-queue-timeout; 1s..10m")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long requests in flight or held get to finish")
	fs.StringVar(&f.name, "name", "", "this replica's name in its stats reports (default: $POD_NAME, else the hostname)")
	fs.StringVar(&f.addressMap, "endpoint-address-map", "", "for clusters whose pod addresses are reached under another prefix: comma-separated CIDR=CIDR rewrites of endpoint addresses before dialing, same prefix length on both sides (e.g. 10.244.0.0/16=127.244.0.0/16)")
	fs.StringVar(&f.logLevel, "log-level", config.LogLevelInfo, "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", config.LogFormatJSON, "log format: json, console")
}

// validate checks the flags and returns the address map; every problem is
// reported at once.
func (f *activatorFlags) validate() (activator.AddressMap, error) {
	var errs []error
	for _, a := range []struct{ flag, v string }{{"--listen", f.listen}, {"--admin-listen", f.adminListen}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an address host:port (e.g. :8080): %w", a.flag, a.v, err))
		}
	}
	for _, ns := range f.namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if f.queueSize < 1 || f.queueSize > 100000 {
		errs = append(errs, fmt.Errorf("--queue-size: %d is out of range: allowed 1 to 100000", f.queueSize))
	}
	if f.queueTimeout < time.Second || f.queueTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--queue-timeout: %s is out of range: allowed 1s to 10m", f.queueTimeout))
	}
	if f.drainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout: %s must not be negative", f.drainTimeout))
	}
	m, err := activator.ParseAddressMap(f.addressMap)
	if err != nil {
		errs = append(errs, fmt.Errorf("--endpoint-address-map: %w", err))
	}
	if f.logLevel != config.LogLevelDebug && f.logLevel != config.LogLevelInfo && f.logLevel != config.LogLevelWarn && f.logLevel != config.LogLevelError {
		errs = append(errs, fmt.Errorf("--log-level: %q is not a level: allowed debug, info, warn, error", f.logLevel))
	}
	if f.logFormat != config.LogFormatJSON && f.logFormat != config.LogFormatConsole {
		errs = append(errs, fmt.Errorf("--log-format: %q is not a format: allowed json, console", f.logFormat))
	}
	return m, errors.Join(errs...)
}

// replicaName is --name, else $POD_NAME, else the hostname.
func replicaName(flag string) string {
	if flag != "" {
		return flag
	}
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

// runActivator implements `autoscaler activator`. Exit codes: 0 after a
// clean drain, 1 on a runtime failure, 2 on bad flags.
func runActivator(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("activator", pflag.ContinueOnError)
	var f activatorFlags
	f.register(fs)
	if code, ok := parseCommandFlags(fs, activatorUsage, args, stdout, stderr); !ok {
		return code
	}
	addrMap, err := f.validate()
	if err != nil {
		fmt.Fprintf(stderr, "activator: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nactivator: "))
		return exitUsage
	}
	log, err := newLogger(config.Log{Level: f.logLevel, Format: f.logFormat}, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "activator:", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serveActivator(ctx, f, addrMap, log); err != nil {
		log.Error("activator stopped", zap.Error(err))
		return exitFailure
	}
	return exitOK
}

func serveActivator(ctx context.Context, f activatorFlags, addrMap activator.AddressMap, log *zap.Logger) error {
	restCfg, _, err := clientConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "spinscale-activator"
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	name := replicaName(f.name)
	x, err := activator.New(activator.Options{
		Name: name, Logger: log, QueueSize: f.queueSize, QueueTimeout: f.queueTimeout, AddressMap: addrMap,
	})
	if err != nil {
		return err
	}
	// Listen first: /healthz answers and /readyz says why it is not ready
	// while the caches sync.
	proxyLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	adminLn, err := net.Listen("tcp", f.adminListen)
	if err != nil {
		_ = proxyLn.Close()
		return fmt.Errorf("listen on %s: %w", f.adminListen, err)
	}
	log.Info("activator starting", zap.String("name", name), zap.Strings("namespaces", f.namespaces),
		zap.Int("queueSize", f.queueSize), zap.Duration("queueTimeout", f.queueTimeout))
	// The informers outlive the drain: a request held when it starts is
	// still released when its pod turns ready.
	informersCtx, stopInformers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInformers()
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- x.Serve(serveCtx, proxyLn, adminLn, f.drainTimeout) }()
	started := make(chan error, 1)
	go func() { started <- x.Start(informersCtx, client, f.namespaces, 2*time.Minute) }()
	select {
	case err := <-started:
		if err != nil {
			cancel()
			return errors.Join(err, <-served)
		}
		return <-served
	case err := <-served: // stopped before the caches synced
		stopInformers()
		<-started
		return err
	}
}
