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

// Environment variables override keys by name: envPrefix, "_", and the key
// path upper-cased with dots replaced by underscores
// (prometheus.address -> SPINSCALE_PROMETHEUS_ADDRESS,
// leaderElection.enabled -> SPINSCALE_LEADERELECTION_ENABLED).
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
// SPINSCALE_* environment variables (an empty one counts as unset), and the
// flags registered by registerConfigFlags (flags may be nil). The result is
// validated, and all problems are reported at once.
func loadConfig(path string, flags *pflag.FlagSet) (config.Config, error) {
	cfg, err := buildConfig(path, flags)
	if err != nil {
		return config.Config{}, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

func buildConfig(path string, flags *pflag.FlagSet) (config.Config, error) {
	v, keys, err := newViper()
	if err != nil {
		return config.Config{}, err
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

	// Flags go to viper's override layer (Set), which beats the environment.
	if err := applyFlags(v, flags); err != nil {
		return config.Config{}, err
	}

	cfg, err := config.Decode(config.Default(), v.AllSettings())
	if err != nil {
		return config.Config{}, withEnvOverrides(keys, err)
	}
	// The files the Prometheus settings name are read here too, so that an
	// unreadable token is reported with every other problem.
	if err := errors.Join(cfg.Validate(), cfg.Prometheus.CheckFiles()); err != nil {
		return config.Config{}, withEnvOverrides(keys, fmt.Errorf("invalid configuration:\n%w", err))
	}
	return cfg, nil
}

// newViper returns a viper holding every key of config.Default() as a default
// and bound to its environment variable, and those keys, sorted.
//
// Registering every key makes AllSettings return the full tree, and keeps
// this layer in step with config.Default by construction. Each key is bound
// with BindEnv rather than AutomaticEnv, which would also let a variable named
// after a section (SPINSCALE_PROMETHEUS) hide every key of that section in the
// file, and would read variables for keys found only in the file (header
// names). Other SPINSCALE_* variables are ignored, not rejected: Kubernetes
// injects SPINSCALE_SERVICE_HOST and friends whenever a Service named
// spinscale exists.
func newViper() (*viper.Viper, []string, error) {
	defaults := config.Default().Map()
	// Sorted so that anything derived from the keys is deterministic.
	keys := slices.Sorted(maps.Keys(defaults))
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(envKeyReplacer)
	for _, key := range keys {
		v.SetDefault(key, defaults[key])
		if err := v.BindEnv(key); err != nil {
			return nil, nil, fmt.Errorf("bind %s to %s: %w", key, envVar(key), err)
		}
	}
	return v, keys, nil
}

// envVar is the name of the environment variable that overrides key, as
// viper derives it from envPrefix and envKeyReplacer. It serves only to name
// the variable in errors; a test checks viper reads the same name.
func envVar(key string) string {
	return envPrefix + "_" + strings.ToUpper(envKeyReplacer.Replace(key))
}

// withEnvOverrides adds to err the environment variables that overrode keys:
// Decode and Validate name only the key path, which an operator who set the
// value through the environment would not find in any file.
func withEnvOverrides(keys []string, err error) error {
	var set []string
	for _, key := range keys {
		if name := envVar(key); os.Getenv(name) != "" {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return err
	}
	return fmt.Errorf("%w\n(overridden by environment variables %s)", err, strings.Join(set, ", "))
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
