// Command activator measures the HTTP activator (`autoscaler activator`)
// against the figures of DESIGN.md on the project's local control plane
// (hack/cluster), every socket on loopback:
//
//	a. added latency p50/p99 at a fixed rate (1,000 req/s): requests straight
//	   to a pod and through the activator, interleaved on one schedule, the
//	   median of -runs loops;
//	b. throughput: proxied requests per CPU-second of the activator process
//	   (utime + stime from /proc/PID/stat) under closed-loop load, the
//	   median of -runs loops;
//	c. memory per 1,000 held requests: the activator's RSS with N requests
//	   held for an app with no pod, minus its RSS before;
//	d. first request at zero → response, and its time after the pod turned
//	   Ready, with the controller scaling the app to and from zero;
//	e. a step in offered load → the controller's /scale write.
//
// Pods are kwok's; internal/podserve answers HTTP on each Ready pod's
// address mapped onto loopback, as the activator's --endpoint-address-map
// dials it. `make bench-activator` runs it through bench/activator.sh. Every
// load loop is bounded in requests and time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spinscale/spinscale/internal/podserve"
)

type options struct {
	parts                    map[string]bool
	rate                     int
	warm, latencyFor         time.Duration
	workers                  int
	throughputFor            time.Duration
	held                     int
	startup                  time.Duration
	runs                     int
	portBase                 int
	addressMap               podserve.AddressMap
	root, dir                string
	autoscaler               string
	maxThroughputRequests    int64
	stepLow, stepHigh        int
	stepLatency, stepTimeout time.Duration
}

func main() {
	parts := flag.String("parts", "a,b,c,d,e", "which measurements to run: a latency, b throughput, c held memory, d first request at zero, e load step → /scale")
	rate := flag.Int("rate", 1000, "a: requests per second to each of the two paths")
	latencyFor := flag.Duration("latency-duration", 10*time.Second, "a: how long the fixed rate is measured (after 2 s of warm-up)")
	workers := flag.Int("workers", 32, "b: concurrent clients of the closed loop")
	throughputFor := flag.Duration("throughput-duration", 10*time.Second, "b: how long the closed loop runs")
	held := flag.Int("held", 2000, "c: requests held at once")
	startup := flag.Duration("startup", 2*time.Second, "d: the pod's start-up time (kwok's pod-ready delay)")
	runs := flag.Int("runs", 3, "a, b, d and e: repetitions (a and b report the median)")
	portBase := flag.Int("port-base", 23100, "the control plane's PORT_BASE (ports base to base+6)")
	addrMap := flag.String("address-map", "10.244.0.0/16=127.244.0.0/16", "how pod addresses map onto loopback (the activator's --endpoint-address-map)")
	root := flag.String("root", ".", "the repository root")
	keep := flag.Bool("keep", false, "leave the control plane and the work directory in place")
	out := flag.String("out", "", "also write the report to this file")
	relayListen := flag.String("relay-listen", "", "internal: run as part a's relay on this address (with -relay-to)")
	relayTo := flag.String("relay-to", "", "internal: the pod address the relay copies to")
	flag.Parse()
	if *relayListen != "" {
		if err := runRelay(*relayListen, *relayTo); err != nil {
			fail(1, err)
		}
		return
	}

	o := options{parts: map[string]bool{}, rate: *rate, warm: 2 * time.Second, latencyFor: *latencyFor,
		workers: *workers, throughputFor: *throughputFor, held: *held, startup: *startup, runs: *runs,
		portBase: *portBase, maxThroughputRequests: 5_000_000,
		stepLow: 1, stepHigh: 16, stepLatency: 200 * time.Millisecond, stepTimeout: 30 * time.Second}
	for _, p := range strings.Split(*parts, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains("abcde", p) || len(p) != 1 {
			fail(2, fmt.Errorf("-parts: %q is not one of a, b, c, d, e", p))
		}
		o.parts[p] = true
	}
	if o.rate < 1 || o.rate > 20000 || o.workers < 1 || o.workers > 1000 || o.held < 1 || o.held > 8000 || o.runs < 1 || o.runs > 20 {
		fail(2, errors.New("bounds: -rate 1..20000, -workers 1..1000, -held 1..8000 (file descriptors), -runs 1..20"))
	}
	var err error
	if o.addressMap, err = podserve.ParseAddressMap(*addrMap); err != nil {
		fail(2, fmt.Errorf("-address-map: %w", err))
	}
	if o.root, err = filepath.Abs(*root); err != nil {
		fail(1, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	o.dir, err = os.MkdirTemp("", "spinscale-bench-activator-")
	if err != nil {
		fail(1, err)
	}
	rep := &report{opts: o, revision: revision(o.root)}
	runErr := run(ctx, o, rep, *keep)
	var w io.Writer = os.Stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			fail(1, err)
		}
		w = io.MultiWriter(os.Stdout, f)
	}
	rep.write(w)
	if f != nil {
		if err := f.Close(); err != nil {
			fail(1, err)
		}
	}
	if runErr != nil {
		fail(1, runErr)
	}
	if *keep || rep.anyFailure() {
		logf("logs kept in %s", o.dir)
		return
	}
	_ = os.RemoveAll(o.dir)
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "bench-activator:", err)
	os.Exit(code)
}

// run sets up the cluster, the apps and the activator, and runs the parts.
func run(ctx context.Context, o options, rep *report, keep bool) (err error) {
	logf("building cmd/autoscaler")
	o.autoscaler = filepath.Join(o.dir, "autoscaler")
	build := exec.CommandContext(ctx, "go", "build", "-o", o.autoscaler, "./cmd/autoscaler")
	build.Dir = o.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/autoscaler: %w\n%s", err, out)
	}
	logf("starting the control plane (PORT_BASE=%d)", o.portBase)
	c, err := startCluster(ctx, o.root, filepath.Join(o.dir, "cluster"), o.portBase)
	defer func() {
		if keep {
			logf("control plane kept: hack/cluster/down.sh %s --purge", c.State)
			return
		}
		if stopErr := c.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	if err != nil {
		return err
	}
	b, err := newBench(ctx, o, c)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		return err
	}
	for _, p := range []struct {
		key string
		run func(context.Context, *report) error
	}{{"c", b.heldMemory}, {"a", b.latency}, {"b", b.throughput}, {"d", b.firstAtZero}, {"e", b.loadStep}} {
		if !o.parts[p.key] {
			continue
		}
		if err := p.run(ctx, rep); err != nil {
			rep.failed = append(rep.failed, fmt.Sprintf("%s: %v", p.key, err))
			logf("part %s failed: %v", p.key, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// revision names the code measured: the commit at root, marked when the
// work tree differs from it.
func revision(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty", "--abbrev=7").Output()
	if err != nil {
		return "an unknown revision"
	}
	return strings.TrimSpace(string(out))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench-activator %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
