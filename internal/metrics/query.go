package metrics

import (
	"context"

	"github.com/spinscale/spinscale/internal/recommender"
)

// QuerySource runs the PromQL queries of a tick. Each distinct query runs
// once, however many apps share it; queries run concurrently under a limit
// and within ctx's deadline. A per-pod result (one series per pod label) is
// a PerPod observation; a scalar or single-sample vector is a single value;
// anything else is an observation carrying an error.
type QuerySource interface {
	Query(ctx context.Context, queries []string) map[string]recommender.Observation
}
