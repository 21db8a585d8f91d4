package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/controller"
	"github.com/spinscale/spinscale/internal/httpstats"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/status"
)

const runUsage = `Usage: autoscaler run [flags]

Runs the controller: every interval it decides a replica count for every
Deployment annotated spinscale.dev/enabled: "true" and patches its scale
subresource. With --dry-run it prints the decisions instead of writing
anything; with --once it runs a single tick and exits.

Flags:
`

// runRun implements `autoscaler run`. Exit codes: 0 after a clean shutdown,
// 1 on a runtime failure, 2 on bad flags or configuration.
func runRun(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	registerConfigFlags(fs)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	once := fs.Bool("once", false, "run one tick, print or act, and exit")
	output := fs.StringP("output", "o", "table", "dry-run output: table (like kubectl get hpa) or json (one object per app per tick)")
	if code, ok := parseCommandFlags(fs, runUsage, args, stdout, stderr); !ok {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "run: --output: %q is not an output format: allowed table, json\n", *output)
		return exitUsage
	}
	path, _ := fs.GetString(flagConfig)
	cfg, err := loadConfig(path, fs)
	if err != nil {
		fmt.Fprintln(stderr, "run:", err)
		return exitUsage
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "run:", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, *kubeconfig, *once, *output == "json", stdout, log); err != nil {
		log.Error("controller stopped", zap.Error(err))
		if errors.Is(err, errInvalidConfig) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

// errInvalidConfig marks a configuration error found after loadConfig.
var errInvalidConfig = errors.New("invalid configuration")

func serve(ctx context.Context, cfg config.Config, kubeconfig string, once, jsonOut bool, stdout io.Writer, log *zap.Logger) error {
	restCfg, namespace, err := clientConfig(kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "spinscale"
	// The clients share this rate limit's settings (each its own bucket).
	restCfg.QPS, restCfg.Burst = float32(cfg.Kube.QPS), cfg.Kube.Burst
	if cfg.LeaderElection.Namespace == "" {
		cfg.LeaderElection.Namespace = namespace
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	controller.RegisterClientGoMetrics(reg)

	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	mc, err := metricsclient.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("metrics client: %w", err)
	}
	// custom.metrics.k8s.io and external.metrics.k8s.io, as HPA reads them:
	// the custom metrics API's version is found by discovery, forgotten
	// every interval so that an adapter installed or changed later is seen.
	apis, err := metrics.NewMetricsAPIs(restCfg, log.Named("metrics-apis"))
	if err != nil {
		return fmt.Errorf("metrics APIs: %w", err)
	}
	go apis.RunInvalidation(ctx, max(cfg.Interval, 15*time.Second))

	// The controller records no Event in a global dry run.
	// Events go through a client of their own, so that the Event recorded
	// with each scale write does not take that write's place in the rate
	// limit: a surge's writes go at kube.qps, their Events beside them.
	eventClient, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client for events: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: eventClient.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	events := &actuator.Events{Recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "spinscale"})}
	var queries metrics.QuerySource
	if cfg.Prometheus.Address != "" {
		prom, err := metrics.NewPrometheus(cfg.Prometheus, log.Named("prometheus"))
		if err != nil {
			// loadConfig checked the settings and read their files: only a
			// file changed since can fail here, and that is still a
			// configuration error.
			return fmt.Errorf("%w: prometheus source: %w", errInvalidConfig, err)
		}
		prom.Metrics = metrics.NewPrometheusMetrics(reg)
		queries = prom
	}
	// The activator source runs while the controller leads; its wakes ask
	// the controller for a decision at once.
	var ctl *controller.Controller
	var httpSource controller.HTTPSource
	if cfg.Activator.Enabled() {
		act, err := metrics.NewActivators(metrics.ActivatorOptions{
			Addresses: cfg.Activator.Addresses, Service: cfg.Activator.Service, Client: client,
			Clock: clock.RealClock{}, Logger: log.Named("activator"),
			Wake: func(app httpstats.App) { ctl.Wake(app.Namespace, app.Name) },
		})
		if err != nil {
			return fmt.Errorf("%w: activator source: %w", errInvalidConfig, err)
		}
		httpSource = act
	}
	hostname, _ := os.Hostname()
	ctl, err = controller.New(controller.Options{
		Config: cfg, Logger: log, Client: client, Dynamic: dyn,
		Resources:   metrics.MetricsServer{Client: mc, PodSelector: cfg.PodSelector},
		Queries:     queries,
		APIs:        apis,
		HTTP:        httpSource,
		Scaler:      actuator.Scaler{Client: client},
		Events:      events,
		Printer:     &actuator.Printer{Out: stdout, JSON: jsonOut},
		Instruments: controller.NewInstruments(reg),
		Clock:       clock.RealClock{},
		Identity:    hostname + "_" + rand.String(6),
	})
	if err != nil {
		return err
	}

	if !once {
		stopServers, err := startServers(cfg, reg, ctl, log)
		if err != nil {
			return err
		}
		defer stopServers()
	}
	log.Info("starting", zap.String("profile", cfg.Profile), zap.Duration("interval", cfg.Interval),
		zap.Bool("dryRun", cfg.DryRun), zap.Strings("namespaces", cfg.Namespaces), zap.Bool("once", once))
	if err := ctl.Start(ctx, 2*time.Minute); err != nil {
		return err
	}
	if once {
		ctl.Once(ctx)
		return nil
	}
	return ctl.Run(ctx)
}

// clientConfig loads the client configuration and the namespace the
// controller runs in (the default for its Lease) with clientcmd's deferred
// loading, the same rules as kubectl's: the kubeconfig file when given (an
// error if it is missing), else the files listed in $KUBECONFIG (merged, the
// first to set a value wins), else ~/.kube/config; in-cluster credentials
// only when none of those yields a configuration. The namespace is the
// current context's when it sets one; else, in a cluster, $POD_NAMESPACE or
// the ServiceAccount's; else "default".
func clientConfig(kubeconfig string) (*rest.Config, string, error) {
	cc := kubeconfigLoader(kubeconfig)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig namespace: %w", err)
	}
	return cfg, ns, nil
}

// kubeconfigLoader loads kubeconfig files by kubectl's rules (see
// clientConfig).
func kubeconfigLoader(kubeconfig string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
}

// startServers serves /metrics and /apps (the apps' status, for `autoscaler
// status`) on the metrics address, /healthz and /readyz on the health
// address; it returns a function
// that shuts them down.
func startServers(cfg config.Config, reg *prometheus.Registry, ctl *controller.Controller, log *zap.Logger) (func(), error) {
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	metricsMux.HandleFunc(status.Path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(ctl.Status()); err != nil {
			log.Warn("write "+status.Path, zap.Error(err))
		}
	})
	healthMux := http.NewServeMux()
	healthMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ctl.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	healthMux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ctl.Ready() {
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	var servers []*http.Server
	for _, s := range []struct {
		addr string
		h    http.Handler
	}{{cfg.Server.MetricsAddress, metricsMux}, {cfg.Server.HealthAddress, healthMux}} {
		if s.addr == "" || s.addr == "0" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", s.addr, err)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", zap.String("address", s.addr), zap.Error(err))
			}
		}()
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(ctx)
		}
	}, nil
}

// newLogger builds the zap logger from the log settings; logs go to w.
func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}
