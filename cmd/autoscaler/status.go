package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/spinscale/spinscale/internal/status"
	"github.com/spinscale/spinscale/internal/statusclient"
)

const statusUsage = `Usage: autoscaler status [NAME] [flags]
   or: kubectl spinscale status [NAME] [flags]

Shows the apps the controller manages, as the leader last decided them, like
'kubectl get hpa'; with NAME, one app like 'kubectl describe hpa' (its
conditions, and its shadow comparison in shadow mode). The status is read from
the leading controller through the API server's pod proxy (the Lease names the
leader), or from --url (e.g. after 'kubectl port-forward').

Flags:
`

const shadowReportUsage = `Usage: autoscaler shadow-report [flags]
   or: kubectl spinscale shadow-report [flags]

For the apps in shadow mode (spinscale.dev/shadow: "true"), how Spinscale's
decisions compare with the live autoscaler's: how often they agree, by how
many replicas they differ, how much sooner or later Spinscale would have
moved, the live moves it never asked for, and a verdict per app.

Flags:
`

// statusFlags are the flags status and shadow-report share: which apps, and
// where the status is read.
type statusFlags struct {
	namespace, url, kubeconfig string
	controllerNS, lease, sel   string
	all                        bool
}

func (f *statusFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.namespace, "namespace", "n", "", "the apps' namespace (default: the kubeconfig context's)")
	fs.BoolVarP(&f.all, "all-namespaces", "A", false, "the apps of every namespace")
	fs.StringVar(&f.url, "url", "", "read the status from this controller address (e.g. http://127.0.0.1:8080 after kubectl port-forward) instead of through the API server")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
	fs.StringVar(&f.controllerNS, "controller-namespace", statusclient.DefaultNamespace, "the namespace the controller runs in (its Lease and pods)")
	fs.StringVar(&f.lease, "lease-name", statusclient.DefaultLeaseName, "the controller's leader-election Lease (config leaderElection.leaseName)")
	fs.StringVar(&f.sel, "controller-selector", statusclient.DefaultSelector, "label selector of the controller's pods, used when there is no Lease")
}

// source is where the status is read, and the namespace whose apps are
// shown ("" = all).
func (f *statusFlags) source() (statusclient.Source, string, error) {
	if f.all && f.namespace != "" {
		return nil, "", fmt.Errorf("%w: --namespace and --all-namespaces exclude each other", errUsage)
	}
	ns := f.namespace
	if f.url != "" {
		if ns == "" && !f.all {
			ns = contextNamespace(f.kubeconfig)
		}
		return statusclient.URL{Base: f.url, Client: &http.Client{Timeout: 30 * time.Second}}, allOr(f.all, ns), nil
	}
	cfg, ctxNS, err := clientConfig(f.kubeconfig)
	if err != nil {
		return nil, "", err
	}
	cfg.UserAgent = "spinscale-status"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client: %w", err)
	}
	if ns == "" {
		ns = ctxNS
	}
	return &statusclient.Leader{Client: client, Namespace: f.controllerNS, LeaseName: f.lease, Selector: f.sel}, allOr(f.all, ns), nil
}

func allOr(all bool, ns string) string {
	if all {
		return ""
	}
	return ns
}

// contextNamespace is the kubeconfig context's namespace, "default" when
// there is no kubeconfig (--url needs none).
func contextNamespace(kubeconfig string) string {
	ns, _, err := kubeconfigLoader(kubeconfig).Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// errUsage marks a bad combination of flags (exit 2).
var errUsage = errors.New("bad usage")

// fetchOnce reads the status once, bounded in time, and warns when the
// replica that answered is a standby (it has no apps).
func fetchOnce(src statusclient.Source, stderr io.Writer) (status.List, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := src.Fetch(ctx)
	if err != nil {
		return l, err
	}
	warnStandby(l, stderr)
	return l, nil
}

func warnStandby(l status.List, stderr io.Writer) {
	if !l.Leading {
		fmt.Fprintf(stderr, "warning: %s is a standby, not the leader: only the leader has apps\n", l.Leader)
	}
}

// runStatus implements `autoscaler status`. Exit codes: 0, 1 when the status
// cannot be read or NAME is not found, 2 on bad flags.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	var f statusFlags
	f.register(fs)
	output := fs.StringP("output", "o", "table", "output: table, wide (adds LIMITED-BY and REASON) or json (the status document, filtered)")
	watch := fs.BoolP("watch", "w", false, "after the table, print the apps whose row changed, polling every --interval")
	interval := fs.Duration("interval", 2*time.Second, "polling interval of --watch")
	watchTimeout := fs.Duration("watch-timeout", 0, "stop --watch after this long (0: when interrupted)")
	if code, ok := parseCommandFlagsArgs(fs, statusUsage, args, 1, stdout, stderr); !ok {
		return code
	}
	name := fs.Arg(0)
	if *output != "table" && *output != "wide" && *output != "json" {
		fmt.Fprintf(stderr, "status: --output: %q is not an output format: allowed table, wide, json\n", *output)
		return exitUsage
	}
	if *interval <= 0 || *watchTimeout < 0 {
		fmt.Fprintln(stderr, "status: --interval must be positive and --watch-timeout not negative")
		return exitUsage
	}
	if name != "" && f.all {
		fmt.Fprintln(stderr, "status: an app cannot be named across all namespaces: give -n instead of -A")
		return exitUsage
	}
	src, ns, err := f.source()
	if err != nil {
		return sourceError("status", err, stderr)
	}
	opts := statusclient.Options{AllNamespaces: ns == "", Wide: *output == "wide"}
	filter := func(l status.List) status.List { return statusclient.Filter(l, ns, name) }

	if *watch {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if *watchTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *watchTimeout)
			defer cancel()
		}
		w := &statusclient.Watcher{Source: src, Interval: *interval, Filter: filter, Options: opts,
			JSON: *output == "json", Out: stdout, Err: stderr}
		if err := w.Run(ctx); err != nil {
			fmt.Fprintln(stderr, "status:", err)
			return exitFailure
		}
		return exitOK
	}

	l, err := fetchOnce(src, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "status:", err)
		return exitFailure
	}
	l = filter(l)
	switch {
	case *output == "json":
		err = statusclient.WriteJSON(stdout, l)
	case name != "" && len(l.Apps) == 0:
		fmt.Fprintf(stderr, "status: app %s/%s not found: the controller manages no Deployment of that name (is it annotated spinscale.dev/enabled: \"true\"?)\n", ns, name)
		return exitFailure
	case name != "":
		err = statusclient.WriteDescribe(stdout, &l.Apps[0], l)
	case len(l.Apps) == 0:
		fmt.Fprintln(stderr, noApps(ns))
		return exitOK
	default:
		err = statusclient.WriteTable(stdout, l, opts)
	}
	if err != nil {
		fmt.Fprintln(stderr, "status:", err)
		return exitFailure
	}
	return exitOK
}

// noApps is kubectl's "No resources found" line.
func noApps(ns string) string {
	if ns == "" {
		return "No apps found."
	}
	return fmt.Sprintf("No apps found in %s namespace.", ns)
}

func sourceError(cmd string, err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	if errors.Is(err, errUsage) {
		return exitUsage
	}
	return exitFailure
}

// runShadowReport implements `autoscaler shadow-report`. Exit codes: 0 (also
// when no app is in shadow mode), 1 when the status cannot be read, 2 on bad
// flags.
func runShadowReport(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("shadow-report", pflag.ContinueOnError)
	var f statusFlags
	f.register(fs)
	if code, ok := parseCommandFlags(fs, shadowReportUsage, args, stdout, stderr); !ok {
		return code
	}
	src, ns, err := f.source()
	if err != nil {
		return sourceError("shadow-report", err, stderr)
	}
	l, err := fetchOnce(src, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "shadow-report:", err)
		return exitFailure
	}
	if err := statusclient.WriteShadowReport(stdout, statusclient.Filter(l, ns, ""), ns == ""); err != nil {
		fmt.Fprintln(stderr, "shadow-report:", err)
		return exitFailure
	}
	return exitOK
}
