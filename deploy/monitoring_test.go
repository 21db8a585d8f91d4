package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/controller"
	sourcemetrics "github.com/spinscale/spinscale/internal/metrics"
)

// ruleGroups extracts spec.groups of the shipped PrometheusRule as a plain
// Prometheus rules file.
func ruleGroups(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("prometheus/spinscale-rules.yaml")
	require.NoError(t, err)
	var pr struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(data, &pr))
	require.Equal(t, "monitoring.coreos.com/v1", pr.APIVersion)
	require.Equal(t, "PrometheusRule", pr.Kind)
	require.NotEmpty(t, pr.Spec.Groups)
	out, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	require.NoError(t, err)
	return out
}

// The alerts are valid rules (promtool check rules) and fire when they should
// (promtool test rules, cases in spinscale-rules.test.yaml).
func TestPrometheusRules(t *testing.T) {
	ensureTools(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), ruleGroups(t), 0o644))
	tests, err := os.ReadFile("prometheus/spinscale-rules.test.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.test.yaml"), tests, 0o644))

	out, err := run(t, tools.promtool, "check", "rules", filepath.Join(dir, "rules.yaml"))
	require.NoError(t, err)
	t.Log(strings.TrimSpace(out))
	out, err = run(t, tools.promtool, "test", "rules", filepath.Join(dir, "rules.test.yaml"))
	require.NoError(t, err)
	t.Log(strings.TrimSpace(out))

	var groups struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(ruleGroups(t), &groups))
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			assertKnownMetrics(t, r.Alert, r.Expr)
		}
	}
	for _, required := range []string{"SpinscaleDown", "SpinscaleTicksStalled", "SpinscaleAppPinnedAtMaxReplicas", "SpinscaleAppMetricsDegraded"} {
		assert.Contains(t, alerts, required)
	}
	// Every runbook link points at a section of docs/troubleshooting.md.
	doc, err := os.ReadFile("../docs/troubleshooting.md")
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(doc), -1) {
		a := strings.ToLower(regexp.MustCompile(`[^\w\- ]`).ReplaceAllString(m[1], ""))
		anchors[strings.ReplaceAll(a, " ", "-")] = true
	}
	rules, err := os.ReadFile("prometheus/spinscale-rules.yaml")
	require.NoError(t, err)
	links := regexp.MustCompile(`runbook_url: \S+/docs/troubleshooting\.md#(\S+)`).FindAllStringSubmatch(string(rules), -1)
	require.Len(t, links, len(alerts), "every alert has a runbook")
	for _, l := range links {
		assert.True(t, anchors[l[1]], "runbook anchor #%s is not a heading of docs/troubleshooting.md", l[1])
	}

	// Every alert has a unit test.
	for _, a := range alerts {
		if a != "SpinscaleScaleWritesFailing" {
			assert.Contains(t, string(tests), "alertname: "+a, "no promtool test case for %s", a)
		}
	}
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets and query variables.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("grafana/spinscale-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	require.Equal(t, "spinscale", dash.UID)
	exprs := map[string]string{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			exprs[p.Title+" "+tg.RefID] = tg.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*), *[a-z_]+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		m := labelValues.FindStringSubmatch(q["query"].(string))
		require.NotNil(t, m, "variable %s: want label_values(selector, label)", v.Name)
		exprs["variable "+v.Name] = m[1]
	}
	return exprs
}

// Every query of the dashboard is valid PromQL (checked by promtool as
// recording rules, with Grafana's variables substituted) over metrics the
// controller exports.
func TestDashboard(t *testing.T) {
	ensureTools(t)
	exprs := dashboardExprs(t)
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$namespace", ".*", "$deployment", ".*")
	var rules []map[string]string
	names := keys(exprs)
	slices.Sort(names)
	for i, name := range names {
		expr := grafanaVars.Replace(exprs[name])
		assert.NotContains(t, expr, "$", "%s: unknown Grafana variable", name)
		assertKnownMetrics(t, name, expr)
		rules = append(rules, map[string]string{"record": "dashboard:query_" + string(rune('a'+i/26)) + string(rune('a'+i%26)), "expr": expr})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	out, err := run(t, tools.promtool, "check", "rules", file)
	require.NoError(t, err)
	t.Log(strings.TrimSpace(out))

	// The panels the operating guide promises.
	all := strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, e := range exprs {
			if !yield(e) {
				return
			}
		}
	}), "\n")
	for _, m := range []string{"spinscale_app_replicas", "spinscale_app_desired_replicas", "spinscale_app_metric_value",
		"spinscale_app_metric_target", "spinscale_app_limited_by", "spinscale_tick_duration_seconds_bucket",
		"spinscale_leader", "spinscale_source_errors_total", "spinscale_scale_writes_total"} {
		assert.Contains(t, all, m)
	}
}

var metricName = regexp.MustCompile(`\bspinscale_[a-z0-9_]+`)

// assertKnownMetrics fails for a spinscale_ metric the controller does not
// export (a typo, or a renamed metric).
func assertKnownMetrics(t *testing.T, where, expr string) {
	t.Helper()
	known := exportedMetrics(t)
	for _, name := range metricName.FindAllString(expr, -1) {
		assert.Contains(t, known, name, "%s: %s is not a metric the controller exports", where, name)
	}
}

var exported []string

// exportedMetrics lists the series names the controller's metrics export,
// histogram series included: every collector NewInstruments and
// RegisterClientGoMetrics register, described.
func exportedMetrics(t *testing.T) []string {
	t.Helper()
	if exported != nil {
		return exported
	}
	reg := &recorder{}
	controller.NewInstruments(reg)
	controller.RegisterClientGoMetrics(reg)
	sourcemetrics.NewPrometheusMetrics(reg)
	ch := make(chan *prometheus.Desc, 100)
	go func() {
		for _, c := range reg.collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		require.NotNil(t, m, d.String())
		exported = append(exported, m[1], m[1]+"_bucket", m[1]+"_sum", m[1]+"_count")
	}
	require.Contains(t, exported, "spinscale_tick_duration_seconds")
	require.Contains(t, exported, "spinscale_kube_requests_total")
	return exported
}

// recorder is a prometheus.Registerer that keeps what is registered.
type recorder struct{ collectors []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }
