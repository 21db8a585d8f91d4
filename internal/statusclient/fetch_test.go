package statusclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	restclient "k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/status"
)

// serve answers /apps with the document.
func serve(t *testing.T, l status.List) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != status.Path {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(l)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestURLFetch(t *testing.T) {
	srv := serve(t, fixture())
	got, err := URL{Base: srv.URL + "/"}.Fetch(context.Background())
	require.NoError(t, err)
	assert.Equal(t, fixture(), got)

	_, err = URL{Base: srv.URL + "/nothing"}.Fetch(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "404 Not Found")
}

const ns = "spinscale-system"

func controllerPod(name string, phase corev1.PodPhase, port int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/name": "spinscale"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "autoscaler", Ports: []corev1.ContainerPort{
			{Name: "health", ContainerPort: 8081}, {Name: "metrics", ContainerPort: port},
		}}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func lease(holder string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "spinscale", Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder)}}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name    string
		objects []runtime.Object
		forbid  string // resource the fake refuses
		want    Endpoint
		wantErr []string
	}{
		{
			name:    "the Lease names the leader's pod, its spec the port",
			objects: []runtime.Object{lease("spinscale-5c9d-x2_ab12cd"), controllerPod("spinscale-5c9d-x1", corev1.PodRunning, 8080), controllerPod("spinscale-5c9d-x2", corev1.PodRunning, 9090)},
			want:    Endpoint{Pod: "spinscale-5c9d-x2", Port: "9090", Via: "lease"},
		},
		{
			name:    "without a Lease, the first Running pod by the chart's labels",
			objects: []runtime.Object{controllerPod("a-pending", corev1.PodPending, 8080), controllerPod("b-running", corev1.PodRunning, 8080)},
			want:    Endpoint{Pod: "b-running", Port: "8080", Via: "pods"},
		},
		{
			name:    "nothing at all",
			objects: []runtime.Object{controllerPod("a-pending", corev1.PodPending, 8080)},
			wantErr: []string{"no controller found", `no Lease "spinscale"`, "no Running pod labelled app.kubernetes.io/name=spinscale", "--controller-namespace"},
		},
		{
			name:    "a Lease whose pod is gone",
			objects: []runtime.Object{lease("old-pod_ab12cd")},
			wantErr: []string{"no controller found", `held by "old-pod_ab12cd"`, "pod spinscale-system/old-pod does not exist"},
		},
		{
			name:    "a released Lease",
			objects: []runtime.Object{&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "spinscale", Namespace: ns}}},
			wantErr: []string{"has no holder"},
		},
		{
			name:    "a pod without a metrics port",
			objects: []runtime.Object{lease("p_ab12cd"), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}}},
			wantErr: []string{`pod spinscale-system/p has no container port named "metrics"`},
		},
		{
			name:    "forbidden to read the Lease",
			forbid:  "leases",
			wantErr: []string{"forbidden", "needs get leases (coordination.k8s.io) in namespace spinscale-system"},
		},
		{
			name:    "forbidden to list pods",
			forbid:  "pods",
			wantErr: []string{"forbidden", "needs list pods in namespace spinscale-system"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			if tt.forbid != "" {
				client.PrependReactor("*", tt.forbid, func(a k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: tt.forbid}, "", errors.New("RBAC"))
				})
			}
			l := &Leader{Client: client, Namespace: ns, LeaseName: DefaultLeaseName, Selector: DefaultSelector}

			got, err := l.Find(context.Background())

			if tt.wantErr != nil {
				require.Error(t, err)
				for _, s := range tt.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// rawWrapper is the answer of the fake pod proxy.
type rawWrapper struct {
	body []byte
	err  error
}

func (r rawWrapper) DoRaw(context.Context) ([]byte, error) { return r.body, r.err }
func (r rawWrapper) Stream(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(r.body)), r.err
}

// The fake clientset's proxy answers with what a reactor returns, so the
// test asserts the exact request: GET http://<pod>:<port>/apps.
func TestLeaderFetchThroughThePodProxy(t *testing.T) {
	client := fake.NewClientset(lease("leader-pod_ab12cd"), controllerPod("leader-pod", corev1.PodRunning, 8080))
	body, err := json.Marshal(fixture())
	require.NoError(t, err)
	var answer restclient.ResponseWrapper = rawWrapper{body: body}
	var got k8stesting.ProxyGetAction
	client.PrependProxyReactor("pods", func(a k8stesting.Action) (bool, restclient.ResponseWrapper, error) {
		got = a.(k8stesting.ProxyGetAction)
		return true, answer, nil
	})
	l := &Leader{Client: client, Namespace: ns, LeaseName: DefaultLeaseName, Selector: DefaultSelector}

	list, err := l.Fetch(context.Background())

	require.NoError(t, err)
	assert.Equal(t, fixture(), list)
	assert.Equal(t, []string{ns, "http", "leader-pod", "8080", "/apps"}, []string{got.GetNamespace(), got.GetScheme(), got.GetName(), got.GetPort(), got.GetPath()})

	// A failure forgets the pod: the next Fetch looks the leader up again.
	answer = rawWrapper{err: apierrors.NewForbidden(schema.GroupResource{Resource: "pods/proxy"}, "leader-pod", errors.New("RBAC"))}
	_, err = l.Fetch(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs get pods/proxy in namespace spinscale-system")
	assert.Nil(t, l.found)
}
