package metrics

import (
	"fmt"
	"math"

	"github.com/prometheus/common/model"

	"github.com/spinscale/spinscale/internal/recommender"
)

// QueryObservation maps what the Prometheus client returned for query q, a
// value or an error, onto an observation: a scalar or one series without
// podLabel is a single value; series that all carry podLabel are per-pod
// samples; an empty result, NaN, a shape Spinscale cannot use and a failed
// request are observations carrying a *QueryError. It is the source's
// mapping, exported so that simulate feeds its scenarios' results through
// the very code the controller runs.
func QueryObservation(q string, podLabel model.LabelName, v model.Value, err error) recommender.Observation {
	if err != nil {
		return recommender.Observation{Err: classify(q, err)}
	}
	return observation(q, podLabel, v)
}

func observation(q string, podLabel model.LabelName, v model.Value) recommender.Observation {
	fail := func(kind, reason, detail string) recommender.Observation {
		qe := &QueryError{Kind: kind, Query: q, Reason: reason, Detail: detail}
		if kind == KindEmpty || kind == KindNaN {
			qe.err = recommender.ErrNoData
		}
		return recommender.Observation{Err: qe}
	}
	const aggregate = "aggregate to one value with sum(...) or to one series per pod with sum by (%s) (...)"
	switch r := v.(type) {
	case *model.Scalar:
		if r == nil {
			return fail(KindEmpty, "empty result", "")
		}
		m, ok := milli(float64(r.Value))
		if !ok {
			return fail(KindNaN, nonFinite, "scalar "+r.Value.String())
		}
		return recommender.Observation{Value: m, Timestamp: r.Timestamp.Time()}
	case model.Vector:
		if len(r) == 0 {
			return fail(KindEmpty, "empty result", "")
		}
		withPod := 0
		for _, s := range r {
			if s.Metric[podLabel] != "" {
				withPod++
			}
			if s.Histogram != nil {
				return fail(KindShape, "native histogram samples: reduce them to a number, e.g. with histogram_quantile, histogram_count or histogram_sum", "")
			}
		}
		switch {
		case withPod == len(r):
			return perPod(r, podLabel, fail)
		case len(r) == 1:
			m, ok := milli(float64(r[0].Value))
			if !ok {
				return fail(KindNaN, nonFinite, "value "+r[0].Value.String())
			}
			return recommender.Observation{Value: m, Timestamp: r[0].Timestamp.Time()}
		case withPod == 0:
			return fail(KindShape, fmt.Sprintf("several series without a %q label: "+aggregate, podLabel, podLabel),
				fmt.Sprintf("%d series without a %q label, e.g. %s: "+aggregate, len(r), podLabel, r[0].Metric, podLabel))
		default:
			return fail(KindShape, fmt.Sprintf("some series without a %q label: "+aggregate, podLabel, podLabel),
				fmt.Sprintf("%d of %d series without a %q label: "+aggregate, len(r)-withPod, len(r), podLabel, podLabel))
		}
	case model.Matrix:
		return fail(KindShape, "a range vector (matrix): use an instant vector, e.g. rate(x[1m]) rather than x[1m]", "")
	case *model.String:
		return fail(KindShape, "a string result: the query must return a number", "")
	case nil:
		return fail(KindEmpty, "empty result", "")
	default:
		return fail(KindShape, fmt.Sprintf("result type %s: the query must return a scalar or an instant vector", v.Type()), "")
	}
}

const nonFinite = "the result is NaN or infinite (a division by zero?)"

// perPod maps a vector whose series all carry the pod label. A pod with a
// NaN or infinite value is left out, so the engine treats it as a pod
// without a sample (HPA's missing-pod rules); when every pod is left out
// the metric fails.
func perPod(r model.Vector, podLabel model.LabelName, fail func(kind, reason, detail string) recommender.Observation) recommender.Observation {
	obs := recommender.Observation{PerPod: true, Samples: make([]recommender.Sample, 0, len(r))}
	seen := make(map[model.LabelValue]bool, len(r))
	nonFiniteIn := 0
	for _, s := range r {
		pod := s.Metric[podLabel]
		if seen[pod] {
			return fail(KindShape, fmt.Sprintf("several series for one pod: aggregate to one series per pod with sum by (%s) (...)", podLabel),
				fmt.Sprintf("several series for %s %q: aggregate to one series per pod with sum by (%s) (...)", podLabel, pod, podLabel))
		}
		seen[pod] = true
		m, ok := milli(float64(s.Value))
		if !ok {
			nonFiniteIn++
			continue
		}
		obs.Samples = append(obs.Samples, recommender.Sample{Pod: string(pod), Value: m, Timestamp: s.Timestamp.Time()})
	}
	if len(obs.Samples) == 0 {
		return fail(KindNaN, nonFinite, fmt.Sprintf("every one of %d pods is NaN or infinite", nonFiniteIn))
	}
	return obs
}

// milli converts a value to integer milli-units, rounding to the nearest;
// false for NaN and ±Inf. Values beyond int64 saturate: they are data, only
// enormous.
func milli(v float64) (int64, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	m := math.Round(v * 1000)
	switch {
	case m >= math.MaxInt64:
		return math.MaxInt64, true
	case m <= math.MinInt64:
		return math.MinInt64, true
	}
	return int64(m), true
}
