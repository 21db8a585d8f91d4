package controller

import (
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/spinscale/spinscale/internal/recommender"
	"github.com/spinscale/spinscale/internal/report"
	"github.com/spinscale/spinscale/internal/shadow"
	"github.com/spinscale/spinscale/internal/status"
)

// Status is what the controller knows of its apps, for /apps: the last
// decision or hold of each, sorted by namespace and name. A standby has
// none (it decides nothing).
func (c *Controller) Status() status.List {
	out := status.List{Leader: c.opts.Identity, Leading: c.leading.Load(), At: c.clock.Now().UTC(), Apps: []status.App{}}
	c.mu.Lock()
	apps := make([]*app, 0, len(c.apps))
	for _, a := range c.apps {
		apps = append(apps, a)
	}
	c.mu.Unlock()
	for _, a := range apps {
		a.mu.Lock()
		if a.status.Name != "" {
			s := a.status
			s.Conditions = append([]status.Condition(nil), s.Conditions...)
			out.Apps = append(out.Apps, s)
		}
		a.mu.Unlock()
	}
	sort.Slice(out.Apps, func(i, j int) bool {
		if out.Apps[i].Namespace != out.Apps[j].Namespace {
			return out.Apps[i].Namespace < out.Apps[j].Namespace
		}
		return out.Apps[i].Name < out.Apps[j].Name
	})
	return out
}

// publishHold records an app left as it is without a decision: invalid
// annotations or another autoscaler. The caller holds a.mu.
func (a *app) publishHold(d *appsv1.Deployment, state, reason string, now time.Time) {
	replicas := specReplicas(d)
	a.status = status.App{
		Namespace: d.Namespace, Name: d.Name, State: state, Targets: "<unknown>",
		Replicas: replicas, Desired: replicas, Reason: reason, LastDecision: now.UTC(), LastScale: a.status.LastScale,
		ColdStartSeconds: a.status.ColdStartSeconds,
		Conditions: []status.Condition{
			{Type: "AbleToScale", Status: "False", Reason: "NotManaged", Message: reason},
			{Type: "ScalingActive", Status: "False", Reason: holdReason(state), Message: reason},
		},
	}
	if a.parseErr == nil {
		a.status.MinReplicas, a.status.MaxReplicas = a.parsed.Spec.MinReplicas, a.parsed.Spec.MaxReplicas
	}
}

func holdReason(state string) string {
	if state == "invalid" {
		return "InvalidAnnotations"
	}
	return "OtherAutoscaler"
}

// publishDecision records an app's decision. The caller holds a.mu.
func (a *app) publishDecision(d *appsv1.Deployment, spec *recommender.Spec, dec *recommender.Decision, state string, now time.Time) {
	s := status.App{
		Namespace: d.Namespace, Name: d.Name, State: state, Profile: string(spec.Profile),
		Targets: report.Targets(dec), MinReplicas: spec.MinReplicas, MaxReplicas: spec.MaxReplicas,
		Replicas: dec.CurrentReplicas, Desired: dec.DesiredReplicas, LimitedBy: string(dec.LimitedBy),
		Reason: dec.Reason(), LastDecision: now.UTC(), LastScale: a.status.LastScale,
		ColdStartSeconds: a.status.ColdStartSeconds,
	}
	s.Conditions = conditions(dec, state)
	if state == "shadow" {
		s.Shadow = shadowStatus(a.shadow.Summary())
	}
	a.status = s
}

// conditions are HPA's three conditions with its reasons, then Spinscale's
// own where they hold.
func conditions(dec *recommender.Decision, state string) []status.Condition {
	able := status.Condition{Type: "AbleToScale", Status: "True", Reason: "ReadyForNewScale", Message: "recommended size matches current size or a scale is allowed"}
	active := status.Condition{Type: "ScalingActive", Status: "True", Reason: "ValidMetricFound", Message: "the replica count is computed from the metrics"}
	limited := status.Condition{Type: "ScalingLimited", Status: "False", Reason: "DesiredWithinRange", Message: "the desired count is within the acceptable range"}
	switch dec.LimitedBy {
	case recommender.StagePaused:
		active = status.Condition{Type: "ScalingActive", Status: "False", Reason: "ScalingDisabled", Message: dec.Reason()}
	case recommender.StageMissingMetrics:
		active = status.Condition{Type: "ScalingActive", Status: "False", Reason: "FailedGetMetrics", Message: dec.Reason()}
	case recommender.StageMaxReplicas:
		limited = status.Condition{Type: "ScalingLimited", Status: "True", Reason: "TooManyReplicas", Message: "the desired count is more than the maximum replica count"}
	case recommender.StageMinReplicas:
		limited = status.Condition{Type: "ScalingLimited", Status: "True", Reason: "TooFewReplicas", Message: "the desired count is less than the minimum replica count"}
	case recommender.StageScaleUpPolicy:
		limited = status.Condition{Type: "ScalingLimited", Status: "True", Reason: "ScaleUpLimit", Message: "the desired count is increasing faster than the maximum scale rate"}
	case recommender.StageScaleDownPolicy:
		limited = status.Condition{Type: "ScalingLimited", Status: "True", Reason: "ScaleDownLimit", Message: "the desired count is decreasing faster than the maximum scale rate"}
	case recommender.StageStabilization:
		able.Reason = "ScaleDownStabilized"
		if dec.Stabilized < dec.Recommendation {
			able.Reason = "ScaleUpStabilized"
		}
		able.Message = "recent recommendations hold the count (stabilization window)"
	}
	out := []status.Condition{able, active, limited}
	switch state {
	case "degraded":
		out = append(out, status.Condition{Type: "Degraded", Status: "True", Reason: "MetricsFailing", Message: "a metric failed: no scale-down on it"})
	case "fallback":
		out = append(out, status.Condition{Type: "Fallback", Status: "True", Reason: "FallbackActive", Message: dec.Reason()})
	case "zero":
		out = append(out, status.Condition{Type: "ScaledToZero", Status: "True", Reason: "ScaledToZero", Message: "Spinscale scaled the app to zero; its metrics wake it"})
	case "shadow":
		out = append(out, status.Condition{Type: "Shadow", Status: "True", Reason: "ShadowMode", Message: "decided beside the live autoscaler, never written"})
	}
	return out
}

func shadowStatus(s shadow.Summary) *status.Shadow {
	mean := func(sum int64, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(sum) / float64(n)
	}
	secs := func(d time.Duration, n int) float64 {
		if n == 0 {
			return 0
		}
		return d.Seconds() / float64(n)
	}
	return &status.Shadow{
		Decisions: s.Decisions, Agree: s.Agree, AgreementRate: s.AgreementRate(),
		Higher: s.Higher, Lower: s.Lower, MeanHigher: mean(s.SumHigher, s.Higher), MeanLower: mean(s.SumLower, s.Lower),
		Sooner: s.Sooner, MeanSoonerSeconds: secs(s.SoonerBy, s.Sooner),
		Later: s.Later, MeanLaterSeconds: secs(s.LaterBy, s.Later), Missed: s.Missed,
		LiveReplicas: s.LastLive, ShadowReplicas: s.LastShadow,
	}
}
