package actuator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spinscale/spinscale/internal/recommender"
)

func TestPrinterJSONListsDecidedAndHeldAppsSorted(t *testing.T) {
	var out strings.Builder
	p := &Printer{Out: &out, JSON: true}
	spec := recommender.Spec{MinReplicas: 1, MaxReplicas: 10}
	d := recommender.Decision{CurrentReplicas: 2, DesiredReplicas: 4, Action: recommender.ActionScaleUp, LimitedBy: recommender.StageNone}
	scaled, err := p.Apply(context.Background(), types.NamespacedName{Namespace: "b", Name: "shop"}, &spec, &d)
	require.NoError(t, err)
	assert.False(t, scaled, "the printer never scales")
	p.Hold(types.NamespacedName{Namespace: "a", Name: "cart"}, 3, "not scaling: HorizontalPodAutoscaler cart also targets this Deployment")
	require.NoError(t, p.Flush())

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	var held, decided map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &held))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &decided))
	assert.Equal(t, "cart", held["name"], "sorted by namespace")
	assert.Equal(t, float64(3), held["desiredReplicas"])
	assert.Equal(t, "none", held["action"])
	assert.Contains(t, held["error"], "HorizontalPodAutoscaler cart")
	assert.Equal(t, "shop", decided["name"])
	assert.Equal(t, "scale-up", decided["action"])
	assert.NotContains(t, decided, "error")

	require.NoError(t, p.Flush())
	assert.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), 2, "a flush empties the tick's rows")
}
