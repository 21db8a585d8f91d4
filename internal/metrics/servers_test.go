package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// recorder is a Prometheus API that answers every query with one value and
// records each request's parameters and headers.
type recorder struct {
	value string
	mu    sync.Mutex
	seen  []http.Request
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if err := req.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.seen = append(r.seen, *req)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(vector(sample("", r.value))))
}

// A metric's server and query parameters decide where its query goes: the
// named server's address and headers, with the parameters added.
func TestQueriesGoToTheirServerWithTheirParameters(t *testing.T) {
	def, thanos := &recorder{value: "1"}, &recorder{value: "2"}
	srvDef, srvThanos := httptest.NewServer(def), httptest.NewServer(thanos)
	defer srvDef.Close()
	defer srvThanos.Close()
	p := newSource(t, config.Prometheus{Address: srvDef.URL, Servers: map[string]config.Prometheus{
		"thanos": {Address: srvThanos.URL, Headers: map[string]string{"X-Scope-OrgID": "team-a"}},
	}})
	onDefault := Query{PromQL: "q"}
	onThanos := Query{Server: "thanos", Params: "dedup=false&partial_response=true", PromQL: "q"}
	out := p.Query(context.Background(), []Query{onDefault, onThanos, onThanos})
	require.Len(t, out, 2, "the same PromQL on two servers is two queries")
	assert.Equal(t, int64(1000), out[onDefault].Value)
	assert.Equal(t, int64(2000), out[onThanos].Value)

	require.Len(t, def.seen, 1)
	assert.Empty(t, def.seen[0].Form.Get("dedup"))
	require.Len(t, thanos.seen, 1, "a query runs once")
	assert.Equal(t, "false", thanos.seen[0].Form.Get("dedup"))
	assert.Equal(t, "true", thanos.seen[0].Form.Get("partial_response"))
	assert.Equal(t, "q", thanos.seen[0].Form.Get("query"))
	assert.Equal(t, "team-a", thanos.seen[0].Header.Get("X-Scope-OrgID"))
}

// A server that is not configured fails the query, naming it.
func TestAnUnknownServerFailsItsQuery(t *testing.T) {
	def := &recorder{value: "1"}
	srv := httptest.NewServer(def)
	defer srv.Close()
	p := newSource(t, config.Prometheus{Address: srv.URL})
	out := p.Query(context.Background(), []Query{{Server: "mimir", PromQL: "q"}})
	assert.ErrorContains(t, out[Query{Server: "mimir", PromQL: "q"}].Err, `no server "mimir" in prometheus.servers`)
}

// ignoreNullValues reads an empty result as 0, and nothing else.
func TestNullAsZero(t *testing.T) {
	empty := QueryObservation("q", "pod", nil, nil)
	require.Error(t, empty.Err)
	assert.Equal(t, recommender.Observation{Value: 0}, NullAsZero(empty))
	failed := recommender.Observation{Err: &QueryError{Kind: KindUnavailable, Query: "q"}}
	assert.Equal(t, failed, NullAsZero(failed), "a failure stays a failure")
	assert.Equal(t, "q on thanos with dedup=false", Query{Server: "thanos", Params: "dedup=false", PromQL: "q"}.String())
}
