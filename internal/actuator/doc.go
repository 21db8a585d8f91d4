// Package actuator carries decisions out: it patches a Deployment's scale
// subresource with Spinscale's field manager, records Events on the
// Deployment, and, in dry-run, prints decisions instead of writing. Dry-run
// lives here, at the boundary, so that the decision path is identical in both
// modes.
//
// It must not import the controller or the metric sources.
package actuator
