// Package controller runs Spinscale's loop: informer caches of opted-in
// Deployments and their pods, a pass every poll that reads the metric
// sources once for the apps that may be decided on (schedule.go: an
// interval due, an edit, or fresh data), the pure decision engine per app on
// a bounded worker pool, and the actuators (the scaler, or the printer for
// apps in dry-run). It holds the per-app memory, leader election, health and
// its own instruments (instruments.go). It is the only package that knows
// all the others.
package controller
