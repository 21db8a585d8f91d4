package recommender

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failure decides once for a single metric and returns its error.
func failure(t *testing.T, ms MetricSpec, replicas int32, ps []Pod, obs Observation) error {
	t.Helper()
	spec := baseSpec(ms)
	in := Input{SpecReplicas: replicas, StatusReplicas: replicas, Pods: ps, Metrics: []Observation{obs}}
	d, _ := Decide(&spec, &in, settled(), t0)
	require.Len(t, d.Metrics, 1)
	require.Error(t, d.Metrics[0].Err)
	return d.Metrics[0].Err
}

// staleSamples are n samples of pod-0.. taken three minutes ago, past the
// two-minute maxSampleAge.
func staleSamples(n int) Observation {
	o := Observation{PerPod: true}
	for i := range n {
		o.Samples = append(o.Samples, Sample{Pod: fmt.Sprintf("pod-%d", i), Value: 100, Timestamp: ago(3 * time.Minute)})
	}
	return o
}

func withoutCPURequest(container string) func(*Pod) {
	return func(p *Pod) { p.CPU.MissingIn = container }
}

// TestCauseIgnoresCountsAndPodNames: the same failure on a different number
// of pods, or on another pod of the Deployment, has the same cause, so that a
// warning keyed on it is not recorded again when a pod comes or goes.
func TestCauseIgnoresCountsAndPodNames(t *testing.T) {
	noReady := map[int][]func(*Pod){0: {neverReady}, 1: {neverReady}, 2: {neverReady}}
	tests := []struct {
		name string
		a, b func(t *testing.T) error
		want string
	}{
		{
			name: "all-zero usage on 2 and on 3 pods",
			a:    func(t *testing.T) error { return failure(t, cpuUtil(50), 2, pods(2, nil), samples(0, 0)) },
			b:    func(t *testing.T) error { return failure(t, cpuUtil(50), 3, pods(3, nil), samples(0, 0, 0)) },
			want: "every pod reports zero usage",
		},
		{
			name: "no ready pods among 2 and among 3",
			a: func(t *testing.T) error {
				return failure(t, prom("q", TargetValue, 1000), 2, pods(2, noReady), scalar(5000))
			},
			b: func(t *testing.T) error {
				return failure(t, prom("q", TargetValue, 1000), 3, pods(3, noReady), scalar(5000))
			},
			want: "no ready pods",
		},
		{
			name: "missing request in the same container of two pods",
			a: func(t *testing.T) error {
				return failure(t, cpuUtil(50), 2, pods(2, map[int][]func(*Pod){0: {withoutCPURequest("sidecar")}}), samples(500, 500))
			},
			b: func(t *testing.T) error {
				return failure(t, cpuUtil(50), 2, pods(2, map[int][]func(*Pod){1: {withoutCPURequest("sidecar")}}), samples(500, 500))
			},
			want: "missing request for cpu in container sidecar",
		},
		{
			name: "stale samples of 1 and of 2 pods",
			a:    func(t *testing.T) error { return failure(t, cpuUtil(50), 1, pods(1, nil), staleSamples(1)) },
			b:    func(t *testing.T) error { return failure(t, cpuUtil(50), 2, pods(2, nil), staleSamples(2)) },
			want: "stale data",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a(t), tt.b(t)
			require.NotEqual(t, a.Error(), b.Error(), "the messages differ in a count or a pod name")
			assert.Equal(t, tt.want, Cause(a))
			assert.Equal(t, tt.want, Cause(b))
		})
	}
}

// summarized is a source's error that knows its stable part.
type summarized struct{ detail string }

func (e summarized) Error() string   { return "source down: " + e.detail }
func (e summarized) Summary() string { return "source down" }

func TestCause(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no error", nil, ""},
		{"sentinel alone", ErrNoPods, "no pods match the selector"},
		{"wrapped sentinel", fmt.Errorf("fetch pod metrics shop/app: %w", fmt.Errorf("%w: 3 pods", ErrNoData)), "no data"},
		{"missing request names the container, not the pod",
			&MissingRequestError{Resource: "memory", Container: "app", Pod: "shop-7c9f-abcde"}, "missing request for memory in container app"},
		{"an error with its own summary", fmt.Errorf("tick: %w", summarized{detail: "10.0.0.1:9090"}), "source down"},
		{"anything else in full", errors.New("resource metrics API unavailable: connection refused"),
			"resource metrics API unavailable: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Cause(tt.err))
		})
	}
}

func TestMissingRequestErrorIsErrMissingRequest(t *testing.T) {
	err := fmt.Errorf("decide: %w", &MissingRequestError{Resource: "cpu", Container: "sidecar", Pod: "shop-1"})
	assert.ErrorIs(t, err, ErrMissingRequest)
	assert.EqualError(t, err, "decide: missing request for cpu in container sidecar of pod shop-1")
}
