// Package config defines Spinscale's typed global configuration.
//
// Default is the single source of defaults: the shipped config.yaml, the
// viper defaults registered by the binary (via Config.Map) and the tests all
// derive from it, so a default can never silently differ between places.
//
// There is deliberately no viper here. The package only knows how to overlay
// a generic map onto a Config (Decode) and how to check it (Validate); where
// the map comes from (files, environment, flags) is the binary's business.
// This keeps the configuration contract small, easy to test, and free of
// global state for the packages that consume it.
package config
