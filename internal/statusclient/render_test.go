package statusclient

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/status"
)

var at = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time { t := at.Add(-d); return &t }

// fixture is a leader's document: two apps in shop (one in shadow mode),
// one in blog.
func fixture() status.List {
	return status.List{Leader: "spinscale-7d9f_abc123", Leading: true, At: at, Apps: []status.App{
		{Namespace: "blog", Name: "feed", State: "ok", Profile: "spinscale", Targets: "cpu: 40%/60%",
			MinReplicas: 1, MaxReplicas: 5, Replicas: 2, Desired: 2, LimitedBy: "tolerance", Reason: "within tolerance",
			LastDecision: at, Conditions: []status.Condition{
				{Type: "AbleToScale", Status: "True", Reason: "ReadyForNewScale", Message: "recommended size matches current size or a scale is allowed"},
			}},
		{Namespace: "shop", Name: "cart", State: "ok", Profile: "hpa", Targets: "cpu: 63%/50%, rps: 310/400",
			MinReplicas: 2, MaxReplicas: 10, Replicas: 3, Desired: 4, LimitedBy: "none", Reason: "scale up: cpu 63% over 50%",
			LastDecision: at, LastScale: ago(5 * time.Minute), Conditions: []status.Condition{
				{Type: "AbleToScale", Status: "True", Reason: "ReadyForNewScale", Message: "recommended size matches current size or a scale is allowed"},
				{Type: "ScalingActive", Status: "True", Reason: "ValidMetricFound", Message: "the replica count is computed from the metrics"},
				{Type: "ScalingLimited", Status: "False", Reason: "DesiredWithinRange", Message: "the desired count is within the acceptable range"},
			}},
		{Namespace: "shop", Name: "web", State: "shadow", Profile: "spinscale", Targets: "cpu: 70%/60%",
			MinReplicas: 1, MaxReplicas: 20, Replicas: 4, Desired: 5, LimitedBy: "none", Reason: "scale up",
			LastDecision: at, Conditions: []status.Condition{
				{Type: "Shadow", Status: "True", Reason: "ShadowMode", Message: "decided beside the live autoscaler, never written"},
			},
			Shadow: &status.Shadow{Decisions: 120, Agree: 102, AgreementRate: 0.85, Higher: 15, Lower: 3, MeanHigher: 1.5, MeanLower: 1,
				Sooner: 4, MeanSoonerSeconds: 40, Later: 1, MeanLaterSeconds: 10, Missed: 1, LiveReplicas: 4, ShadowReplicas: 5}},
	}}
}

func TestTable(t *testing.T) {
	tests := []struct {
		name      string
		namespace string
		appName   string
		opts      Options
		want      string
	}{
		{
			name: "one namespace", namespace: "shop",
			want: "" +
				"NAME   REFERENCE         TARGETS                      MINPODS   MAXPODS   REPLICAS   DESIRED   STATE    LAST SCALE\n" +
				"cart   Deployment/cart   cpu: 63%/50%, rps: 310/400   2         10        3          4         ok       5m\n" +
				"web    Deployment/web    cpu: 70%/60%                 1         20        4          5         shadow   <none>\n",
		},
		{
			name: "all namespaces", opts: Options{AllNamespaces: true},
			want: "" +
				"NAMESPACE   NAME   REFERENCE         TARGETS                      MINPODS   MAXPODS   REPLICAS   DESIRED   STATE    LAST SCALE\n" +
				"blog        feed   Deployment/feed   cpu: 40%/60%                 1         5         2          2         ok       <none>\n" +
				"shop        cart   Deployment/cart   cpu: 63%/50%, rps: 310/400   2         10        3          4         ok       5m\n" +
				"shop        web    Deployment/web    cpu: 70%/60%                 1         20        4          5         shadow   <none>\n",
		},
		{
			name: "wide", namespace: "blog", opts: Options{Wide: true},
			want: "" +
				"NAME   REFERENCE         TARGETS        MINPODS   MAXPODS   REPLICAS   DESIRED   STATE   LAST SCALE   LIMITED-BY   REASON\n" +
				"feed   Deployment/feed   cpu: 40%/60%   1         5         2          2         ok      <none>       tolerance    within tolerance\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, WriteTable(&out, Filter(fixture(), tt.namespace, tt.appName), tt.opts))
			assert.Equal(t, tt.want, out.String())
		})
	}
}

func TestFilter(t *testing.T) {
	names := func(l status.List) []string {
		var out []string
		for _, a := range l.Apps {
			out = append(out, a.Namespace+"/"+a.Name)
		}
		return out
	}
	assert.Equal(t, []string{"blog/feed", "shop/cart", "shop/web"}, names(Filter(fixture(), "", "")))
	assert.Equal(t, []string{"shop/cart", "shop/web"}, names(Filter(fixture(), "shop", "")))
	assert.Equal(t, []string{"shop/web"}, names(Filter(fixture(), "shop", "web")))
	assert.Empty(t, names(Filter(fixture(), "blog", "web")))
	assert.Empty(t, names(Filter(fixture(), "none", "")))
	assert.Equal(t, "spinscale-7d9f_abc123", Filter(fixture(), "none", "").Leader)
}

func TestJSONIsTheFilteredList(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, WriteJSON(&out, Filter(fixture(), "blog", "")))
	var got status.List
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	want := fixture()
	want.Apps = want.Apps[:1]
	assert.Equal(t, want, got)
}

func TestDescribe(t *testing.T) {
	l := fixture()
	var out bytes.Buffer
	require.NoError(t, WriteDescribe(&out, &l.Apps[1], l))
	assert.Equal(t, ""+
		"Name:           cart\n"+
		"Namespace:      shop\n"+
		"Reference:      Deployment/cart\n"+
		"State:          ok\n"+
		"Profile:        hpa\n"+
		"Metrics:        ( current / target )\n"+
		"  cpu:          63%/50%\n"+
		"  rps:          310/400\n"+
		"Min replicas:   2\n"+
		"Max replicas:   10\n"+
		"Replicas:       3 current / 4 desired\n"+
		"Limited by:     none\n"+
		"Reason:         scale up: cpu 63% over 50%\n"+
		"Last decision:  2026-12-04T12:00:00Z (0s ago)\n"+
		"Last scale:     2026-12-04T11:55:00Z (5m ago)\n"+
		"Controller:     spinscale-7d9f_abc123\n"+
		"Conditions:\n"+
		"  Type            Status  Reason              Message\n"+
		"  ----            ------  ------              -------\n"+
		"  AbleToScale     True    ReadyForNewScale    recommended size matches current size or a scale is allowed\n"+
		"  ScalingActive   True    ValidMetricFound    the replica count is computed from the metrics\n"+
		"  ScalingLimited  False   DesiredWithinRange  the desired count is within the acceptable range\n",
		out.String())
}

func TestDescribeShowsTheShadowComparison(t *testing.T) {
	l := fixture()
	var out bytes.Buffer
	require.NoError(t, WriteDescribe(&out, &l.Apps[2], l))
	assert.Contains(t, out.String(), ""+
		"Conditions:\n"+
		"  Type    Status  Reason      Message\n"+
		"  ----    ------  ------      -------\n"+
		"  Shadow  True    ShadowMode  decided beside the live autoscaler, never written\n"+
		"Shadow comparison (with the live autoscaler):\n"+
		"  Decisions:     120\n"+
		"  Agree:         85%\n"+
		"  Higher:        15 (+1.5) replicas\n"+
		"  Lower:         3 (-1.0) replicas\n"+
		"  Sooner:        4 (40s)\n"+
		"  Later:         1 (10s)\n"+
		"  Missed:        1\n"+
		"  Replicas now:  4 live / 5 Spinscale\n"+
		"  Verdict:       agrees with the live count in 85% of 120 decisions; would have scaled 30 s sooner on average; never asked for 1 of 6 live moves; asks for more replicas when it disagrees (+1.5 on average)\n")
}

func TestShadowReport(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, WriteShadowReport(&out, Filter(fixture(), "shop", ""), false))
	assert.Equal(t, ""+
		"NAME   DECISIONS   AGREE %   HIGHER      LOWER      SOONER    LATER     MISSED\n"+
		"web    120         85%       15 (+1.5)   3 (-1.0)   4 (40s)   1 (10s)   1\n"+
		"\n"+
		"web: agrees with the live count in 85% of 120 decisions; would have scaled 30 s sooner on average; never asked for 1 of 6 live moves; asks for more replicas when it disagrees (+1.5 on average)\n",
		out.String())

	out.Reset()
	require.NoError(t, WriteShadowReport(&out, Filter(fixture(), "", ""), true))
	assert.Contains(t, out.String(), "NAMESPACE   NAME   DECISIONS")
	assert.Contains(t, out.String(), "\nshop/web: agrees")

	out.Reset()
	require.NoError(t, WriteShadowReport(&out, Filter(fixture(), "blog", ""), false))
	assert.Equal(t, "no app is in shadow mode\n", out.String())
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name string
		s    status.Shadow
		want string
	}{
		{"no decision", status.Shadow{}, "no decision yet"},
		{"agrees, no live move yet", status.Shadow{Decisions: 10, Agree: 10, AgreementRate: 1},
			"agrees with the live count in 100% of 10 decisions"},
		{"sooner", status.Shadow{Decisions: 50, Agree: 40, AgreementRate: 0.8, Higher: 5, Lower: 5, MeanHigher: 1, MeanLower: 1,
			Sooner: 3, MeanSoonerSeconds: 34},
			"agrees with the live count in 80% of 50 decisions; would have scaled 34 s sooner on average"},
		{"later outweighs sooner", status.Shadow{Decisions: 50, Agree: 40, AgreementRate: 0.8,
			Sooner: 1, MeanSoonerSeconds: 10, Later: 3, MeanLaterSeconds: 30},
			"agrees with the live count in 80% of 50 decisions; would have scaled 20 s later on average"},
		{"even", status.Shadow{Decisions: 4, Agree: 4, AgreementRate: 1,
			Sooner: 1, MeanSoonerSeconds: 15, Later: 1, MeanLaterSeconds: 15},
			"agrees with the live count in 100% of 4 decisions; would have scaled at the same time on average"},
		{"only missed, leaning lower", status.Shadow{Decisions: 20, Agree: 14, AgreementRate: 0.7, Lower: 6, MeanLower: 2, Missed: 2},
			"agrees with the live count in 70% of 20 decisions; never asked for 2 of 2 live moves; asks for fewer replicas when it disagrees (-2.0 on average)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Verdict(&tt.s))
		})
	}
}
