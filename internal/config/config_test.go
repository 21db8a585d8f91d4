package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/annotations"
)

func TestDefaultValidates(t *testing.T) {
	require.NoError(t, Default().Validate())
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		// want are substrings the error message must contain: at least the
		// key path and the offending value.
		want []string
	}{
		{"unknown profile", func(c *Config) { c.Profile = "vpa" }, []string{"profile", `"vpa"`, "hpa, spinscale"}},
		{"interval too short", func(c *Config) { c.Interval = 500 * time.Millisecond }, []string{`interval: "500ms" is out of range: allowed 1s to 10m`}},
		{"interval too long", func(c *Config) { c.Interval = 11 * time.Minute }, []string{"interval", `"11m"`}},
		{"poll longer than the interval", func(c *Config) { c.Poll = 20 * time.Second }, []string{`poll: "20s" is out of range: allowed 0 (decide on the interval only), or 100ms up to the interval (15s)`}},
		{"poll too short", func(c *Config) { c.Poll = 10 * time.Millisecond }, []string{`poll: "10ms"`}},
		{"negative poll", func(c *Config) { c.Poll = -time.Second }, []string{`poll: "-1s"`}},
		{"invalid namespace", func(c *Config) { c.Namespaces = []string{"ok", "Not_OK"} }, []string{"namespaces[1]", `"Not_OK"`, "DNS-1123 label"}},
		{"empty namespace", func(c *Config) { c.Namespaces = []string{""} }, []string{"namespaces[0]", `""`}},
		{"invalid selector", func(c *Config) { c.Selector = "app in (a" }, []string{"selector", `"app in (a"`}},
		{"zero workers", func(c *Config) { c.Workers = 0 }, []string{"workers: 0 is out of range: allowed 1 to 1024"}},
		{"too many workers", func(c *Config) { c.Workers = 1025 }, []string{"workers", "1025"}},
		{"zero maxSampleAge", func(c *Config) { c.MaxSampleAge = 0 }, []string{"maxSampleAge", `"0s"`, "1h"}},
		{"maxSampleAge too long", func(c *Config) { c.MaxSampleAge = 2 * time.Hour }, []string{"maxSampleAge", `"2h"`}},
		{"negative tolerance", func(c *Config) { c.Tolerance = -0.1 }, []string{"tolerance: -0.1 is out of range: allowed 0 to 1"}},
		{"tolerance above 1", func(c *Config) { c.Tolerance = 1.5 }, []string{"tolerance", "1.5"}},
		{"NaN tolerance", func(c *Config) { c.Tolerance = math.NaN() }, []string{"tolerance", "NaN"}},
		{"negative cpuInitializationPeriod", func(c *Config) { c.CPUInitializationPeriod = -time.Second }, []string{"cpuInitializationPeriod", `"-1s"`, "0s to 1h"}},
		{"cpuInitializationPeriod too long", func(c *Config) { c.CPUInitializationPeriod = 61 * time.Minute }, []string{"cpuInitializationPeriod", `"1h1m"`}},
		{"negative initialReadinessDelay", func(c *Config) { c.InitialReadinessDelay = -time.Second }, []string{"initialReadinessDelay", `"-1s"`}},
		{"initialReadinessDelay too long", func(c *Config) { c.InitialReadinessDelay = 2 * time.Hour }, []string{"initialReadinessDelay", `"2h"`}},
		{"negative downscaleStabilization", func(c *Config) { c.DownscaleStabilization = -time.Second }, []string{"downscaleStabilization", `"-1s"`}},
		{"downscaleStabilization too long", func(c *Config) { c.DownscaleStabilization = 90 * time.Minute }, []string{"downscaleStabilization", `"1h30m"`}},
		{"scaleUpLimitFactor below 1", func(c *Config) { c.ScaleUpLimitFactor = 0.5 }, []string{"scaleUpLimitFactor: 0.5 is out of range: allowed 1 to 100"}},
		{"scaleUpLimitFactor above 100", func(c *Config) { c.ScaleUpLimitFactor = 101 }, []string{"scaleUpLimitFactor", "101"}},
		{"scaleUpLimitMinimum zero", func(c *Config) { c.ScaleUpLimitMinimum = 0 }, []string{"scaleUpLimitMinimum: 0 is out of range: allowed 1 or more"}},
		{"prometheus address not a URL", func(c *Config) { c.Prometheus.Address = "http://[::1" }, []string{"prometheus.address", `"http://[::1"`}},
		{"prometheus address relative", func(c *Config) { c.Prometheus.Address = "prometheus:9090" }, []string{"prometheus.address", `"prometheus:9090"`, "absolute http or https"}},
		{"prometheus address wrong scheme", func(c *Config) { c.Prometheus.Address = "ftp://p" }, []string{"prometheus.address", `"ftp://p"`}},
		{"prometheus address without host", func(c *Config) { c.Prometheus.Address = "http://" }, []string{"prometheus.address", `"http://"`}},
		{"zero prometheus timeout", func(c *Config) { c.Prometheus.Timeout = 0 }, []string{"prometheus.timeout", `"0s"`, "1m"}},
		{"prometheus timeout too long", func(c *Config) { c.Prometheus.Timeout = 2 * time.Minute }, []string{"prometheus.timeout", `"2m"`}},
		{"basicAuth username only", func(c *Config) { c.Prometheus.BasicAuth.Username = "bob" }, []string{"prometheus.basicAuth.passwordFile", "prometheus.basicAuth.username", `"bob"`, "both or neither"}},
		{"basicAuth passwordFile only", func(c *Config) { c.Prometheus.BasicAuth.PasswordFile = "/pw" }, []string{"prometheus.basicAuth.username", `"/pw"`}},
		{"bearer token and basic auth", func(c *Config) {
			c.Prometheus.BearerTokenFile = "/token"
			c.Prometheus.BasicAuth = BasicAuth{Username: "u", PasswordFile: "/pw"}
		}, []string{"prometheus.bearerTokenFile", `"/token"`, "prometheus.basicAuth", "not both"}},
		{"bearer token and a lone basic auth password", func(c *Config) {
			c.Prometheus.BearerTokenFile = "/token"
			c.Prometheus.BasicAuth.PasswordFile = "/pw"
		}, []string{"prometheus.bearerTokenFile", "not both", "prometheus.basicAuth.username"}},
		{"credentials in headers", func(c *Config) { c.Prometheus.Headers = map[string]string{"authorization": "Bearer x"} },
			[]string{"prometheus.headers.authorization", "Authorization is set by the client itself"}},
		{"tls cert only", func(c *Config) { c.Prometheus.TLS.CertFile = "/c" }, []string{"prometheus.tls.keyFile", "prometheus.tls.certFile", `"/c"`}},
		{"tls key only", func(c *Config) { c.Prometheus.TLS.KeyFile = "/k" }, []string{"prometheus.tls.certFile", `"/k"`}},
		{"empty podLabel", func(c *Config) { c.Prometheus.PodLabel = "" }, []string{"prometheus.podLabel", `""`}},
		{"zero prometheus concurrency", func(c *Config) { c.Prometheus.Concurrency = 0 }, []string{"prometheus.concurrency: 0 is out of range: allowed 1 to 256"}},
		{"prometheus concurrency too high", func(c *Config) { c.Prometheus.Concurrency = 257 }, []string{"prometheus.concurrency", "257"}},
		{"invalid lease namespace", func(c *Config) { c.LeaderElection.Namespace = "Kube_System" }, []string{"leaderElection.namespace", `"Kube_System"`}},
		{"empty leaseName", func(c *Config) { c.LeaderElection.LeaseName = "" }, []string{"leaderElection.leaseName", `""`, "DNS-1123 subdomain"}},
		{"invalid leaseName", func(c *Config) { c.LeaderElection.LeaseName = "Spin_Scale" }, []string{"leaderElection.leaseName", `"Spin_Scale"`}},
		{"leaseDuration not above renewDeadline", func(c *Config) { c.LeaderElection.LeaseDuration = 10 * time.Second }, []string{"leaderElection.leaseDuration", `"10s"`, "leaderElection.renewDeadline"}},
		{"renewDeadline not above retryPeriod", func(c *Config) { c.LeaderElection.RetryPeriod = 10 * time.Second }, []string{"leaderElection.renewDeadline", `"10s"`, "leaderElection.retryPeriod"}},
		{"renewDeadline within retryPeriod jitter", func(c *Config) { c.LeaderElection.RenewDeadline = 2200 * time.Millisecond }, []string{"leaderElection.renewDeadline", `"2.2s"`, "2.4s"}},
		{"zero retryPeriod", func(c *Config) { c.LeaderElection.RetryPeriod = 0 }, []string{"leaderElection.retryPeriod", `"0s"`}},
		{"unknown log level", func(c *Config) { c.Log.Level = "trace" }, []string{"log.level", `"trace"`, "debug, info, warn, error"}},
		{"unknown log format", func(c *Config) { c.Log.Format = "text" }, []string{"log.format", `"text"`, "json, console"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"spinscale profile", func(c *Config) { c.Profile = ProfileSpinscale }},
		{"interval bounds", func(c *Config) { c.Interval = time.Second }},
		{"namespaces", func(c *Config) { c.Namespaces = []string{"default", "kube-system"} }},
		{"selector", func(c *Config) { c.Selector = "app=web,tier in (a,b),!legacy" }},
		{"zero durations", func(c *Config) {
			c.CPUInitializationPeriod, c.InitialReadinessDelay, c.DownscaleStabilization = 0, 0, 0
		}},
		{"tolerance bounds", func(c *Config) { c.Tolerance = 1 }},
		{"https prometheus with auth and tls", func(c *Config) {
			c.Prometheus.Address = "https://prometheus.monitoring.svc:9090/prefix"
			c.Prometheus.BasicAuth = BasicAuth{Username: "u", PasswordFile: "/pw"}
			c.Prometheus.TLS = TLS{CAFile: "/ca", CertFile: "/c", KeyFile: "/k"}
		}},
		{"bearer token over https with a Host header", func(c *Config) {
			c.Prometheus.Address = "https://prometheus.monitoring.svc:9090"
			c.Prometheus.BearerTokenFile = "/token"
			c.Prometheus.Headers = map[string]string{"host": "prometheus.example.com", "x-scope-orgid": "tenant-1"}
		}},
		{"lease namespace", func(c *Config) { c.LeaderElection.Namespace = "spinscale-system" }},
		{"decisions on the interval only", func(c *Config) { c.Poll = 0 }},
		{"poll as long as the interval", func(c *Config) { c.Poll, c.Interval = 30*time.Second, 30*time.Second }},
		{"console debug logging", func(c *Config) { c.Log = Log{Level: LogLevelDebug, Format: LogFormatConsole} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			assert.NoError(t, c.Validate())
		})
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Default()
	c.Interval = 0
	c.Workers = -1
	c.Prometheus.Timeout = time.Hour
	c.Log.Format = "xml"

	err := c.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{`interval: "0s"`, "workers: -1", `prometheus.timeout: "1h"`, `log.format: "xml"`} {
		assert.Contains(t, msg, want)
	}
	assert.Len(t, strings.Split(msg, "\n"), 4, "one line per problem")

	// Each joined part names its key as a FieldError.
	var keys []string
	for _, part := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		require.True(t, errors.As(part, &fe), "%v", part)
		keys = append(keys, fe.Key)
	}
	assert.Equal(t, []string{"interval", "workers", "prometheus.timeout", "log.format"}, keys)
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		input map[string]any
		want  func(*Config)
	}{
		{
			name:  "empty map keeps base",
			input: map[string]any{},
			want:  func(*Config) {},
		},
		{
			name: "typed values overlay base",
			input: map[string]any{
				"profile":            "spinscale",
				"workers":            3,
				"tolerance":          0.2,
				"scaleUpLimitFactor": 3, // an int from YAML into a float
				"namespaces":         []any{"a", "b"},
				"prometheus": map[string]any{
					"address": "http://p:9090",
					"headers": map[string]any{"X-Org": "1"},
					"tls":     map[string]any{"insecureSkipVerify": true},
				},
			},
			want: func(c *Config) {
				c.Profile = ProfileSpinscale
				c.Workers = 3
				c.Tolerance = 0.2
				c.ScaleUpLimitFactor = 3
				c.Namespaces = []string{"a", "b"}
				c.Prometheus.Address = "http://p:9090"
				c.Prometheus.Headers = map[string]string{"X-Org": "1"}
				c.Prometheus.TLS.InsecureSkipVerify = true
			},
		},
		{
			name: "string values as from environment variables",
			input: map[string]any{
				"workers":             "4",
				"dryRun":              "true",
				"tolerance":           "0.2",
				"scaleUpLimitMinimum": "6",
				"namespaces":          "a,b",
				"metricsServer":       map[string]any{"enabled": "false"},
			},
			want: func(c *Config) {
				c.Workers = 4
				c.DryRun = true
				c.Tolerance = 0.2
				c.ScaleUpLimitMinimum = 6
				c.Namespaces = []string{"a", "b"}
				c.MetricsServer.Enabled = false
			},
		},
		{
			name: "durations parse from strings",
			input: map[string]any{
				"interval":       "30s",
				"maxSampleAge":   "1m30s",
				"prometheus":     map[string]any{"timeout": "250ms"},
				"leaderElection": map[string]any{"leaseDuration": "1h"},
			},
			want: func(c *Config) {
				c.Interval = 30 * time.Second
				c.MaxSampleAge = 90 * time.Second
				c.Prometheus.Timeout = 250 * time.Millisecond
				c.LeaderElection.LeaseDuration = time.Hour
			},
		},
		{
			name: "lower-cased keys as from viper",
			input: map[string]any{
				"maxsampleage":   "1m",
				"leaderelection": map[string]any{"leasename": "other"},
				"prometheus":     map[string]any{"basicauth": map[string]any{"passwordfile": "/pw"}},
			},
			want: func(c *Config) {
				c.MaxSampleAge = time.Minute
				c.LeaderElection.LeaseName = "other"
				c.Prometheus.BasicAuth.PasswordFile = "/pw"
			},
		},
		{
			name:  "empty string clears a list",
			input: map[string]any{"namespaces": ""},
			want:  func(c *Config) { c.Namespaces = []string{} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(Default(), tt.input)
			require.NoError(t, err)
			want := Default()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}

// TestDecodeRejects checks that errors name the key. mapstructure
// deliberately leaves the offending value out of its messages (it may be a
// secret), so only the key and the expected type are asserted.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		input map[string]any
		want  []string
	}{
		{"unknown top-level key", map[string]any{"intervall": "1s"}, []string{"intervall"}},
		{"unknown nested key", map[string]any{"prometheus": map[string]any{"adress": "x"}}, []string{"prometheus", "adress"}},
		{"bad duration", map[string]any{"interval": "soon"}, []string{"'interval'", "invalid duration"}},
		{"bad int", map[string]any{"workers": "many"}, []string{"'workers'", "int"}},
		{"bad bool", map[string]any{"leaderElection": map[string]any{"enabled": "maybe"}}, []string{"'leaderElection.enabled'", "bool"}},
		{"scalar for section", map[string]any{"log": "debug"}, []string{"log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(Default(), tt.input)
			require.Error(t, err)
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestDecodeDoesNotValidate(t *testing.T) {
	got, err := Decode(Default(), map[string]any{"workers": 0})
	require.NoError(t, err)
	assert.Equal(t, 0, got.Workers)
}

func TestDecodeDoesNotMutateBase(t *testing.T) {
	base := Default()
	base.Namespaces = []string{"x", "y"}
	base.Prometheus.Headers = map[string]string{"A": "1"}

	_, err := Decode(base, map[string]any{
		"namespaces": []any{"z"},
		"prometheus": map[string]any{"headers": map[string]any{"B": "2"}},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "y"}, base.Namespaces)
	assert.Equal(t, map[string]string{"A": "1"}, base.Prometheus.Headers)
}

func TestMap(t *testing.T) {
	m := Default().Map()

	assert.Equal(t, "5s", m["prometheus.timeout"])
	assert.Equal(t, "5m", m["cpuInitializationPeriod"])
	assert.Equal(t, "15s", m["interval"])
	assert.Equal(t, 8, m["workers"])
	assert.Equal(t, int32(4), m["scaleUpLimitMinimum"])
	assert.Equal(t, true, m["metricsServer.enabled"])
	assert.Equal(t, "", m["prometheus.basicAuth.passwordFile"])
	assert.Equal(t, []string{}, m["namespaces"])
	assert.Equal(t, map[string]string{}, m["prometheus.headers"])
	assert.Len(t, m, 43, "one entry per leaf key")
}

// TestMapRoundTrip guards the property the binary relies on: the flattened
// defaults, decoded onto an empty Config, reproduce Default exactly.
func TestMapRoundTrip(t *testing.T) {
	nested := map[string]any{}
	for key, val := range Default().Map() {
		parts := strings.Split(key, ".")
		node := nested
		for _, p := range parts[:len(parts)-1] {
			child, ok := node[p].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[p] = child
			}
			node = child
		}
		node[parts[len(parts)-1]] = val
	}

	got, err := Decode(Config{}, nested)
	require.NoError(t, err)
	assert.Equal(t, Default(), got)
}

// TestAppDefaults: every setting an app's spec starts from comes from its
// own key (values differ from each other and from the defaults, so a
// crossed or forgotten field shows).
func TestAppDefaults(t *testing.T) {
	c := Default()
	c.Profile = ProfileSpinscale
	c.Tolerance = 0.25
	c.DownscaleStabilization = 7 * time.Minute
	c.CPUInitializationPeriod = 3 * time.Minute
	c.InitialReadinessDelay = 45 * time.Second
	c.MaxSampleAge = 90 * time.Second
	c.ScaleUpLimitFactor = 3
	c.ScaleUpLimitMinimum = 6
	assert.Equal(t, annotations.Defaults{
		Profile:                 "spinscale",
		Tolerance:               0.25,
		DownscaleStabilization:  7 * time.Minute,
		CPUInitializationPeriod: 3 * time.Minute,
		InitialReadinessDelay:   45 * time.Second,
		MaxSampleAge:            90 * time.Second,
		ScaleUpLimitFactor:      3,
		ScaleUpLimitMinimum:     6,
	}, c.AppDefaults())
}

// TestValidateReportsPrometheusWithTheRest: the Prometheus settings are
// checked with the others, so that one run names every problem.
func TestValidateReportsPrometheusWithTheRest(t *testing.T) {
	c := Default()
	c.Interval = 0
	c.Prometheus.Address = "http://prometheus:9090"
	c.Prometheus.BearerTokenFile = "/token"
	c.Prometheus.BasicAuth = BasicAuth{Username: "u", PasswordFile: "/pw"}
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `interval: "0s"`)
	assert.Contains(t, err.Error(), "prometheus.bearerTokenFile")
	assert.Len(t, strings.Split(err.Error(), "\n"), 2, "one line per problem")
}

func TestPrometheusHTTPClient(t *testing.T) {
	p := Default().Prometheus
	p.Address = "https://prometheus:9090"
	p.BasicAuth = BasicAuth{Username: "spinscale", PasswordFile: "/pw"}
	p.TLS = TLS{CAFile: "/ca", CertFile: "/c", KeyFile: "/k", InsecureSkipVerify: true}
	p.Headers = map[string]string{"x-scope-orgid": "tenant-1", "Host": "p.example.com"}
	hc, opts := p.HTTPClient()
	require.NotNil(t, hc.BasicAuth)
	assert.Equal(t, "spinscale", hc.BasicAuth.Username)
	assert.Equal(t, "/pw", hc.BasicAuth.PasswordFile)
	assert.Nil(t, hc.Authorization)
	assert.Equal(t, "/ca", hc.TLSConfig.CAFile)
	assert.Equal(t, "/c", hc.TLSConfig.CertFile)
	assert.Equal(t, "/k", hc.TLSConfig.KeyFile)
	assert.True(t, hc.TLSConfig.InsecureSkipVerify)
	require.NotNil(t, hc.HTTPHeaders)
	assert.Equal(t, []string{"tenant-1"}, hc.HTTPHeaders.Headers["X-Scope-Orgid"].Values)
	assert.NotContains(t, hc.HTTPHeaders.Headers, "Host", "Host is the client's host option")
	assert.Len(t, opts, 1)

	p.BasicAuth = BasicAuth{}
	p.BearerTokenFile = "/token"
	hc, _ = p.HTTPClient()
	require.NotNil(t, hc.Authorization)
	assert.Equal(t, "Bearer", hc.Authorization.Type)
	assert.Equal(t, "/token", hc.Authorization.CredentialsFile)
	assert.Nil(t, hc.BasicAuth)
}

func TestPrometheusCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	token := write("token", "s3cret\n")
	empty := write("empty", " \n")
	notPEM := write("not.pem", "hello")
	missing := filepath.Join(dir, "missing")
	enabled := Default().Prometheus
	enabled.Address = "http://prometheus:9090"

	for _, tc := range []struct {
		name   string
		change func(*Prometheus)
		want   []string // substrings; none: no error
	}{
		{"no files", func(*Prometheus) {}, nil},
		{"a readable token", func(p *Prometheus) { p.BearerTokenFile = token }, nil},
		{"disabled source: nothing is read", func(p *Prometheus) { p.Address, p.BearerTokenFile = "", missing }, nil},
		{"invalid settings: left to Validate", func(p *Prometheus) { p.Timeout, p.BearerTokenFile = 0, missing }, nil},
		{"missing token file", func(p *Prometheus) { p.BearerTokenFile = missing }, []string{"prometheus.bearerTokenFile: ", missing}},
		{"empty token file", func(p *Prometheus) { p.BearerTokenFile = empty }, []string{"prometheus.bearerTokenFile: " + empty + " is empty"}},
		{"missing password file", func(p *Prometheus) { p.BasicAuth = BasicAuth{Username: "u", PasswordFile: missing} },
			[]string{"prometheus.basicAuth.passwordFile: ", missing}},
		{"missing CA", func(p *Prometheus) { p.TLS.CAFile = missing }, []string{"prometheus.tls.caFile: ", missing}},
		{"CA not PEM", func(p *Prometheus) { p.TLS.CAFile = notPEM }, []string{"prometheus.tls.caFile: ", notPEM}},
		{"bad key pair", func(p *Prometheus) { p.TLS.CertFile, p.TLS.KeyFile = notPEM, notPEM },
			[]string{"prometheus.tls.certFile, prometheus.tls.keyFile: ", notPEM}},
		{"every problem at once", func(p *Prometheus) { p.BearerTokenFile, p.TLS.CAFile = empty, notPEM },
			[]string{"prometheus.bearerTokenFile", "prometheus.tls.caFile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := enabled
			tc.change(&p)
			err := p.CheckFiles()
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// Named servers are validated under their own keys, and take the default
// server's timeout, podLabel and concurrency.
func TestPrometheusServers(t *testing.T) {
	c := Default()
	c.Prometheus.Address = "http://prometheus:9090"
	c.Prometheus.Servers = map[string]Prometheus{
		"thanos":    {Address: "http://thanos-query:9090", BearerTokenFile: "/t", BasicAuth: BasicAuth{Username: "u", PasswordFile: "/p"}},
		"Bad_Name":  {Address: "http://x:1"},
		"no-adress": {},
		"mimir":     {Address: "ftp://mimir"},
	}
	err := c.Validate()
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `prometheus.servers.Bad_Name: "Bad_Name" is not a valid server name`)
	assert.Contains(t, msg, `prometheus.servers.no-adress.address: "" is empty: a server needs an address`)
	assert.Contains(t, msg, `prometheus.servers.mimir.address: "ftp://mimir" is not an absolute http or https URL`)
	assert.Contains(t, msg, `prometheus.servers.thanos.bearerTokenFile: "/t" is set together with prometheus.servers.thanos.basicAuth`)

	c.Prometheus.Servers = map[string]Prometheus{"thanos": {Address: "http://thanos-query:9090"}}
	require.NoError(t, c.Validate())
	noDefault := c
	noDefault.Prometheus.Address = ""
	assert.ErrorContains(t, noDefault.Validate(), "prometheus.servers: needs prometheus.address")
	s, ok := c.Prometheus.Server("thanos")
	require.True(t, ok)
	assert.Equal(t, c.Prometheus.Timeout, s.Timeout)
	assert.Equal(t, "pod", s.PodLabel)
	assert.Equal(t, []string{"thanos"}, c.AppDefaults().PrometheusServers)
}
