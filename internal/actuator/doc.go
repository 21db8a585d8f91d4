// Package actuator carries decisions out, behind one interface: the Scaler
// patches a Deployment's scale subresource with Spinscale's field manager,
// the Printer shows decisions instead (dry-run). Dry-run lives here, at the
// boundary, so that the decision path is identical in both modes. Events
// records Events on Deployments.
//
// It must not import the controller or the metric sources.
package actuator
