// Package metrics holds Spinscale's metric sources behind small interfaces.
// Each source turns what it fetched into recommender.Observation values that
// keep every sample's timestamp and window, and classifies failures with the
// recommender's sentinel errors so that the engine holds instead of acting on
// garbage.
//
// Sources do I/O; they never decide. They must not import the controller or
// the actuator.
package metrics
