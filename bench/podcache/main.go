// Command podcache measures the controller's memory with many pods in its
// watched namespaces that are not SpinKube apps, with and without the
// podSelector config key: on the project's local control plane
// (hack/cluster) it creates opted-in Spin apps and, beside them, unrelated
// Deployments with many replicas, then runs the real `autoscaler run`
// twice, once caching every pod (podSelector "") and once only SpinKube's
// (podSelector core.spinkube.dev/app-name), and reports VmRSS and the Go
// heap in use of each run. `make bench-podcache` runs it through
// bench/podcache.sh; docs/scale.md holds the figures.
//
// It only talks to 127.0.0.1, and every wait is bounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// appLabel is SpinKube's app label, the chart's default podSelector.
const appLabel = "core.spinkube.dev/app-name"

type options struct {
	root           string
	bin            string
	portBase       int
	apps, appPods  int
	unrelated      int
	deployments    int
	namespaces     int
	hold, window   time.Duration
	runningTimeout time.Duration
	syncTimeout    time.Duration
	doc            string
	cmdline        string
}

func main() {
	var o options
	flag.StringVar(&o.root, "root", ".", "the repository root")
	flag.StringVar(&o.bin, "bin", "bin/autoscaler", "the autoscaler binary (make build), relative to -root unless absolute")
	flag.IntVar(&o.portBase, "port-base", 24000, "hack/cluster's PORT_BASE (ports base .. base+5 on 127.0.0.1)")
	flag.IntVar(&o.apps, "apps", 50, "opted-in Spin apps")
	flag.IntVar(&o.appPods, "app-pods", 3, "pods per app")
	flag.IntVar(&o.unrelated, "unrelated", 20000, "unrelated pods (without SpinKube's app label) in the same namespaces")
	flag.IntVar(&o.deployments, "unrelated-deployments", 40, "Deployments the unrelated pods are spread over")
	flag.IntVar(&o.namespaces, "namespaces", 5, "namespaces the apps and the unrelated Deployments are spread over")
	flag.DurationVar(&o.hold, "hold", 60*time.Second, "how long each autoscaler run lasts after its caches synced")
	flag.DurationVar(&o.window, "window", 30*time.Second, "the last part of -hold over which the steady figures are medians")
	flag.DurationVar(&o.runningTimeout, "running-timeout", 25*time.Minute, "how long the pods may take to be Running")
	flag.DurationVar(&o.syncTimeout, "sync-timeout", 5*time.Minute, "how long each autoscaler may take to sync its caches")
	flag.StringVar(&o.doc, "doc", "", "write the section \"## The pod cache: podSelector\" into this Markdown file (bench/podcache.sh: docs/scale.md)")
	flag.Parse()
	o.cmdline = "go run ./bench/podcache " + strings.Join(os.Args[1:], " ")
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "podcache:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "podcache:", err)
		os.Exit(1)
	}
	fmt.Print(table(res))
	if o.doc != "" {
		if err := writeDoc(o.doc, o, res); err != nil {
			fmt.Fprintln(os.Stderr, "podcache:", err)
			os.Exit(1)
		}
	}
}

func (o *options) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.portBase >= 1024 && o.portBase+7 <= 65535, "-port-base: %d is not a port from 1024 to 65528", o.portBase)
	check(o.apps >= 1 && o.apps <= 5000, "-apps: %d is not from 1 to 5000", o.apps)
	check(o.appPods >= 1 && o.appPods <= 100, "-app-pods: %d is not from 1 to 100", o.appPods)
	check(o.unrelated >= 0 && o.unrelated <= 100000, "-unrelated: %d is not from 0 to 100000", o.unrelated)
	check(o.deployments >= 1 && o.deployments <= 1000, "-unrelated-deployments: %d is not from 1 to 1000", o.deployments)
	check(o.namespaces >= 1 && o.namespaces <= 100, "-namespaces: %d is not from 1 to 100", o.namespaces)
	check(o.hold >= 10*time.Second && o.hold <= time.Hour, "-hold: %s is not from 10s to 1h", o.hold)
	check(o.window >= time.Second && o.window <= o.hold, "-window: %s is not from 1s to -hold (%s)", o.window, o.hold)
	check(o.runningTimeout > 0 && o.runningTimeout <= 2*time.Hour, "-running-timeout: %s is not from 1ns to 2h", o.runningTimeout)
	check(o.syncTimeout > 0 && o.syncTimeout <= time.Hour, "-sync-timeout: %s is not from 1ns to 1h", o.syncTimeout)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return fmt.Errorf("-root %q: %w", o.root, err)
	}
	o.root = root
	if !filepath.IsAbs(o.bin) {
		o.bin = filepath.Join(root, o.bin)
	}
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("-bin %q: %w (run make build)", o.bin, err)
	}
	return nil
}

// result is the whole measurement: the namespaces' contents and one run
// per selector.
type result struct {
	date           time.Time
	podsInNS       int // Running pods in the watched namespaces (apps and unrelated)
	appPods        int
	setup          time.Duration
	runs           []runResult
	nodes, perNode int
}

// runResult is one autoscaler run.
type runResult struct {
	selector      string
	matched       int           // pods the selector matches, per the API
	cached        string        // the controller's own count of cached pods, or "not reported"
	sync          time.Duration // to the second: /readyz is polled once a second
	appsSeen      int           // spinscale_apps at the end: the opted-in apps of its last tick
	rssSteady     int64         // bytes, median over the window
	rssPeak       int64
	heapSteady    int64 // go_memstats_heap_inuse_bytes, median over the window
	heapPeak      int64
	rssSamples    int
	heapSamples   int
	windowSeconds float64
}

func run(ctx context.Context, o options) (res result, err error) {
	res.date = time.Now().UTC()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[podcache %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp("", "spinscale-bench-podcache-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	l := newLayout(o)
	res.nodes, res.perNode = l.nodes, l.perNode
	logf("starting the control plane: port base %d, %d fake nodes of %d pods", o.portBase, l.nodes, l.perNode)
	c, err := startCluster(ctx, o.root, dir, o.portBase, l.nodes, l.perNode)
	defer func() {
		logf("tearing the control plane down")
		if derr := c.Stop(); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err != nil {
		return res, err
	}

	t0 := time.Now()
	logf("creating %d apps (%d pods each) and %d unrelated Deployments (%d pods) in %d namespaces",
		o.apps, o.appPods, len(l.fillers), o.unrelated, o.namespaces)
	if err := createObjects(ctx, c.Client, l); err != nil {
		return res, err
	}
	want := o.apps*o.appPods + o.unrelated
	n, err := waitRunning(ctx, c.Client, l.namespaces, want, o.runningTimeout, logf)
	if err != nil {
		return res, err
	}
	res.podsInNS, res.setup = n, time.Since(t0)
	logf("%d pods Running after %s", n, res.setup.Round(time.Second))
	if res.appPods, err = countPods(ctx, c.Client, l.namespaces, appLabel); err != nil {
		return res, err
	}

	for _, sel := range []string{"", appLabel} {
		matched := res.podsInNS
		if sel != "" {
			matched = res.appPods
		}
		logf("autoscaler run with podSelector=%q: %s after its caches sync", sel, o.hold)
		r, err := measureRun(ctx, o, dir, c.Env["KUBECONFIG"], l.namespaces, sel)
		if err != nil {
			return res, err
		}
		r.matched = matched
		if r.appsSeen != o.apps {
			return res, fmt.Errorf("podSelector=%q: the autoscaler saw %d apps, not %d", sel, r.appsSeen, o.apps)
		}
		logf("podSelector=%q: synced in %s, RSS steady %s peak %s, heap in use steady %s", sel,
			r.sync.Round(time.Millisecond), mib(r.rssSteady), mib(r.rssPeak), mib(r.heapSteady))
		res.runs = append(res.runs, r)
	}
	return res, nil
}

// layout is where everything goes.
type layout struct {
	namespaces []string
	apps       []appRef
	fillers    []filler
	appPods    int
	nodes      int // fake nodes: one per unrelated Deployment, plus those the scheduler fills with app pods
	perNode    int
}

type appRef struct{ namespace, name string }

// filler is an unrelated Deployment pinned to one node (spec.nodeName), so
// that its pods need no scheduling.
type filler struct {
	namespace, name, node string
	replicas              int
}

func newLayout(o options) layout {
	l := layout{appPods: o.appPods}
	for i := range o.namespaces {
		l.namespaces = append(l.namespaces, fmt.Sprintf("podcache-%d", i))
	}
	for i := range o.apps {
		l.apps = append(l.apps, appRef{l.namespaces[i%len(l.namespaces)], fmt.Sprintf("app-%d", i)})
	}
	deployments := min(o.deployments, max(o.unrelated, 1))
	if o.unrelated == 0 {
		deployments = 0
	}
	for i := range deployments {
		// The remainder goes to the first ones, one each.
		r := o.unrelated / deployments
		if i < o.unrelated%deployments {
			r++
		}
		l.fillers = append(l.fillers, filler{namespace: l.namespaces[i%len(l.namespaces)],
			name: fmt.Sprintf("other-%d", i), node: fmt.Sprintf("kwok-node-%d", i), replicas: r})
	}
	// The app pods go through the scheduler onto nodes of their own, 200
	// pods each; a filler node holds its Deployment's pods.
	const appNodePods = 200
	appNodes := (o.apps*o.appPods + appNodePods - 1) / appNodePods
	l.nodes = len(l.fillers) + appNodes
	l.perNode = appNodePods
	if len(l.fillers) > 0 {
		l.perNode = max(l.perNode, l.fillers[0].replicas+10)
	}
	return l
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
