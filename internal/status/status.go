// Package status is what a running controller publishes about its apps, in
// the vocabulary of `kubectl get hpa` and `kubectl describe hpa`: the JSON
// document the leader serves on its metrics port at /apps, which
// `autoscaler status` and `autoscaler shadow-report` (also `kubectl
// spinscale ...`) read. Field names are part of the product contract.
package status

import (
	"time"
)

// Path is where the controller serves the List, on its metrics address.
const Path = "/apps"

// List is the whole document.
type List struct {
	// Leader is the identity of the replica that answered; Leading is
	// false when it is a standby (its list is then empty).
	Leader  string    `json:"leader"`
	Leading bool      `json:"leading"`
	At      time.Time `json:"at"`
	Apps    []App     `json:"apps"`
}

// App is one opted-in Deployment as the controller last saw it.
type App struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// State is the spinscale_app_state value: ok, degraded, invalid,
	// refused, dry_run, fallback, shadow, zero.
	State       string `json:"state"`
	Profile     string `json:"profile,omitempty"`
	Targets     string `json:"targets"`
	MinReplicas int32  `json:"minReplicas"`
	MaxReplicas int32  `json:"maxReplicas"`
	Replicas    int32  `json:"replicas"`
	Desired     int32  `json:"desired"`
	LimitedBy   string `json:"limitedBy,omitempty"`
	Reason      string `json:"reason"`
	// LastDecision is when the app was last decided on (or held);
	// LastScale when Spinscale last changed its replica count.
	LastDecision time.Time  `json:"lastDecision"`
	LastScale    *time.Time `json:"lastScale,omitempty"`
	// ColdStartSeconds is the last cold start: from a scale-up write to
	// its pods being Ready.
	ColdStartSeconds *float64    `json:"coldStartSeconds,omitempty"`
	Conditions       []Condition `json:"conditions"`
	// Shadow compares the decisions with the live autoscaler, for apps in
	// shadow mode.
	Shadow *Shadow `json:"shadow,omitempty"`
}

// Condition is one condition, HPA's (AbleToScale, ScalingActive,
// ScalingLimited) or Spinscale's own (Degraded, Refused, Fallback,
// ScaledToZero, Shadow).
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// Shadow is the comparison of an app in shadow mode (internal/shadow).
type Shadow struct {
	Decisions     int     `json:"decisions"`
	Agree         int     `json:"agree"`
	AgreementRate float64 `json:"agreementRate"`
	Higher        int     `json:"higher"`
	Lower         int     `json:"lower"`
	// MeanHigher and MeanLower are by how many replicas, on average, the
	// decisions above and below the live count were.
	MeanHigher float64 `json:"meanHigher"`
	MeanLower  float64 `json:"meanLower"`
	// Sooner and Later count the live moves Spinscale asked for before and
	// after they happened, with the mean time; Missed the moves it never
	// asked for.
	Sooner            int     `json:"sooner"`
	MeanSoonerSeconds float64 `json:"meanSoonerSeconds"`
	Later             int     `json:"later"`
	MeanLaterSeconds  float64 `json:"meanLaterSeconds"`
	Missed            int     `json:"missed"`
	LiveReplicas      int32   `json:"liveReplicas"`
	ShadowReplicas    int32   `json:"shadowReplicas"`
}
