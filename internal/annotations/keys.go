package annotations

import (
	"slices"

	"github.com/spinscale/spinscale/internal/recommender"
)

// This file is the key registry: every annotation key Spinscale reads.

// Prefix is the annotation prefix every Spinscale key lives under.
const Prefix = "spinscale.dev/"

// The annotation keys, in full. They are the product contract (DESIGN.md §3):
// never rename one.
const (
	KeyEnabled                      = Prefix + "enabled"
	KeyMinReplicas                  = Prefix + "min-replicas"
	KeyMaxReplicas                  = Prefix + "max-replicas"
	KeyTargetCPUUtilization         = Prefix + "target-cpu-utilization"
	KeyTargetMemoryUtilization      = Prefix + "target-memory-utilization"
	KeyTargetCPUAverageValue        = Prefix + "target-cpu-average-value"
	KeyTargetMemoryAverageValue     = Prefix + "target-memory-average-value"
	KeyPrometheusQuery              = Prefix + "prometheus-query"
	KeyPrometheusTargetAverageValue = Prefix + "prometheus-target-average-value"
	KeyPrometheusTargetValue        = Prefix + "prometheus-target-value"
	KeyMetrics                      = Prefix + "metrics"
	KeyTolerance                    = Prefix + "tolerance"
	KeyToleranceUp                  = Prefix + "tolerance-up"
	KeyToleranceDown                = Prefix + "tolerance-down"
	KeyScaleUpStabilization         = Prefix + "scale-up-stabilization"
	KeyScaleDownStabilization       = Prefix + "scale-down-stabilization"
	KeyBehavior                     = Prefix + "behavior"
	KeyProfile                      = Prefix + "profile"
	KeyBurstThreshold               = Prefix + "burst-threshold"
	KeyLookahead                    = Prefix + "lookahead"
	KeyDropWindow                   = Prefix + "drop-window"
	KeyDropThreshold                = Prefix + "drop-threshold"
	KeyDryRun                       = Prefix + "dry-run"
	KeyPaused                       = Prefix + "paused"
	KeyPausedReplicas               = Prefix + "paused-replicas"
	KeyPausedScaleIn                = Prefix + "paused-scale-in"
	KeyPausedScaleOut               = Prefix + "paused-scale-out"
	KeyShadow                       = Prefix + "shadow"
	KeyFallbackReplicas             = Prefix + "fallback-replicas"
	KeyFallbackAfter                = Prefix + "fallback-after"
	KeyFallbackBehavior             = Prefix + "fallback-behavior"
	KeyInterval                     = Prefix + "interval"
	KeyActivationThreshold          = Prefix + "activation-threshold"
	KeyScaleToZeroAfter             = Prefix + "scale-to-zero-after"
	// KeyScaledToZero is Spinscale's record that it scaled the app to zero
	// (an RFC 3339 time), written with the replica count. Users do not set
	// it; only a zero it marks is woken from.
	KeyScaledToZero = Prefix + "scaled-to-zero"

	// The HTTP keys. The activator (autoscaler activator) routes by the
	// first six; the controller decides on the others with the activator's
	// per-second request counts (docs/http.md).
	KeyHTTPHosts          = Prefix + "http-hosts"
	KeyHTTPPathPrefix     = Prefix + "http-path-prefix"
	KeyHTTPService        = Prefix + "http-service"
	KeyHTTPPort           = Prefix + "http-port"
	KeyHTTPQueueSize      = Prefix + "http-queue-size"
	KeyHTTPQueueTimeout   = Prefix + "http-queue-timeout"
	KeyHTTPTargetInFlight = Prefix + "http-target-concurrency"
	KeyHTTPTargetRPS      = Prefix + "http-target-rps"
	KeyHTTPStableWindow   = Prefix + "http-stable-window"
	KeyHTTPPanicWindow    = Prefix + "http-panic-window"
	KeyHTTPPanicThreshold = Prefix + "http-panic-threshold"
)

// keys lists every known key in documentation order.
var keys = []string{
	KeyEnabled,
	KeyMinReplicas,
	KeyMaxReplicas,
	KeyTargetCPUUtilization,
	KeyTargetMemoryUtilization,
	KeyTargetCPUAverageValue,
	KeyTargetMemoryAverageValue,
	KeyPrometheusQuery,
	KeyPrometheusTargetAverageValue,
	KeyPrometheusTargetValue,
	KeyMetrics,
	KeyTolerance,
	KeyToleranceUp,
	KeyToleranceDown,
	KeyScaleUpStabilization,
	KeyScaleDownStabilization,
	KeyBehavior,
	KeyProfile,
	KeyBurstThreshold,
	KeyLookahead,
	KeyDropWindow,
	KeyDropThreshold,
	KeyDryRun,
	KeyPaused,
	KeyPausedReplicas,
	KeyPausedScaleIn,
	KeyPausedScaleOut,
	KeyShadow,
	KeyFallbackReplicas,
	KeyFallbackAfter,
	KeyFallbackBehavior,
	KeyInterval,
	KeyActivationThreshold,
	KeyScaleToZeroAfter,
	KeyScaledToZero,
	KeyHTTPHosts,
	KeyHTTPPathPrefix,
	KeyHTTPService,
	KeyHTTPPort,
	KeyHTTPQueueSize,
	KeyHTTPQueueTimeout,
	KeyHTTPTargetInFlight,
	KeyHTTPTargetRPS,
	KeyHTTPStableWindow,
	KeyHTTPPanicWindow,
	KeyHTTPPanicThreshold,
}

// Keys returns every known annotation key (with the prefix), in the order
// the documentation lists them.
func Keys() []string { return slices.Clone(keys) }

// IsKey reports whether k is one of the known keys, prefix included. A key
// under Prefix that is not known is a typo or a key of a newer release: Parse
// warns about it.
func IsKey(k string) bool { return slices.Contains(keys, k) }

// Profiles are the values the profile annotation accepts.
var Profiles = []recommender.Profile{recommender.ProfileHPA, recommender.ProfileSpinscale}
