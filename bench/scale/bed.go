package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// bed is one measurement's setting: a control plane of its own, the apps
// created and Running at their usage, the spreader keeping that usage
// spread over their pods, the replica watch, and the autoscaler running
// on settled metrics.
type bed struct {
	logf       func(format string, args ...any)
	dir        string
	c          *cluster
	a          *autoscaler
	watch      *replicaWatch
	spread     *spreader
	namespaces []string
	pods       []podRef      // Running and Ready when the autoscaler started
	setup      time.Duration // creating the apps until every pod ran
	stop       context.CancelFunc
}

// setUpBed starts a control plane with room for peakPods, creates the apps
// with spec.pods pods each and a total usage of total millicores per app,
// waits until every pod runs, starts the autoscaler and waits until
// metrics.k8s.io shows every pod's usage, within slack millicores of its
// share (a negative slack: any sample), and two ticks have run on it. The
// caller calls tearDown, also when setUpBed fails.
func setUpBed(ctx context.Context, logf func(format string, args ...any), apps []appRef, namespaces []string, spec appSpec, total int64, peakPods int, slack int64, o options) (*bed, error) {
	b := &bed{logf: logf, namespaces: namespaces}
	var err error
	if b.dir, err = os.MkdirTemp("", "spinscale-bench-scale-"); err != nil {
		return b, err
	}
	// Room for every pod at the peak, and some: 500 pods per fake node.
	const perNode = 500
	nodes := max(2, (peakPods*5/4+perNode-1)/perNode)
	base, err := freePortBase()
	if err != nil {
		return b, err
	}
	logf("starting the control plane: %d fake nodes, port base %d", nodes, base)
	b.c, err = startCluster(ctx, o.root, b.dir, clusterOptions{portBase: base, nodes: nodes, nodePods: perNode,
		nodeCPU: strconv.Itoa(perNode), metricResolution: o.resolution})
	if err != nil {
		return b, err
	}
	bin, err := buildAutoscaler(ctx, o.root, b.dir)
	if err != nil {
		return b, err
	}
	var wctx context.Context
	wctx, b.stop = context.WithCancel(ctx)
	if b.watch, err = watchReplicas(wctx, b.c.Client, spec.expectReplicas); err != nil {
		return b, err
	}
	if b.spread, err = startSpreader(wctx, b.c.Client, len(apps), 32); err != nil {
		return b, err
	}
	b.spread.setTotal(total, apps)

	t0 := time.Now()
	logf("creating %d apps of %d pods in %d namespaces", len(apps), spec.pods, len(namespaces))
	if err := createApps(ctx, b.c.Client, namespaces, apps, spec); err != nil {
		return b, err
	}
	want := len(apps) * int(spec.pods)
	if b.pods, err = waitPods(ctx, b.c.Client, namespaces, want, 5*time.Minute+time.Duration(want)*100*time.Millisecond); err != nil {
		return b, err
	}
	b.setup = time.Since(t0)
	logf("%d pods Running and Ready after %s; usage %dm per app", len(b.pods), b.setup.Round(time.Second), total)

	if b.a, err = startAutoscaler(bin, b.dir, b.c.Env["KUBECONFIG"], namespaces, o.interval, o.podSelector); err != nil {
		return b, err
	}
	mc, err := metricsclient.NewForConfig(b.c.Rest)
	if err != nil {
		return b, err
	}
	perPod := total / int64(spec.pods)
	lo, hi := perPod-slack, perPod+slack
	if slack < 0 {
		lo, hi = 0, math.MaxInt64
	}
	logf("waiting for metrics.k8s.io to show %d-%dm on every pod", lo, hi)
	if err := waitUsage(ctx, mc, namespaces, b.pods, lo, hi, 5*time.Minute+time.Duration(want)*10*time.Millisecond); err != nil {
		return b, err
	}
	// Two ticks on the settled metrics before anything is measured.
	if err := waitTicks(ctx, b.a, 2, 3*time.Minute); err != nil {
		return b, err
	}
	return b, nil
}

// tearDown stops what setUpBed started; err, the measurement's, gains the
// end of the autoscaler's log.
func (b *bed) tearDown(err error) error {
	if b.stop != nil {
		b.stop()
	}
	if b.a != nil {
		b.a.stop()
		if err != nil {
			err = fmt.Errorf("%w\nautoscaler log (end):\n%s", err, b.a.tail(30))
		}
	}
	if b.c != nil {
		b.logf("tearing the control plane down")
		err = errors.Join(err, b.c.Stop())
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
	return err
}
