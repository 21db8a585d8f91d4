package annotations

import (
	"strings"
	"time"

	"github.com/spinscale/spinscale/internal/duration"
	"github.com/spinscale/spinscale/internal/recommender"
)

// maxScaleToZeroAfter bounds scale-to-zero-after.
const maxScaleToZeroAfter = 24 * time.Hour

// zero checks min-replicas 0 against the metrics, and parses KEDA's options
// on top of it: activation-threshold and scale-to-zero-after.
func (p *parser) zero(b bounds, spec *recommender.Spec) (*int64, time.Duration) {
	atZero := b.minOK && b.min == 0
	if atZero && !spec.WakesFromZero() {
		p.fail(KeyMinReplicas, "0 needs a Prometheus metric, an object or external one (%s, or an entry of %s of type prometheus, object or external), or an HTTP target (%s or %s): an app at zero has no pods to read cpu or memory from, so nothing would wake it",
			KeyPrometheusQuery, KeyMetrics, KeyHTTPTargetInFlight, KeyHTTPTargetRPS)
	}
	var activation *int64
	if v, ok := p.get(KeyActivationThreshold); ok {
		milli, valid := parseTarget(v)
		if strings.TrimSpace(v) == "0" {
			milli, valid = 0, true
		}
		switch {
		case !valid:
			p.fail(KeyActivationThreshold, "must be a quantity >= 0 in the unit of the Prometheus, object and external metrics (e.g. 0, 5, 0.5, 100m)")
		case b.minOK && !atZero:
			p.fail(KeyActivationThreshold, "requires %s: \"0\" (it decides when an app at zero wakes)", KeyMinReplicas)
		case atZero && !spec.UsesThresholded():
			p.fail(KeyActivationThreshold, "applies to Prometheus, object and external metrics, and this app has none: HTTP targets wake the app on any request")
		default:
			activation = &milli
		}
	}
	var after time.Duration
	if v, ok := p.get(KeyScaleToZeroAfter); ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d <= 0 || d > maxScaleToZeroAfter:
			p.fail(KeyScaleToZeroAfter, "must be a Go duration > 0s and <= %s (e.g. 30s, 5m)", duration.Format(maxScaleToZeroAfter))
		case b.minOK && !atZero:
			p.fail(KeyScaleToZeroAfter, "requires %s: \"0\"", KeyMinReplicas)
		default:
			after = d
		}
	}
	return activation, after
}
