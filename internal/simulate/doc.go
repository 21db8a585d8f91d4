// Package simulate runs Spinscale's decision engine offline over a scenario:
// a YAML or JSON file that lists, step by step, what the controller would
// observe of one app (spec and status replicas, pods, metric samples and
// Prometheus results), together with the app's annotations and the
// controller's configuration.
//
// Each step goes through exactly the code path the controller uses:
// recommender.Decide, then recommender.Commit as if the scale write had
// succeeded. Simulate never talks to a cluster and never writes anything, so
// the per-app dry-run annotation changes nothing here: every decision is
// applied to the simulated app, and the next step's replica count defaults to
// the previous step's decision.
//
// Only the pod-level scenario form is supported. The load-trace form
// (top-level workload, sim, trace, traceFile) is recognised and rejected with
// ErrLoadTrace.
//
// The package is a pure transformation from scenario bytes to decisions and
// their rendering: it reads no files, no clock and no environment (the caller
// passes the scenario's bytes and the writers), and must not import client-go
// or the controller.
package simulate
