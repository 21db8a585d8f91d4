// Package controller runs Spinscale's loop: informer caches of opted-in
// Deployments and their pods, one metrics snapshot per tick, the pure
// decision engine per app on a bounded worker pool, and the actuators (the
// scaler, or the printer for apps in dry-run). It holds the per-app memory,
// leader election and health. It is the only package that knows all the
// others.
package controller
