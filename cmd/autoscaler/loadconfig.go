package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/spinscale/spinscale/internal/config"
)

// Configuration flags. registerConfigFlags adds exactly these.
const (
	flagConfig = "config"
	flagDryRun = "dry-run"
	flagSet    = "set"
)

// envPrefix prefixes every environment variable that overrides a key: the
// key path upper-cased with dots replaced by underscores, as viper's
// AutomaticEnv would do (prometheus.address -> SPINSCALE_PROMETHEUS_ADDRESS).
const envPrefix = "SPINSCALE"

var envKeyReplacer = strings.NewReplacer(".", "_")

// registerConfigFlags adds the configuration flags to fs:
//
//   - --config PATH: the YAML configuration file; the caller passes its value
//     to loadConfig as path.
//   - --dry-run: shorthand for --set dryRun=true.
//   - --set key=value: overrides any key by its dotted path (for example
//     --set prometheus.timeout=10s --set namespaces=a,b); repeatable, and
//     applied last, so it beats every other source.
func registerConfigFlags(fs *pflag.FlagSet) {
	fs.String(flagConfig, "", "path to the YAML configuration file (default: built-in defaults)")
	fs.Bool(flagDryRun, false, "compute recommendations but never scale (sets dryRun)")
	fs.StringArray(flagSet, nil, "override a configuration key as key=value, by its dotted path "+
		"(e.g. prometheus.timeout=10s, namespaces=a,b); repeatable, highest precedence")
}

// loadConfig builds the effective configuration from, in increasing
// precedence: config.Default(), the YAML file at path (skipped when path is
// empty; a missing file is an error because it was asked for explicitly),
// SPINSCALE_* variables in environ (os.Environ() when nil), and the flags
// registered by registerConfigFlags (flags may be nil). The result is
// validated, and all problems are reported at once.
//
// viper's AutomaticEnv is deliberately not used: it reads the process
// environment directly and cannot be pointed at environ, which would make the
// function impossible to test in isolation. Instead every key known from
// config.Default() is looked up in environ under the name AutomaticEnv would
// use, with the same rule that an empty variable counts as unset. Unknown
// SPINSCALE_* variables are ignored, not rejected: Kubernetes injects
// SPINSCALE_SERVICE_HOST and friends whenever a Service named spinscale exists.
func loadConfig(path string, flags *pflag.FlagSet, environ []string) (config.Config, error) {
	cfg, err := buildConfig(path, flags, environ)
	if err != nil {
		return config.Config{}, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

func buildConfig(path string, flags *pflag.FlagSet, environ []string) (config.Config, error) {
	defaults := config.Default().Map()
	// Sorted so that the overrides, and hence any error, are deterministic.
	keys := slices.Sorted(maps.Keys(defaults))

	v := viper.New()
	// Registering every key makes AllSettings return the full tree, and
	// keeps this layer in step with config.Default by construction.
	for _, key := range keys {
		v.SetDefault(key, defaults[key])
	}

	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return config.Config{}, fmt.Errorf("read config file: %w", err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return config.Config{}, fmt.Errorf("parse config file %s: %w", path, err)
		}
	}

	// Environment and flags both go to viper's override layer (Set); the
	// order of the calls below gives flags precedence over the environment.
	if environ == nil {
		environ = os.Environ()
	}
	env := envMap(environ)
	for _, key := range keys {
		name := envPrefix + "_" + strings.ToUpper(envKeyReplacer.Replace(key))
		if val := env[name]; val != "" {
			v.Set(key, val)
		}
	}

	if err := applyFlags(v, flags); err != nil {
		return config.Config{}, err
	}

	cfg, err := config.Decode(config.Default(), v.AllSettings())
	if err != nil {
		return config.Config{}, err
	}
	// The files the Prometheus settings name are read here too, so that an
	// unreadable token is reported with every other problem.
	if err := errors.Join(cfg.Validate(), cfg.Prometheus.CheckFiles()); err != nil {
		return config.Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// envMap indexes environ ("NAME=value" entries) by name, keeping only the
// variables with our prefix. Like the process environment, the last entry for
// a name wins.
func envMap(environ []string) map[string]string {
	env := make(map[string]string)
	for _, entry := range environ {
		name, val, ok := strings.Cut(entry, "=")
		if ok && strings.HasPrefix(name, envPrefix+"_") {
			env[name] = val
		}
	}
	return env
}

// applyFlags sets the keys overridden by the flags of registerConfigFlags that
// were given on the command line. --set comes last so that it can override
// even --dry-run.
func applyFlags(v *viper.Viper, flags *pflag.FlagSet) error {
	if flags == nil {
		return nil
	}
	if f := flags.Lookup(flagDryRun); f != nil && f.Changed {
		dryRun, err := flags.GetBool(flagDryRun)
		if err != nil {
			return fmt.Errorf("read --%s: %w", flagDryRun, err)
		}
		v.Set("dryRun", dryRun)
	}
	if f := flags.Lookup(flagSet); f != nil && f.Changed {
		sets, err := flags.GetStringArray(flagSet)
		if err != nil {
			return fmt.Errorf("read --%s: %w", flagSet, err)
		}
		for _, kv := range sets {
			key, val, ok := strings.Cut(kv, "=")
			key = strings.TrimSpace(key)
			if !ok || key == "" {
				return fmt.Errorf("--%s %q: want key=value", flagSet, kv)
			}
			// An unknown key is not checked here: config.Decode rejects it
			// with the same message as an unknown key in the file.
			v.Set(key, val)
		}
	}
	return nil
}
