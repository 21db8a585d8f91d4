package activator

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/httpstats"
)

// counterValue reads a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func TestAppMetricsAreTheVectorsSeries(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	a := newApp(httpstats.App{Namespace: "ns", Name: "web"}, epoch)
	am := m.of(a)
	assert.Same(t, am, m.of(a), "looked up once")
	for _, code := range []int{200, 200, 503, 99, 600} {
		am.requests(code).Inc()
	}
	for code, want := range map[string]float64{"200": 2, "503": 1, "99": 1, "600": 1, "404": 0} {
		assert.Equal(t, want, counterValue(t, m.requests.WithLabelValues("ns", "web", code)), code)
	}
	am.held.Add(2)
	am.inFlight.Inc()
	var g dto.Metric
	require.NoError(t, m.held.WithLabelValues("ns", "web").Write(&g))
	assert.Equal(t, 2.0, g.GetGauge().GetValue())
	require.NoError(t, m.inFlight.WithLabelValues("ns", "web").Write(&g))
	assert.Equal(t, 1.0, g.GetGauge().GetValue())
}

func TestCounterWaitReturnsWhenIdle(t *testing.T) {
	var c counter
	require.NoError(t, c.wait(context.Background()), "idle at first")
	c.add(1)
	c.add(1)
	c.add(-1)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.wait(cancelled)
	require.ErrorIs(t, err, context.Canceled, "one request is still in flight")
	assert.Contains(t, err.Error(), "1 requests still in flight")

	waited := make(chan error, 1)
	go func() { waited <- c.wait(context.Background()) }()
	for !c.waiting() {
		runtime.Gosched()
	}
	c.add(-1)
	select {
	case err := <-waited:
		require.NoError(t, err)
	case <-time.After(waitLimit):
		t.Fatal("wait did not return once idle")
	}
}

// waiting reports whether someone waits for c to be idle.
func (c *counter) waiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idle != nil
}

func TestBufferPoolLendsFullBuffers(t *testing.T) {
	var p bufferPool
	b := p.Get()
	assert.Len(t, b, bufferSize)
	p.Put(b)
	p.Put(make([]byte, 10)) // not one of its own: dropped, no panic
	assert.Len(t, p.Get(), bufferSize)
}
