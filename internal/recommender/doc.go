// Package recommender is Spinscale's decision engine: a pure function from an
// app's spec, its observed pods and metric samples, the controller's memory of
// that app and the current time to a scaling decision and the new memory.
//
// It reproduces the Kubernetes HorizontalPodAutoscaler of v1.37
// (pkg/controller/podautoscaler: replica_calculator.go and horizontal.go) rule
// for rule, so that the `hpa` profile decides exactly as HPA does, and adds the
// safety rules HPA lacks: stale, absent or all-zero data never scales an app
// down.
//
// The package must stay pure: it does not import client-go, zap, or any I/O,
// and never reads the clock. Time comes in as an argument. That is what lets
// the controller, dry-run, `autoscaler simulate` and the tests share one code
// path.
package recommender
