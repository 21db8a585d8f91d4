// Package integration runs Spinscale against a real control plane: etcd,
// kube-apiserver, kube-controller-manager (with the real HPA controller),
// kube-scheduler, kwok fake nodes and metrics-server, started by the
// project's own hack/cluster scripts on 127.0.0.1. The controller runs as
// the real `autoscaler` binary.
//
// `go test -short` leaves these tests out (the first build of the cluster
// takes many minutes); `make test` runs them.
package integration

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// cluster is the control plane every test shares.
var cluster struct {
	root       string // repository root
	state      string // hack/cluster state directory
	kubeconfig string
	autoscaler string // the built binary
	rest       *rest.Config
	client     kubernetes.Interface
	dynamic    dynamic.Interface
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("integration: -short given, not starting a cluster")
		os.Exit(0)
	}
	code := 1
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
	} else {
		code = m.Run()
	}
	teardown()
	os.Exit(code)
}

func setup() error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	cluster.root = root
	if err := runLogged(root, "hack/cluster/build.sh"); err != nil {
		return fmt.Errorf("build cluster binaries: %w", err)
	}
	state, err := os.MkdirTemp("", "spinscale-it-")
	if err != nil {
		return err
	}
	cluster.state = state
	// A port base of our own, so a developer's cluster on the default base
	// is left alone.
	base := 20000 + (os.Getpid()%400)*10
	cmd := exec.Command(filepath.Join(root, "hack/cluster/up.sh"), state)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT_BASE=%d", base), "METRIC_RESOLUTION=10s")
	if err := runCmd(cmd); err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	cluster.kubeconfig = filepath.Join(state, "kubeconfig")
	cluster.rest, err = clientcmd.BuildConfigFromFlags("", cluster.kubeconfig)
	if err != nil {
		return err
	}
	cluster.rest.QPS, cluster.rest.Burst = 50, 100
	cluster.client = kubernetes.NewForConfigOrDie(cluster.rest)
	cluster.dynamic = dynamic.NewForConfigOrDie(cluster.rest)

	bin := filepath.Join(state, "autoscaler")
	build := exec.Command("go", "build", "-o", bin, "./cmd/autoscaler")
	build.Dir = root
	if err := runCmd(build); err != nil {
		return fmt.Errorf("build autoscaler: %w", err)
	}
	cluster.autoscaler = bin
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := applyYAMLFile(ctx, "testdata/spinapp-crd.yaml"); err != nil {
		return fmt.Errorf("install SpinApp CRD: %w", err)
	}
	return nil
}

func teardown() {
	if cluster.state == "" {
		return
	}
	if os.Getenv("SPINSCALE_KEEP_CLUSTER") != "" {
		fmt.Println("integration: cluster kept in", cluster.state)
		return
	}
	_ = runLogged(cluster.root, "hack/cluster/down.sh", cluster.state, "--purge")
}

func runLogged(dir, name string, args ...string) error {
	cmd := exec.Command(filepath.Join(dir, name), args...)
	cmd.Dir = dir
	return runCmd(cmd)
}

func runCmd(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd.String(), err, out)
	}
	return nil
}
