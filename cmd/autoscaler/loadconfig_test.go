package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/config"
)

// shippedConfig is the config.yaml at the repository root.
const shippedConfig = "../../config.yaml"

// TestShippedConfigEqualsDefaults keeps config.yaml and config.Default in
// sync: the file documents the defaults, so it must not drift from them.
func TestShippedConfigEqualsDefaults(t *testing.T) {
	setEnv(t)
	got, err := loadConfig(shippedConfig, nil)
	require.NoError(t, err)
	assert.Equal(t, config.Default(), got)
}

// TestShippedConfigListsEveryKey complements TestShippedConfigEqualsDefaults,
// which cannot notice a key missing from the file (the default fills it in):
// config.yaml must spell out every key, with its exact name, since it is the
// reference operators copy from.
func TestShippedConfigListsEveryKey(t *testing.T) {
	data, err := os.ReadFile(shippedConfig)
	require.NoError(t, err)
	var tree map[string]any
	require.NoError(t, yaml.Unmarshal(data, &tree))

	want := config.Default().Map()
	got := map[string]bool{}
	var walk func(prefix string, node map[string]any)
	walk = func(prefix string, node map[string]any) {
		for k, v := range node {
			key := prefix + k
			if sub, ok := v.(map[string]any); ok {
				if _, leaf := want[key]; !leaf {
					walk(key+".", sub)
					continue
				}
			}
			got[key] = true
		}
	}
	walk("", tree)

	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))
}

func TestLoadConfigWithoutFileIsDefault(t *testing.T) {
	setEnv(t)
	got, err := loadConfig("", nil)
	require.NoError(t, err)
	assert.Equal(t, config.Default(), got)
}

func TestLoadConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
interval: 20s
workers: 2
namespaces: [from-file]
prometheus:
  address: http://file:9090
  podLabel: kubernetes_pod_name
leaderElection:
  enabled: true
`)
	env := []string{
		"SPINSCALE_INTERVAL=30s",
		"SPINSCALE_PROMETHEUS=x", // a section, not a key: ignored, and hides none of its keys
		"SPINSCALE_PROMETHEUS_ADDRESS=http://p:9090",
		"SPINSCALE_WORKERS=3",
		"SPINSCALE_MAXSAMPLEAGE=1m",
		"SPINSCALE_LEADERELECTION_ENABLED=false",
		"SPINSCALE_NAMESPACES=a,b",
		"SPINSCALE_DRYRUN=false",
		"SPINSCALE_SELECTOR=",             // empty counts as unset, as with viper
		"SPINSCALE_SERVICE_HOST=10.0.0.1", // injected by Kubernetes; ignored
		"UNRELATED=x",
	}

	tests := []struct {
		name  string
		env   []string
		flags []string
		want  func(*config.Config)
	}{
		{
			name: "file overrides defaults",
			want: func(c *config.Config) {
				c.Interval = 20 * time.Second
				c.Workers = 2
				c.Namespaces = []string{"from-file"}
				c.Prometheus.Address = "http://file:9090"
				c.Prometheus.PodLabel = "kubernetes_pod_name"
			},
		},
		{
			name: "env overrides file",
			env:  env,
			want: func(c *config.Config) {
				c.Interval = 30 * time.Second
				c.Workers = 3
				c.MaxSampleAge = time.Minute
				c.Namespaces = []string{"a", "b"}
				c.Prometheus.Address = "http://p:9090"
				c.Prometheus.PodLabel = "kubernetes_pod_name"
				c.LeaderElection.Enabled = false
			},
		},
		{
			name:  "flags override env",
			env:   env,
			flags: []string{"--dry-run", "--set", "interval=45s", "--set", "prometheus.address=http://flag:9090", "--set", "leaderElection.leaseName=other"},
			want: func(c *config.Config) {
				c.Interval = 45 * time.Second
				c.Workers = 3
				c.MaxSampleAge = time.Minute
				c.DryRun = true
				c.Namespaces = []string{"a", "b"}
				c.Prometheus.Address = "http://flag:9090"
				c.Prometheus.PodLabel = "kubernetes_pod_name"
				c.LeaderElection.Enabled = false
				c.LeaderElection.LeaseName = "other"
			},
		},
		{
			name:  "set overrides dry-run",
			flags: []string{"--dry-run", "--set", "dryRun=false"},
			want: func(c *config.Config) {
				c.Interval = 20 * time.Second
				c.Workers = 2
				c.Namespaces = []string{"from-file"}
				c.Prometheus.Address = "http://file:9090"
				c.Prometheus.PodLabel = "kubernetes_pod_name"
			},
		},
		{
			name:  "set fills a map",
			flags: []string{"--set", "prometheus.headers.X-Scope-OrgID=tenant"},
			want: func(c *config.Config) {
				c.Interval = 20 * time.Second
				c.Workers = 2
				c.Namespaces = []string{"from-file"}
				c.Prometheus.Address = "http://file:9090"
				c.Prometheus.PodLabel = "kubernetes_pod_name"
				// viper lower-cases keys; HTTP header names are case-insensitive.
				c.Prometheus.Headers = map[string]string{"x-scope-orgid": "tenant"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env...)
			got, err := loadConfig(file, parseFlags(t, tt.flags...))
			require.NoError(t, err)
			want := config.Default()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

func TestLoadConfigRejects(t *testing.T) {
	tests := []struct {
		name  string
		file  string // YAML content; empty means no file
		env   []string
		flags []string
		want  []string
	}{
		{
			name: "unknown key in file",
			file: "interval: 15s\nintervall: 30s\n",
			want: []string{"load config", "intervall"},
		},
		{
			name: "unknown nested key in file",
			file: "prometheus:\n  adress: http://p:9090\n",
			want: []string{"prometheus", "adress"},
		},
		{
			name: "several invalid values",
			file: "interval: 500ms\nworkers: 0\ntolerance: 2\nprometheus:\n  timeout: 0s\nlog:\n  format: xml\n",
			want: []string{
				`interval: "500ms" is out of range: allowed 1s to 10m`,
				"workers: 0",
				"tolerance: 2",
				`prometheus.timeout: "0s"`,
				`log.format: "xml"`,
			},
		},
		{
			name: "malformed YAML",
			file: "interval: [\n",
			want: []string{"parse config file"},
		},
		{
			name: "invalid env value",
			env:  []string{"SPINSCALE_WORKERS=many"},
			want: []string{"'workers' cannot parse", "environment variables SPINSCALE_WORKERS"},
		},
		{
			name: "env value out of range",
			env:  []string{"SPINSCALE_INTERVAL=1h", "SPINSCALE_LOG_LEVEL=debug"},
			want: []string{`interval: "1h" is out of range`, "environment variables SPINSCALE_INTERVAL, SPINSCALE_LOG_LEVEL"},
		},
		{
			name:  "invalid value from flag",
			flags: []string{"--set", "interval=1h"},
			want:  []string{`interval: "1h"`},
		},
		{
			name:  "unknown key from flag",
			flags: []string{"--set", "nope=1"},
			want:  []string{"nope"},
		},
		{
			name:  "set without equals",
			flags: []string{"--set", "interval"},
			want:  []string{`--set "interval": want key=value`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			setEnv(t, tt.env...)
			_, err := loadConfig(path, parseFlags(t, tt.flags...))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "load config: ")
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	setEnv(t)
	_, err := loadConfig(path, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
}

// TestEnvVarIsViperName proves that every key is read from the variable
// envVar names (the name errors quote), and that names follow DESIGN's
// examples.
func TestEnvVarIsViperName(t *testing.T) {
	v, keys, err := newViper()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, key := range keys {
		t.Setenv(envVar(key), "from "+key)
	}
	for _, key := range keys {
		assert.Equal(t, "from "+key, v.Get(key), "key %s, variable %s", key, envVar(key))
	}

	for key, want := range map[string]string{
		"interval":               "SPINSCALE_INTERVAL",
		"prometheus.address":     "SPINSCALE_PROMETHEUS_ADDRESS",
		"leaderElection.enabled": "SPINSCALE_LEADERELECTION_ENABLED",
		"prometheus.tls.caFile":  "SPINSCALE_PROMETHEUS_TLS_CAFILE",
	} {
		assert.Equal(t, want, envVar(key))
	}
}

func TestRegisterConfigFlags(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	registerConfigFlags(fs)

	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	assert.ElementsMatch(t, []string{"config", "dry-run", "set"}, names)

	require.NoError(t, fs.Parse([]string{"--config", "/etc/spinscale/config.yaml"}))
	path, err := fs.GetString(flagConfig)
	require.NoError(t, err)
	assert.Equal(t, "/etc/spinscale/config.yaml", path)
}

// setEnv clears every variable that overrides a key, so tests never see the
// process's, then sets env ("NAME=value" entries) for the test.
func setEnv(t *testing.T, env ...string) {
	t.Helper()
	for key := range config.Default().Map() {
		t.Setenv(envVar(key), "")
	}
	for _, entry := range env {
		name, val, ok := strings.Cut(entry, "=")
		require.True(t, ok, "env entry %q: want NAME=value", entry)
		t.Setenv(name, val)
	}
}

// parseFlags returns a FlagSet with the configuration flags parsed from args.
func parseFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	registerConfigFlags(fs)
	require.NoError(t, fs.Parse(args))
	return fs
}

// writeConfig writes content to a config file in a test directory.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}
