package annotations

import (
	"strconv"
	"time"

	"github.com/spinscale/spinscale/internal/duration"
	"github.com/spinscale/spinscale/internal/recommender"
)

// The HTTP targets: the activators' per-second counts, decided on by
// Knative's KPA rules (recommender/http.go). Defaults and bounds are
// Knative's (config-autoscaler: stable-window 60s within 6s..1h, panic
// window 10% of it, panic threshold 200%).
const (
	defaultHTTPStableWindow   = 60 * time.Second
	minHTTPStableWindow       = 6 * time.Second
	maxHTTPStableWindow       = time.Hour
	defaultHTTPPanicWindow    = 6 * time.Second
	minHTTPPanicWindow        = time.Second
	defaultHTTPPanicThreshold = 2.0
	maxHTTPPanicThreshold     = 10.0
)

// httpMetrics parses the HTTP targets and their windows; present is true
// when a target key is set. Each target makes a metric; with both, the
// larger proposal wins, as between any metrics.
func (p *parser) httpMetrics() (out []recommender.MetricSpec, present bool) {
	conc, hasConc := p.get(KeyHTTPTargetInFlight)
	rps, hasRPS := p.get(KeyHTTPTargetRPS)
	present = hasConc || hasRPS
	h := recommender.HTTPSpec{StableWindow: defaultHTTPStableWindow, PanicWindow: defaultHTTPPanicWindow, PanicThreshold: defaultHTTPPanicThreshold}
	stableOK := true
	if v, ok := p.get(KeyHTTPStableWindow); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < minHTTPStableWindow || d > maxHTTPStableWindow || d%time.Second != 0 {
			p.fail(KeyHTTPStableWindow, "must be a Go duration in whole seconds from %s to %s (e.g. 60s, 2m)", duration.Format(minHTTPStableWindow), duration.Format(maxHTTPStableWindow))
			stableOK = false
		} else {
			h.StableWindow = d
		}
		p.needsHTTPTarget(KeyHTTPStableWindow, present)
	}
	if v, ok := p.get(KeyHTTPPanicWindow); ok {
		d, err := time.ParseDuration(v)
		upper := "the stable window (" + duration.Format(h.StableWindow) + ")"
		if !stableOK {
			upper = KeyHTTPStableWindow
		}
		if err != nil || d < minHTTPPanicWindow || d > h.StableWindow || d%time.Second != 0 {
			p.fail(KeyHTTPPanicWindow, "must be a Go duration in whole seconds from %s to %s (e.g. 6s)", duration.Format(minHTTPPanicWindow), upper)
		} else {
			h.PanicWindow = d
		}
		p.needsHTTPTarget(KeyHTTPPanicWindow, present)
	} else {
		// Knative's panic-window-percentage, 10 % of the stable window:
		// 6s for the default 60s, whole seconds, at least 1s.
		h.PanicWindow = max(minHTTPPanicWindow, (h.StableWindow / 10).Truncate(time.Second))
	}
	if v, ok := p.get(KeyHTTPPanicThreshold); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 1 && f <= maxHTTPPanicThreshold) { // also rejects NaN
			p.fail(KeyHTTPPanicThreshold, "must be a decimal above 1 and at most %g: the panic window's pods over the ready pods (e.g. 2: twice as many)", maxHTTPPanicThreshold)
		} else {
			h.PanicThreshold = f
		}
		p.needsHTTPTarget(KeyHTTPPanicThreshold, present)
	}
	for _, t := range []struct {
		key, text, name string
		set             bool
		metric          recommender.HTTPMetric
		example         string
	}{
		{KeyHTTPTargetInFlight, conc, recommender.HTTPConcurrencyName, hasConc, recommender.HTTPConcurrency, "10, 0.5, 100"},
		{KeyHTTPTargetRPS, rps, recommender.HTTPRPSName, hasRPS, recommender.HTTPRPS, "50, 0.5, 1k"},
	} {
		if !t.set {
			continue
		}
		milli, ok := parseTarget(t.text)
		if !ok {
			p.fail(t.key, "%s per pod", targetAllowed(t.example))
			continue
		}
		hs := h
		hs.Metric = t.metric
		out = append(out, recommender.MetricSpec{Name: t.name, Source: recommender.SourceHTTP,
			Target: recommender.TargetAverageValue, TargetMilli: milli, HTTP: hs})
	}
	return out, present
}

// needsHTTPTarget fails key, a window or threshold, when no HTTP target is set.
func (p *parser) needsHTTPTarget(key string, present bool) {
	if !present {
		p.fail(key, "requires an HTTP target: set %s or %s", KeyHTTPTargetInFlight, KeyHTTPTargetRPS)
	}
}
