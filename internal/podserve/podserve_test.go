package podserve

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestParseAddressMap(t *testing.T) {
	for _, tc := range []struct {
		name, in, ip, want, err string
	}{
		{name: "kwok to loopback", in: "10.244.0.0/16=127.244.0.0/16", ip: "10.244.3.7", want: "127.244.3.7"},
		{name: "host bits kept under a /8", in: "10.0.0.0/8=127.0.0.0/8", ip: "10.1.2.3", want: "127.1.2.3"},
		{name: "unmasked prefixes", in: " 10.244.9.9/16 = 127.201.1.1/16 ", ip: "10.244.0.5", want: "127.201.0.5"},
		{name: "outside the map", in: "10.244.0.0/16=127.244.0.0/16", ip: "10.245.0.1"},
		{name: "not an address", in: "10.244.0.0/16=127.244.0.0/16", ip: "pod"},
		{name: "no equals", in: "10.244.0.0/16", err: "want FROM=TO"},
		{name: "bad cidr", in: "10.244.0.0/16=127.244.0.0", err: "127.244.0.0"},
		{name: "lengths differ", in: "10.244.0.0/16=127.244.0.0/24", err: "same prefix length (/16 and /24)"},
		{name: "not loopback", in: "10.244.0.0/16=192.168.0.0/16", err: "not inside the loopback range"},
		{name: "ipv6", in: "fd00::/64=::1/64", err: "IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseAddressMap(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), tc.in)
				return
			}
			require.NoError(t, err)
			got, ok := m.Map(tc.ip)
			assert.Equal(t, tc.want != "", ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	m, err := ParseAddressMap("10.244.0.0/16=127.244.0.0/16")
	require.NoError(t, err)
	client := fake.NewClientset()
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{name: "no namespace", cfg: Config{Map: m}, err: "no namespace"},
		{name: "no map", cfg: Config{Namespace: "ns"}, err: "no address map"},
		{name: "bad port", cfg: Config{Namespace: "ns", Map: m, Port: 70000}, err: "port 70000"},
		{name: "bad selector", cfg: Config{Namespace: "ns", Map: m, Selector: "a in ("}, err: `selector "a in ("`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(client, tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func testPod(name, ip string, phase corev1.PodPhase, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9000}, {Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: phase, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

// testMap maps 10.244.0.0/16 into a /16 of loopback picked at random, so
// parallel runs of this test do not bind the same addresses.
func testMap(t *testing.T) (AddressMap, string) {
	prefix := fmt.Sprintf("127.%d", 100+rand.IntN(150))
	m, err := ParseAddressMap("10.244.0.0/16=" + prefix + ".0.0/16")
	require.NoError(t, err)
	return m, prefix
}

func get(t *testing.T, addr string) (string, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/hello")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.Header.Get(PodHeader), string(body), nil
}

// run runs s until the returned stop is called (once or more); the test's
// end stops it too.
func run(t *testing.T, s *Server) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return stop
}

func names(pods []Pod) []string {
	out := []string{}
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func waitNames(t *testing.T, s *Server, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitFor(ctx, func(p []Pod) bool { return assert.ObjectsAreEqual(want, names(p)) }),
		"served pods %v, want %v", names(s.Pods()), want)
}

func TestServesRunningReadyPodsOnTheirMappedAddress(t *testing.T) {
	m, prefix := testMap(t)
	client := fake.NewClientset()
	pods := client.CoreV1().Pods("ns")
	ctx := context.Background()
	_, err := pods.Create(ctx, testPod("pending", "", corev1.PodPending, false), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = pods.Create(ctx, testPod("a", "10.244.0.2", corev1.PodRunning, true), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = pods.Create(ctx, testPod("unready", "10.244.0.3", corev1.PodRunning, false), metav1.CreateOptions{})
	require.NoError(t, err)
	other := testPod("other-app", "10.244.0.4", corev1.PodRunning, true)
	other.Labels["app"] = "other"
	_, err = pods.Create(ctx, other, metav1.CreateOptions{})
	require.NoError(t, err)

	s, err := New(client, Config{Namespace: "ns", Selector: "app=web", Map: m})
	require.NoError(t, err)
	stop := run(t, s)

	waitNames(t, s, "a")
	addrA := prefix + ".0.2:8080"
	require.Equal(t, addrA, s.Pods()[0].Addr, "the container port named http on the mapped address")
	pod, body, err := get(t, addrA)
	require.NoError(t, err)
	assert.Equal(t, "a", pod)
	assert.Equal(t, "a /hello\n", body)

	// The unready pod turns Ready; the pending one gets an address and runs.
	_, err = pods.UpdateStatus(ctx, testPod("unready", "10.244.0.3", corev1.PodRunning, true), metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = pods.UpdateStatus(ctx, testPod("pending", "10.244.0.5", corev1.PodRunning, true), metav1.UpdateOptions{})
	require.NoError(t, err)
	waitNames(t, s, "a", "pending", "unready")
	pod, _, err = get(t, prefix+".0.5:8080")
	require.NoError(t, err)
	assert.Equal(t, "pending", pod)

	// a goes away: its address is closed; a terminating pod stops at once.
	require.NoError(t, pods.Delete(ctx, "a", metav1.DeleteOptions{}))
	term := testPod("unready", "10.244.0.3", corev1.PodRunning, true)
	term.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	_, err = pods.Update(ctx, term, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitNames(t, s, "pending")
	_, _, err = get(t, addrA)
	var op *net.OpError
	require.ErrorAs(t, err, &op, "nothing listens for a deleted pod")

	// A new pod reusing a's address is served there.
	_, err = pods.Create(ctx, testPod("b", "10.244.0.2", corev1.PodRunning, true), metav1.CreateOptions{})
	require.NoError(t, err)
	waitNames(t, s, "b", "pending")
	pod, _, err = get(t, addrA)
	require.NoError(t, err)
	assert.Equal(t, "b", pod)
	assert.Equal(t, int64(3), s.Served())

	// Run's end closes every listener.
	require.NoError(t, stop())
	_, _, err = get(t, prefix+".0.5:8080")
	require.ErrorAs(t, err, &op)
}

func TestLatencyAndFixedPort(t *testing.T) {
	m, prefix := testMap(t)
	client := fake.NewClientset(testPod("a", "10.244.1.9", corev1.PodRunning, true))
	s, err := New(client, Config{Namespace: "ns", Map: m, Port: 18080, Latency: 150 * time.Millisecond})
	require.NoError(t, err)
	run(t, s)
	waitNames(t, s, "a")

	addr := prefix + ".1.9:18080"
	results := make(chan error, 3)
	start := time.Now()
	for range 3 {
		go func() { _, _, err := get(t, addr); results <- err }()
	}
	for range 3 {
		require.NoError(t, <-results)
	}
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "each answer waits the latency")
	assert.Equal(t, int64(3), s.MaxInFlight(), "the three requests were answered at once")
	assert.Equal(t, int64(3), s.Pods()[0].Served)

	s.SetLatency(0)
	start = time.Now()
	_, _, err = get(t, addr)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 150*time.Millisecond)
}

func TestPodWithoutPortIsNotServed(t *testing.T) {
	m, _ := testMap(t)
	noPort := testPod("noport", "10.244.0.7", corev1.PodRunning, true)
	noPort.Spec.Containers[0].Ports = nil
	outside := testPod("outside", "192.168.0.7", corev1.PodRunning, true)
	client := fake.NewClientset(noPort, outside, testPod("ok", "10.244.0.8", corev1.PodRunning, true))
	s, err := New(client, Config{Namespace: "ns", Map: m})
	require.NoError(t, err)
	run(t, s)
	waitNames(t, s, "ok")
	// One handler takes the pods in order: once a pod made later is
	// served, the first three were all seen, and only ok was servable.
	_, err = client.CoreV1().Pods("ns").Create(context.Background(), testPod("later", "10.244.0.9", corev1.PodRunning, true), metav1.CreateOptions{})
	require.NoError(t, err)
	waitNames(t, s, "later", "ok")
}

// kwok hands a deleted pod's address to a new pod; when the new pod is
// seen Ready before the old one is seen to go, it is served as soon as the
// old one's listener closes.
func TestAddressReusedBeforeTheOldPodIsGone(t *testing.T) {
	m, prefix := testMap(t)
	client := fake.NewClientset(testPod("old", "10.244.2.1", corev1.PodRunning, true))
	s, err := New(client, Config{Namespace: "ns", Map: m})
	require.NoError(t, err)
	run(t, s)
	waitNames(t, s, "old")
	ctx := context.Background()
	_, err = client.CoreV1().Pods("ns").Create(ctx, testPod("new", "10.244.2.1", corev1.PodRunning, true), metav1.CreateOptions{})
	require.NoError(t, err)
	// One handler takes the pods in order: once a later pod is served,
	// new was seen, and waits for the address.
	_, err = client.CoreV1().Pods("ns").Create(ctx, testPod("later", "10.244.2.2", corev1.PodRunning, true), metav1.CreateOptions{})
	require.NoError(t, err)
	waitNames(t, s, "later", "old")
	pod, _, err := get(t, prefix+".2.1:8080")
	require.NoError(t, err)
	assert.Equal(t, "old", pod)

	require.NoError(t, client.CoreV1().Pods("ns").Delete(ctx, "old", metav1.DeleteOptions{}))
	waitNames(t, s, "later", "new")
	pod, _, err = get(t, prefix+".2.1:8080")
	require.NoError(t, err)
	assert.Equal(t, "new", pod)
}
