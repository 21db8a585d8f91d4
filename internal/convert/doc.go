// Package convert translates other autoscalers' configuration into
// Spinscale's per-app annotations: autoscaling/v2 (and v1, v2beta2)
// HorizontalPodAutoscalers, KEDA ScaledObjects with cpu, memory and
// prometheus triggers, and the autoscaler flags of `spin kube scaffold`.
//
// It is what `autoscaler convert` runs. Every field that has no exact
// equivalent is reported as a warning naming its path, never dropped
// silently, and every result is checked with annotations.Parse, so what it
// prints is what the controller accepts.
//
// The package is pure data in, data out: YAML in, annotations and patches
// out. It must not import client-go, a logger or the clock.
package convert
