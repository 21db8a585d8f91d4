package metrics

import (
	"context"
	"errors"

	"github.com/spinscale/spinscale/internal/recommender"
)

// QuerySource runs the PromQL queries of a tick. Each distinct query runs
// once, however many apps share it; queries run concurrently under a limit
// and within ctx's deadline. A per-pod result (one series per pod label) is
// a PerPod observation; a scalar or single-sample vector is a single value;
// anything else is an observation carrying an error.
type QuerySource interface {
	Query(ctx context.Context, queries []Query) map[Query]recommender.Observation
}

// Query is one PromQL query as a metric asks for it: its server (empty for
// the default one) and extra query parameters (URL-encoded, sorted) are
// part of its identity, so that two metrics share a query only when all
// three are the same.
type Query struct {
	Server string
	Params string
	PromQL string
}

// QueryOf is the query of a Prometheus metric.
func QueryOf(ms *recommender.MetricSpec) Query {
	return Query{Server: ms.Server, Params: ms.Params, PromQL: ms.Query}
}

// String is the query as messages show it: the PromQL, then where it went
// when that is not the default server as is.
func (q Query) String() string {
	s := q.PromQL
	if q.Server != "" {
		s += " on " + q.Server
	}
	if q.Params != "" {
		s += " with " + q.Params
	}
	return s
}

// NullAsZero reads an empty result as 0 (a metric's ignoreNullValues, as
// KEDA's): every other observation, failures included, is returned as is.
func NullAsZero(obs recommender.Observation) recommender.Observation {
	var qe *QueryError
	if errors.As(obs.Err, &qe) && qe.Kind == KindEmpty {
		return recommender.Observation{Value: 0}
	}
	return obs
}
