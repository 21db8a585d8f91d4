package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// The shipped install, deploy/manifests, as the docs apply it.
const (
	shippedNamespace      = "spinscale-system"
	shippedServiceAccount = "spinscale"
)

var scaledObjectGVR = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}

// clusterBin returns a binary built by hack/cluster (kubectl).
func clusterBin(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("SPINSCALE_CLUSTER_BIN")
	if env, err := os.ReadFile(filepath.Join(cluster.state, "env")); err == nil {
		if m := regexp.MustCompile(`(?m)^export SPINSCALE_CLUSTER_BIN=(.*)$`).FindSubmatch(env); m != nil {
			dir = strings.Trim(string(m[1]), `'"`)
		}
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		dir = filepath.Join(home, ".cache/spinscale/cluster/bin")
	}
	path := filepath.Join(dir, name)
	_, err := os.Stat(path)
	require.NoError(t, err, "hack/cluster/build.sh builds %s", name)
	return path
}

var helmOnce struct {
	sync.Once
	path string
	err  error
}

// helmBinary returns the Makefile's pinned Helm, installing it with
// `make deploy-tools` when missing.
func helmBinary(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		makefile, err := os.ReadFile(filepath.Join(cluster.root, "Makefile"))
		if err != nil {
			helmOnce.err = err
			return
		}
		m := regexp.MustCompile(`(?m)^HELM_VERSION\s*:=\s*(\S+)`).FindSubmatch(makefile)
		if m == nil {
			helmOnce.err = fmt.Errorf("no HELM_VERSION in the Makefile")
			return
		}
		helmOnce.path = filepath.Join(cluster.root, "bin", "helm-"+string(m[1]))
		if _, err := os.Stat(helmOnce.path); err != nil {
			cmd := exec.Command("make", "--no-print-directory", "deploy-tools")
			cmd.Dir = cluster.root
			helmOnce.err = runCmd(cmd)
		}
	})
	require.NoError(t, helmOnce.err)
	return helmOnce.path
}

// command runs a tool against the test cluster from the repository root.
func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = cluster.root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.kubeconfig)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	return string(out)
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates with a
// token of the ServiceAccount only (TokenRequest API), with the API server
// and CA of the admin kubeconfig, and the account's namespace as default.
func serviceAccountKubeconfig(t *testing.T, ns, name string) string {
	t.Helper()
	tr, err := cluster.client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	require.NoError(t, err)
	admin, err := clientcmd.LoadFromFile(cluster.kubeconfig)
	require.NoError(t, err)
	adminCtx := admin.Contexts[admin.CurrentContext]
	require.NotNil(t, adminCtx)
	adminCluster := admin.Clusters[adminCtx.Cluster]
	require.NotNil(t, adminCluster)
	ca := adminCluster.CertificateAuthorityData
	if len(ca) == 0 {
		ca, err = os.ReadFile(adminCluster.CertificateAuthority)
		require.NoError(t, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["it"] = &clientcmdapi.Cluster{Server: adminCluster.Server, CertificateAuthorityData: ca}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "it", AuthInfo: name, Namespace: ns}
	cfg.CurrentContext = name
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// installScaledObjectCRD installs a minimal KEDA ScaledObject CRD, so that
// the controller's KEDA check (and its RBAC) is exercised. It is left in
// place: controllers of other tests may be watching it.
func installScaledObjectCRD(t *testing.T) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "scaledobjects.keda.sh"},
		"spec": map[string]any{
			"group": "keda.sh", "scope": "Namespaced",
			"names": map[string]any{"kind": "ScaledObject", "listKind": "ScaledObjectList", "plural": "scaledobjects", "singular": "scaledobject", "shortNames": []any{"so"}},
			"versions": []any{map[string]any{
				"name": "v1alpha1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	_, err := cluster.dynamic.Resource(crdGVR).Create(context.Background(), crd, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.dynamic.Resource(scaledObjectGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	require.NoError(t, err, "ScaledObject CRD not served")
}

// The controller runs under exactly the RBAC that deploy/manifests ships,
// with the shipped configuration, as its ServiceAccount: it leads through
// its Lease, scales an app up, records Events, refuses apps that an HPA, a
// ScaledObject or a SpinApp owns, takes over from them once migrated with
// `autoscaler convert` (docs/migrate.md), and is never forbidden anything.
func TestRBAC(t *testing.T) {
	t.Parallel()
	installScaledObjectCRD(t)

	// What docs/install.md runs.
	kubectl := clusterBin(t, "kubectl")
	t.Log(command(t, kubectl, "apply", "-k", "deploy/manifests"))
	t.Cleanup(func() {
		cmd := exec.Command(kubectl, "delete", "-k", "deploy/manifests", "--ignore-not-found", "--wait=false")
		cmd.Dir = cluster.root
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.kubeconfig)
		_ = cmd.Run()
	})
	// The shipped Deployment is admitted under the restricted Pod Security
	// Standard its namespace enforces, and its (kwok) pods become ready.
	t.Log(command(t, kubectl, "-n", shippedNamespace, "rollout", "status", "deploy/spinscale", "--timeout=2m"))

	assertServiceAccountCan(t)

	ns := namespace(t)
	label := "spinscale-it/rbac"
	labelled := func(d *appsv1.Deployment) *appsv1.Deployment {
		d.Labels[label] = ns
		return d
	}
	createDeployment(t, labelled(spinDeployment(ns, "shop", 1, cpuAnnotations(1, 10, 50))))
	startLoad(t, ns, "shop", 280)

	// Three apps another autoscaler owns: an HPA (not yet opted in: it is
	// migrated below), a ScaledObject (min = max = 2, as nothing runs KEDA
	// here) and a SpinApp without enableAutoscaling.
	createDeployment(t, labelled(spinDeployment(ns, "hpa-app", 1, nil)))
	_, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "hpa-app"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "hpa-app"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	createDeployment(t, labelled(spinDeployment(ns, "keda-app", 2, cpuAnnotations(1, 10, 50))))
	_, err = cluster.dynamic.Resource(scaledObjectGVR).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "keda-app"},
		"spec":     map[string]any{"scaleTargetRef": map[string]any{"name": "keda-app"}, "minReplicaCount": int64(2), "maxReplicaCount": int64(2)},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	spinApp, err := cluster.dynamic.Resource(spinAppGVR).Namespace(ns).Create(context.Background(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp",
		"metadata": map[string]any{"name": "spin-app"},
		"spec":     map[string]any{"image": "ghcr.io/example/app:1.0.0", "executor": "containerd-shim-spin", "replicas": int64(2), "enableAutoscaling": false},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// spin-operator is not running: the Deployment it would create, with the
	// annotations it would copy from spec.deploymentAnnotations.
	owned := labelled(spinDeployment(ns, "spin-app", 2, cpuAnnotations(1, 10, 50)))
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "core.spinkube.dev/v1alpha1", Kind: "SpinApp", Name: "spin-app", UID: spinApp.GetUID(), Controller: ptr.To(true)}}
	createDeployment(t, owned)
	// docs/troubleshooting.md, Invalid annotations.
	createDeployment(t, labelled(spinDeployment(ns, "bad-app", 2, cpuAnnotations(1, 10, 50, "spinscale.dev/max-replicas", "lots", "spinscale.dev/tolerance", "2"))))
	// Load on the refused apps from the start: only a migration lets
	// Spinscale act on it. (hpa-app's load starts once its HPA is gone, or
	// the real HPA would scale it first.)
	startLoad(t, ns, "keda-app", 280)
	startLoad(t, ns, "spin-app", 280)

	// The shipped configuration, as the cluster holds it.
	cm, err := cluster.client.CoreV1().ConfigMaps(shippedNamespace).Get(context.Background(), "spinscale", metav1.GetOptions{})
	require.NoError(t, err)
	configFile := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(configFile, []byte(cm.Data["config.yaml"]), 0o600))
	saKubeconfig := serviceAccountKubeconfig(t, shippedNamespace, shippedServiceAccount)

	// Only test-specific settings are overridden: a faster tick, this test's
	// Deployments (the pods, HPA, ScaledObject and SpinApp informers stay
	// cluster-wide, as shipped), and local ports for the HTTP endpoints.
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	healthAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startShipped(t, saKubeconfig, configFile,
		"--set", "interval=2s", "--set", "selector="+label+"="+ns,
		"--set", "server.metricsAddress="+metricsAddr, "--set", "server.healthAddress="+healthAddr,
		"--set", "log.level=debug")

	waitReplicas(t, ns, "shop", 3*time.Minute, "scale up to 6 under the shipped RBAC", func(r int32) bool { return r == 6 })
	waitEvent(t, ns, "shop", "SpinscaleRescaled", "→ 6", time.Minute)
	waitEvent(t, ns, "keda-app", "SpinscaleRefused", "KEDA ScaledObject keda-app", time.Minute)
	waitEvent(t, ns, "spin-app", "SpinscaleRefused", "spec.enableAutoscaling false", time.Minute)
	assert.Contains(t, command(t, kubectl, "get", "events", "-A", "--field-selector", "reason=SpinscaleRescaled"), "shop")
	assert.Contains(t, command(t, kubectl, "-n", ns, "describe", "deployment", "spin-app"), "SpinscaleRefused")
	waitEvent(t, ns, "bad-app", "SpinscaleInvalidAnnotations", `invalid annotations, app left untouched: spinscale.dev/max-replicas: "lots": must be an integer >= min-replicas (1) and <= 100000; spinscale.dev/tolerance: "2": must be a decimal from 0 to 1 (e.g. 0.1)`, time.Minute)
	// docs/troubleshooting.md, Read the Events and Missing metrics.
	assert.Contains(t, command(t, kubectl, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=shop"), "SpinscaleRescaled")
	assert.Contains(t, command(t, kubectl, "top", "pods", "-n", ns), "shop-")
	assert.Contains(t, command(t, kubectl, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods"), `"kind":"PodMetricsList"`)

	// docs/troubleshooting.md: one dry-run tick, as the ServiceAccount.
	dry := exec.Command(cluster.autoscaler, "run", "--dry-run", "--once", "--kubeconfig", saKubeconfig, "--config", configFile,
		"--set", "selector="+label+"="+ns)
	dry.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := dry.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, ns+`\s+shop\s+cpu: \d+%/50%\s+1\s+10\s+6\s+`, string(out))
	// Apps left alone are listed with why; the log says it too.
	assert.Regexp(t, ns+`\s+keda-app\s+<unknown>\s+-\s+-\s+2\s+2\s+none\s+hold: not scaling: KEDA ScaledObject keda-app`, string(out))
	assert.Regexp(t, ns+`\s+bad-app\s+<unknown>.*hold: invalid annotations: spinscale.dev/max-replicas: "lots"`, string(out))
	assert.Contains(t, string(out), `"msg":"refusing to scale"`)
	assert.NotRegexp(t, `(?i)forbidden`, string(out))
	dry = exec.Command(cluster.autoscaler, "run", "--dry-run", "--once", "--output", "json", "--kubeconfig", saKubeconfig, "--config", configFile,
		"--set", "selector="+label+"="+ns)
	dry.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	jsonOut, err := dry.Output()
	require.NoError(t, err)
	assert.Contains(t, string(jsonOut), `"namespace":"`+ns+`","name":"shop"`)

	for _, app := range []string{"keda-app", "spin-app"} {
		assert.Equal(t, int32(2), replicas(t, ns, app), "%s is refused: never scaled despite its load", app)
	}

	migrateHPA(t, kubectl, ns)
	migrateSpinApp(t, kubectl, ns)
	// docs/migrate.md, From KEDA: delete the ScaledObject once the annotations are in place.
	command(t, kubectl, "-n", ns, "delete", "scaledobject", "keda-app")
	waitReplicas(t, ns, "keda-app", 2*time.Minute, "scaled once its ScaledObject is gone", func(r int32) bool { return r > 2 })

	// The Lease, in the controller's namespace.
	assert.Contains(t, command(t, kubectl, "-n", shippedNamespace, "get", "lease", "spinscale", "-o", "jsonpath={.spec.holderIdentity}"), "_")
	assert.Contains(t, p.output(), "became leader")
	assert.Regexp(t, `"keda":true,"spinkube":true`, p.output(), "both conflict checks active")

	ready := httpGet(t, "http://"+healthAddr+"/readyz")
	assert.Equal(t, http.StatusOK, ready.code, ready.body)
	healthy := httpGet(t, "http://"+healthAddr+"/healthz")
	assert.Equal(t, http.StatusOK, healthy.code, healthy.body)
	metrics := httpGet(t, "http://"+metricsAddr+"/metrics")
	assert.Contains(t, metrics.body, "\nspinscale_leader 1\n")
	assert.Contains(t, metrics.body, `spinscale_scale_writes_total{result="ok"}`)
	assert.NotContains(t, metrics.body, `spinscale_scale_writes_total{result="error"}`)
	assert.NotRegexp(t, `spinscale_kube_requests_total\{code="403"`, metrics.body, "no request was forbidden")

	p.stop()
	assert.NotRegexp(t, `(?i)forbidden`, p.output(), "the controller was refused something under the shipped RBAC")
	assert.NotContains(t, p.output(), `"level":"error"`)

	// docs/install.md: restart after a configuration change, and removal.
	command(t, kubectl, "-n", shippedNamespace, "rollout", "restart", "deploy/spinscale")
	command(t, kubectl, "-n", shippedNamespace, "rollout", "status", "deploy/spinscale", "--timeout=2m")
	t.Log(command(t, kubectl, "delete", "-k", "deploy/manifests", "--wait=false"))
}

// convertTo runs `autoscaler convert` and writes its standard output to a
// file, as docs/migrate.md does with a shell redirection.
func convertTo(t *testing.T, file string, args ...string) {
	t.Helper()
	cmd := exec.Command(cluster.autoscaler, append([]string{"convert"}, args...)...)
	cmd.Dir = filepath.Dir(file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "autoscaler convert %v: %s", args, stderr.String())
	require.NoError(t, os.WriteFile(file, out, 0o600))
	t.Logf("autoscaler convert %s:\n%s%s", strings.Join(args, " "), out, stderr.String())
}

// migrateHPA follows docs/migrate.md for an HPA: export it, convert it,
// patch the Deployment (Spinscale refuses it while the HPA exists), delete
// the HPA, and Spinscale scales the app.
func migrateHPA(t *testing.T, kubectl, ns string) {
	t.Helper()
	dir := t.TempDir()
	hpa := command(t, kubectl, "-n", ns, "get", "hpa", "hpa-app", "-o", "yaml")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hpa.yaml"), []byte(hpa), 0o600))
	patch := filepath.Join(dir, "patch.yaml")
	convertTo(t, patch, "-f", "hpa.yaml", "--patch", "deployment")
	command(t, kubectl, "-n", ns, "patch", "deployment", "hpa-app", "--type", "merge", "--patch-file", patch)
	waitEvent(t, ns, "hpa-app", "SpinscaleRefused", "HorizontalPodAutoscaler hpa-app", time.Minute)

	command(t, kubectl, "-n", ns, "delete", "hpa", "hpa-app")
	startLoad(t, ns, "hpa-app", 280)
	waitEvent(t, ns, "hpa-app", "SpinscaleRescaled", "1 → ", 3*time.Minute)
	d, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), "hpa-app", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/min-replicas": "1", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/target-cpu-utilization": "50",
	}, spinscaleAnnotations(d.Annotations))
}

// migrateSpinApp patches the SpinApp with the conversion of scaffold's
// flags: its deploymentAnnotations and enableAutoscaling: true, which lifts
// the refusal.
func migrateSpinApp(t *testing.T, kubectl, ns string) {
	t.Helper()
	patch := filepath.Join(t.TempDir(), "spinapp-patch.yaml")
	convertTo(t, patch, "--autoscaler", "hpa", "--replicas", "1", "--max-replicas", "10",
		"--autoscaler-target-cpu-utilization", "50", "--autoscaler-target-memory-utilization", "90",
		"--cpu-request", "100m", "--memory-request", "64Mi", "--patch", "spinapp")
	command(t, kubectl, "-n", ns, "patch", "spinapp", "spin-app", "--type", "merge", "--patch-file", patch)
	// The same patch as one line of JSON, for kubectl patch -p (idempotent).
	jsonPatch := filepath.Join(filepath.Dir(patch), "patch.json")
	convertTo(t, jsonPatch, "--autoscaler", "hpa", "--replicas", "1", "--max-replicas", "10",
		"--autoscaler-target-cpu-utilization", "50", "--autoscaler-target-memory-utilization", "90",
		"--cpu-request", "100m", "--memory-request", "64Mi", "--patch", "spinapp", "--output", "json")
	line, err := os.ReadFile(jsonPatch)
	require.NoError(t, err)
	command(t, kubectl, "-n", ns, "patch", "spinapp", "spin-app", "--type", "merge", "-p", strings.TrimSpace(string(line)))
	app, err := cluster.dynamic.Resource(spinAppGVR).Namespace(ns).Get(context.Background(), "spin-app", metav1.GetOptions{})
	require.NoError(t, err)
	enabled, _, _ := unstructured.NestedBool(app.Object, "spec", "enableAutoscaling")
	assert.True(t, enabled)
	ann, _, _ := unstructured.NestedStringMap(app.Object, "spec", "deploymentAnnotations")
	assert.Equal(t, "90", ann["spinscale.dev/target-memory-utilization"], "the SpinApp CRD accepts the patch")
	cpu, _, _ := unstructured.NestedString(app.Object, "spec", "resources", "requests", "cpu")
	assert.Equal(t, "100m", cpu)

	waitReplicas(t, ns, "spin-app", 3*time.Minute, "scaled once the SpinApp allows it", func(r int32) bool { return r > 2 })
}

func spinscaleAnnotations(ann map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range ann {
		if strings.HasPrefix(k, "spinscale.dev/") {
			out[k] = v
		}
	}
	return out
}

// startShipped runs `autoscaler run` as the shipped install does (its
// config file, leader election on), with the given kubeconfig.
func startShipped(t *testing.T, kubeconfig, configFile string, args ...string) *proc {
	t.Helper()
	base := []string{"run", "--kubeconfig", kubeconfig, "--config", configFile}
	p := &proc{cmd: exec.Command(cluster.autoscaler, append(base, args...)...), exited: make(chan struct{})}
	// Only the given kubeconfig: no admin credentials from the environment.
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("autoscaler output:\n%s", p.output())
		}
	})
	return p
}

type response struct {
	code int
	body string
}

func httpGet(t *testing.T, url string) response {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, string(body)}
}

// assertServiceAccountCan asks the API server's authorizer what the shipped
// ServiceAccount may do: everything the controller needs, and none of the
// nearby permissions it does not.
func assertServiceAccountCan(t *testing.T) {
	t.Helper()
	user := "system:serviceaccount:" + shippedNamespace + ":" + shippedServiceAccount
	for _, c := range []struct {
		ns, verb, group, resource, sub, name string
		allowed                              bool
	}{
		{"shop", "list", "apps", "deployments", "", "", true},
		{"", "watch", "apps", "deployments", "", "", true},
		{"shop", "patch", "apps", "deployments", "scale", "web", true},
		{"", "list", "", "pods", "", "", true},
		{"shop", "list", "metrics.k8s.io", "pods", "", "", true},
		{"shop", "create", "", "events", "", "", true},
		{"", "watch", "autoscaling", "horizontalpodautoscalers", "", "", true},
		{"", "watch", "keda.sh", "scaledobjects", "", "", true},
		{"", "watch", "core.spinkube.dev", "spinapps", "", "", true},
		{shippedNamespace, "create", "coordination.k8s.io", "leases", "", "", true},
		{shippedNamespace, "update", "coordination.k8s.io", "leases", "", "spinscale", true},

		{"shop", "update", "apps", "deployments", "", "web", false},
		{"shop", "patch", "apps", "deployments", "", "web", true}, // scale to zero: count and record in one write
		{"shop", "delete", "apps", "deployments", "", "web", false},
		{"shop", "update", "apps", "deployments", "scale", "web", false},
		{"shop", "delete", "", "pods", "", "x", false},
		{"shop", "get", "", "secrets", "", "x", false},
		{"", "list", "", "secrets", "", "", false},
		{"shop", "get", "", "configmaps", "", "x", false},
		{"shop", "create", "autoscaling", "horizontalpodautoscalers", "", "", false},
		{"shop", "patch", "core.spinkube.dev", "spinapps", "", "x", false},
		{"shop", "delete", "", "events", "", "x", false},
		{"default", "create", "coordination.k8s.io", "leases", "", "", false},
		{shippedNamespace, "update", "coordination.k8s.io", "leases", "", "other", false},
		{shippedNamespace, "delete", "coordination.k8s.io", "leases", "", "spinscale", false},
		{"", "list", "", "nodes", "", "", false},
	} {
		sar, err := cluster.client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + shippedNamespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: c.ns, Verb: c.verb, Group: c.group,
					Resource: c.resource, Subresource: c.sub, Name: c.name},
			},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		what := fmt.Sprintf("%s %s.%s/%s %q in %q", c.verb, c.resource, c.group, c.sub, c.name, c.ns)
		assert.Equal(t, c.allowed, sar.Status.Allowed, "%s: %s", what, sar.Status.Reason)
	}
}

// The chart installs, upgrades (rolling the pods on a config change) and
// uninstalls with the commands of docs/install.md, under another release
// name than the shipped manifests so both can coexist in one cluster.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	t.Parallel()
	helm := helmBinary(t)
	ns := "it-helm-" + utilrand.String(4)
	const release = "spinscale-helm"
	t.Cleanup(func() {
		cmd := exec.Command(helm, "uninstall", release, "--namespace", ns, "--ignore-not-found")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.kubeconfig)
		_ = cmd.Run()
		_ = cluster.client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	t.Log(command(t, helm, "install", release, "deploy/helm/spinscale", "--namespace", ns, "--create-namespace", "--wait", "--timeout", "2m"))
	d, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), release, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), d.Status.ReadyReplicas)
	before := d.Spec.Template.Annotations["checksum/config"]
	_, err = cluster.client.RbacV1().ClusterRoles().Get(context.Background(), release, metav1.GetOptions{})
	require.NoError(t, err)
	_, err = cluster.client.RbacV1().Roles(ns).Get(context.Background(), release+"-leader-election", metav1.GetOptions{})
	require.NoError(t, err)

	t.Log(command(t, helm, "upgrade", release, "deploy/helm/spinscale", "--namespace", ns, "--reuse-values",
		"--set", "config.prometheus.address=http://prometheus.monitoring:9090", "--set", "config.interval=10s", "--wait", "--timeout", "2m"))
	cm, err := cluster.client.CoreV1().ConfigMaps(ns).Get(context.Background(), release, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Data["config.yaml"], "interval: 10s")
	assert.Contains(t, cm.Data["config.yaml"], "address: http://prometheus.monitoring:9090")

	// An upgrade without changes (docs/install.md, Upgrading) keeps the values.
	t.Log(command(t, helm, "upgrade", release, "deploy/helm/spinscale", "--namespace", ns, "--reuse-values", "--wait", "--timeout", "2m"))
	cm, err = cluster.client.CoreV1().ConfigMaps(ns).Get(context.Background(), release, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Data["config.yaml"], "interval: 10s")
	d, err = cluster.client.AppsV1().Deployments(ns).Get(context.Background(), release, metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, before, d.Spec.Template.Annotations["checksum/config"], "a config change rolls the pods")

	status := command(t, helm, "status", release, "--namespace", ns, "--color", "never")
	assert.Contains(t, status, "STATUS: deployed")
	assert.Contains(t, status, "REVISION: 3")

	t.Log(command(t, helm, "uninstall", release, "--namespace", ns))
	_, err = cluster.client.RbacV1().ClusterRoles().Get(context.Background(), release, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "uninstall removes the ClusterRole")
}
