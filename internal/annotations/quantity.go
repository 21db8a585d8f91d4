package annotations

import (
	"errors"
	"fmt"
	"regexp"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spinscale/spinscale/internal/recommender"
)

// This file parses quantities from untrusted text: targets are user input
// and apimachinery's parser must never see a pathological number.

var maxTarget = resource.NewMilliQuantity(maxTargetMilli, resource.DecimalSI)

// extremeNumber matches a decimal exponent of 100 or more in magnitude, or a
// run of more than 30 digits. resource.ParseQuantity takes minutes on
// "1e-2147483647" and Quantity.String is slow on huge digit strings, so such
// numbers are refused before they reach either; no real target or tolerance
// needs them.
var extremeNumber = regexp.MustCompile(`[0-9.][eE][+-]?0*[1-9][0-9]{2,}|[0-9]{31,}`)

// ErrExtremeQuantity rejects a quantity text that apimachinery cannot parse
// in reasonable time or format safely.
var ErrExtremeQuantity = errors.New("numbers must have at most 30 digits and an exponent below 100")

// ParseQuantity is resource.ParseQuantity for untrusted text: it refuses
// texts longer than 64 characters and extreme exponents or digit runs first.
func ParseQuantity(s string) (resource.Quantity, error) {
	if len(s) > maxQuantityLen {
		return resource.Quantity{}, fmt.Errorf("quantity longer than %d characters", maxQuantityLen)
	}
	if extremeNumber.MatchString(s) {
		return resource.Quantity{}, ErrExtremeQuantity
	}
	return resource.ParseQuantity(s)
}

// parseTarget parses a quantity target into milli-units; ok is false unless
// it is a quantity in (0, maxTarget].
func parseTarget(s string) (int64, bool) {
	q, err := ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return 0, false
	}
	// The bound is checked on a float: Quantity.Cmp panics on some extreme
	// exponents. A value too small for a float64 is treated as zero.
	if f := q.AsApproximateFloat64(); !(f > 0 && f <= float64(maxTargetMilli)/1000) {
		return 0, false
	}
	// MilliValue rounds up, so a positive target is never 0m.
	return q.MilliValue(), true
}

// targetAllowed describes what parseTarget accepts.
func targetAllowed(example string) string {
	return fmt.Sprintf("must be a quantity > 0 and <= %s (e.g. %s)", maxTarget.String(), example)
}

// queryTarget is a Prometheus metric's target as written: the value of a
// target key, or of a target field of a metrics-list entry.
type queryTarget struct {
	name string // the key or the field
	kind recommender.TargetType
	text string
	set  bool
}

// queryTargetAllowed is what a Prometheus metric's target may be.
var queryTargetAllowed = targetAllowed("400, 0.5, 1k")

// setTarget parses t into ms's target; false, and ms unchanged, when t is not
// a target parseTarget accepts.
func setTarget(ms *recommender.MetricSpec, t queryTarget) bool {
	milli, ok := parseTarget(t.text)
	if ok {
		ms.Target, ms.TargetMilli = t.kind, milli
	}
	return ok
}
