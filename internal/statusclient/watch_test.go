package statusclient

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/status"
)

// script answers each Fetch with the next document or error, and ends the
// watch after the last one.
type script struct {
	answers []any
	cancel  context.CancelFunc
	calls   int
}

func (s *script) Fetch(context.Context) (status.List, error) {
	if s.calls == len(s.answers) {
		s.cancel()
		return status.List{}, context.Canceled
	}
	a := s.answers[s.calls]
	s.calls++
	if err, ok := a.(error); ok {
		return status.List{}, err
	}
	return a.(status.List), nil
}

func TestWatchPrintsOnlyChanges(t *testing.T) {
	first := fixture()
	// The next tick: time moves on, decisions are renewed, nothing shown
	// changes (ages grow, which is no change).
	same := fixture()
	same.At = at.Add(2 * time.Second)
	for i := range same.Apps {
		same.Apps[i].LastDecision = same.At
	}
	// Then cart scales to 4 and feed's reason changes (not a table column).
	scaled := fixture()
	scaled.At = at.Add(4 * time.Second)
	scaled.Apps[1].Replicas, scaled.Apps[1].LastScale = 4, &scaled.At
	scaled.Apps[0].Reason = "something else"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src := &script{answers: []any{errors.New("connection refused"), first, same, errors.New("timeout"), scaled}, cancel: cancel}
	var out, errOut bytes.Buffer
	w := &Watcher{Source: src, Interval: time.Millisecond, Options: Options{AllNamespaces: true},
		Filter: func(l status.List) status.List { return Filter(l, "", "") }, Out: &out, Err: &errOut}

	require.NoError(t, w.Run(ctx))

	assert.Equal(t, 5, src.calls)
	assert.Equal(t, ""+
		"NAMESPACE   NAME   REFERENCE         TARGETS                      MINPODS   MAXPODS   REPLICAS   DESIRED   STATE    LAST SCALE\n"+
		"blog        feed   Deployment/feed   cpu: 40%/60%                 1         5         2          2         ok       <none>\n"+
		"shop        cart   Deployment/cart   cpu: 63%/50%, rps: 310/400   2         10        3          4         ok       5m\n"+
		"shop        web    Deployment/web    cpu: 70%/60%                 1         20        4          5         shadow   <none>\n"+
		"shop        cart   Deployment/cart   cpu: 63%/50%, rps: 310/400   2         10        4          4         ok       0s\n",
		out.String())
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "connection refused")
	assert.Contains(t, lines[1], "timeout")
}

func TestWatchJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src := &script{answers: []any{fixture(), fixture()}, cancel: cancel}
	var out bytes.Buffer
	w := &Watcher{Source: src, Interval: time.Millisecond, JSON: true,
		Filter: func(l status.List) status.List { return Filter(l, "blog", "") }, Out: &out, Err: &out}

	require.NoError(t, w.Run(ctx))

	assert.Equal(t, 1, strings.Count(out.String(), "\n"), out.String())
	assert.True(t, strings.HasPrefix(out.String(), `{"namespace":"blog","name":"feed",`), out.String())
}
