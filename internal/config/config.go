package config

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	promconfig "github.com/prometheus/common/config"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/duration"
)

// Profiles select the scaling algorithm.
const (
	// ProfileHPA reproduces the upstream HorizontalPodAutoscaler (v1.37)
	// behaviour exactly, so Spinscale can be dropped in without surprises.
	ProfileHPA = "hpa"
	// ProfileSpinscale is Spinscale's tuned profile.
	ProfileSpinscale = "spinscale"
)

// Log levels and formats accepted by Log.
const (
	LogLevelDebug = "debug"
	LogLevelInfo  = "info"
	LogLevelWarn  = "warn"
	LogLevelError = "error"

	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// Config is the global configuration of the autoscaler.
//
// The json tags are the product contract: they are the keys of config.yaml,
// the dotted paths used for environment variables and --set, and the names
// used in error messages. Decode uses them too (mapstructure with TagName
// "json"), so there is a single naming scheme.
type Config struct {
	// Profile selects the scaling algorithm: ProfileHPA or ProfileSpinscale.
	Profile string `json:"profile"`
	// Interval is the period of the reconcile loop: the longest time
	// between two decisions for an app whose data did not change, and the
	// hpa profile's sync period.
	Interval time.Duration `json:"interval"`
	// Poll is how often the metric sources are read for fresh samples: an
	// app of the spinscale profile is decided as soon as one of its metrics
	// has a sample its last decision did not use, and any app as soon as
	// its annotations change. 0 decides on the interval only.
	Poll time.Duration `json:"poll"`
	// Namespaces restricts the watched namespaces; empty means all.
	Namespaces []string `json:"namespaces"`
	// Selector is a label selector restricting the handled targets.
	Selector string `json:"selector"`
	// DryRun computes recommendations without ever scaling.
	DryRun bool `json:"dryRun"`
	// PodSelector is a label selector restricting the pods the controller
	// caches; empty caches every pod of the watched namespaces. A pod it
	// excludes is never counted as a missing pod: its app sees no pod.
	PodSelector string `json:"podSelector"`
	// Workers is the number of targets reconciled concurrently.
	Workers int `json:"workers"`
	// MaxSampleAge is the age beyond which a metric sample is ignored.
	MaxSampleAge time.Duration `json:"maxSampleAge"`
	// Tolerance is the relative deviation from the target below which no
	// scaling happens (HPA --horizontal-pod-autoscaler-tolerance).
	Tolerance float64 `json:"tolerance"`
	// CPUInitializationPeriod is the period after pod start during which CPU
	// samples are distrusted (HPA --horizontal-pod-autoscaler-cpu-initialization-period).
	CPUInitializationPeriod time.Duration `json:"cpuInitializationPeriod"`
	// InitialReadinessDelay is the period after pod start during which
	// readiness flaps are ignored (HPA --horizontal-pod-autoscaler-initial-readiness-delay).
	InitialReadinessDelay time.Duration `json:"initialReadinessDelay"`
	// DownscaleStabilization is the default scale-down stabilization window
	// (HPA --horizontal-pod-autoscaler-downscale-stabilization).
	DownscaleStabilization time.Duration `json:"downscaleStabilization"`
	// ScaleUpLimitFactor bounds a single scale up to factor*current replicas.
	ScaleUpLimitFactor float64 `json:"scaleUpLimitFactor"`
	// ScaleUpLimitMinimum is the lower bound of that scale-up limit.
	ScaleUpLimitMinimum int32 `json:"scaleUpLimitMinimum"`

	// Kube configures the controller's Kubernetes API client.
	Kube           Kube           `json:"kube"`
	MetricsServer  MetricsServer  `json:"metricsServer"`
	Prometheus     Prometheus     `json:"prometheus"`
	Activator      Activator      `json:"activator"`
	LeaderElection LeaderElection `json:"leaderElection"`
	Server         Server         `json:"server"`
	Log            Log            `json:"log"`
}

// Kube configures the Kubernetes API client: its client-side rate limit.
// kube-controller-manager runs the HPA controller at 20 requests/s with a
// burst of 30; Spinscale's pass makes one write per app that scales, so a
// cluster-wide surge needs more (docs/scale.md measures it).
type Kube struct {
	QPS   float64 `json:"qps"`
	Burst int     `json:"burst"`
}

// Activator configures the HTTP activator source: the admin endpoints whose
// stats streams the leader reads (internal/httpstats). Both empty disables
// it; HTTP metrics then fail as missing data.
type Activator struct {
	// Addresses are absolute http URLs of activator admin endpoints.
	Addresses []string `json:"addresses"`
	// Service is the activator admin Service as "namespace/name": its
	// EndpointSlices list the replicas, on the port named "admin" or the
	// only port.
	Service string `json:"service"`
}

// Enabled reports whether any activator is configured.
func (a Activator) Enabled() bool { return len(a.Addresses) > 0 || a.Service != "" }

// validate checks the activator settings.
func (a Activator) validate(v *validator) {
	for i, addr := range a.Addresses {
		key := fmt.Sprintf("activator.addresses[%d]", i)
		u, err := url.Parse(addr)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			v.addf(key, "%q is not an absolute http URL of an activator admin endpoint: allowed e.g. http://127.0.0.1:9090", addr)
		}
	}
	if a.Service != "" {
		ns, name, ok := strings.Cut(a.Service, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1035Label(name)) > 0 {
			v.addf("activator.service", "%q is not namespace/name of a Service: allowed e.g. spinscale/spinscale-activator-admin, or empty", a.Service)
		}
	}
}

// MetricsServer configures the metrics.k8s.io (resource metrics) source.
type MetricsServer struct {
	Enabled bool `json:"enabled"`
}

// Prometheus configures the optional Prometheus metrics source.
type Prometheus struct {
	// Address is the base URL of the Prometheus API; empty disables the source.
	Address string `json:"address"`
	// Timeout bounds each query.
	Timeout time.Duration `json:"timeout"`
	// BearerTokenFile is read for an Authorization: Bearer header.
	BearerTokenFile string    `json:"bearerTokenFile"`
	BasicAuth       BasicAuth `json:"basicAuth"`
	TLS             TLS       `json:"tls"`
	// Headers are extra HTTP headers sent with every query. Note that keys
	// arriving through viper are lower-cased; HTTP header names are
	// case-insensitive, so this is harmless.
	Headers map[string]string `json:"headers"`
	// PodLabel is the series label holding the pod name.
	PodLabel string `json:"podLabel"`
	// Concurrency bounds the number of in-flight queries.
	Concurrency int `json:"concurrency"`
	// Servers are further Prometheus-compatible servers (Thanos, Mimir, a
	// second Prometheus) that a metric names with its `server` field, each
	// with its own address, credentials, TLS and headers. A server's
	// timeout and podLabel default to the ones above; concurrency is the
	// source's, shared by every server; a server has no servers of its own.
	Servers map[string]Prometheus `json:"servers"`
}

// Server returns the settings of the named server, with the defaults it
// takes from p; the empty name is p itself.
func (p Prometheus) Server(name string) (Prometheus, bool) {
	if name == "" {
		return p, true
	}
	s, ok := p.Servers[name]
	if !ok {
		return Prometheus{}, false
	}
	if s.Timeout == 0 {
		s.Timeout = p.Timeout
	}
	if s.PodLabel == "" {
		s.PodLabel = p.PodLabel
	}
	if s.Concurrency == 0 {
		s.Concurrency = p.Concurrency
	}
	s.Servers = nil
	return s, true
}

// Key is the configuration key of the named server's settings:
// "prometheus", or "prometheus.servers.NAME".
func (p Prometheus) Key(name string) string {
	if name == "" {
		return "prometheus"
	}
	return "prometheus.servers." + name
}

// BasicAuth holds HTTP basic authentication credentials. The password is
// read from a file so it never appears in the configuration itself.
type BasicAuth struct {
	Username     string `json:"username"`
	PasswordFile string `json:"passwordFile"`
}

// TLS configures the client side of a TLS connection.
type TLS struct {
	CAFile             string `json:"caFile"`
	CertFile           string `json:"certFile"`
	KeyFile            string `json:"keyFile"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify"`
}

// LeaderElection configures the Lease-based leader election that lets
// several replicas run while only one of them scales.
type LeaderElection struct {
	Enabled bool `json:"enabled"`
	// Namespace holds the Lease. Empty means: the pod's namespace when
	// in-cluster, else the kubeconfig's namespace, else "default".
	Namespace     string        `json:"namespace"`
	LeaseName     string        `json:"leaseName"`
	LeaseDuration time.Duration `json:"leaseDuration"`
	RenewDeadline time.Duration `json:"renewDeadline"`
	RetryPeriod   time.Duration `json:"retryPeriod"`
}

// Server configures the listen addresses of the HTTP endpoints.
type Server struct {
	MetricsAddress string `json:"metricsAddress"`
	HealthAddress  string `json:"healthAddress"`
}

// Log configures logging.
type Log struct {
	Level  string `json:"level"`
	Format string `json:"format"`
}

// Default returns the default configuration. It is the single source of
// defaults; config.yaml at the repository root must stay equal to it (a test
// in cmd/autoscaler enforces this).
//
// Empty collections are non-nil so that a Config decoded from a file that
// spells them out ("namespaces: []") compares equal to Default.
func Default() Config {
	return Config{
		Profile:                 ProfileSpinscale,
		Interval:                15 * time.Second,
		Poll:                    time.Second,
		Namespaces:              []string{},
		Selector:                "",
		PodSelector:             "",
		DryRun:                  false,
		Workers:                 8,
		MaxSampleAge:            2 * time.Minute,
		Tolerance:               0.1,
		CPUInitializationPeriod: 5 * time.Minute,
		InitialReadinessDelay:   30 * time.Second,
		DownscaleStabilization:  5 * time.Minute,
		ScaleUpLimitFactor:      2,
		ScaleUpLimitMinimum:     4,
		Kube:                    Kube{QPS: 50, Burst: 100},
		MetricsServer:           MetricsServer{Enabled: true},
		Prometheus: Prometheus{
			Address:     "",
			Timeout:     5 * time.Second,
			Headers:     map[string]string{},
			Servers:     map[string]Prometheus{},
			PodLabel:    "pod",
			Concurrency: 8,
		},
		Activator: Activator{Addresses: []string{}, Service: ""},
		LeaderElection: LeaderElection{
			Enabled:       true,
			Namespace:     "",
			LeaseName:     "spinscale",
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			RetryPeriod:   2 * time.Second,
		},
		Server: Server{
			MetricsAddress: ":8080",
			HealthAddress:  ":8081",
		},
		Log: Log{
			Level:  LogLevelInfo,
			Format: LogFormatJSON,
		},
	}
}

// AppDefaults are the settings an app's spec starts from before its
// annotations apply: the controller, the simulator and the converter parse
// annotations against them. The configuration depends on the annotation
// parser for this, not the other way round, so that the parser stays a
// function of the annotations and these few values.
func (c Config) AppDefaults() annotations.Defaults {
	return annotations.Defaults{
		Profile: c.Profile, Tolerance: c.Tolerance, DownscaleStabilization: c.DownscaleStabilization,
		CPUInitializationPeriod: c.CPUInitializationPeriod, InitialReadinessDelay: c.InitialReadinessDelay,
		MaxSampleAge: c.MaxSampleAge, ScaleUpLimitFactor: c.ScaleUpLimitFactor, ScaleUpLimitMinimum: c.ScaleUpLimitMinimum,
		PrometheusServers: slices.Sorted(maps.Keys(c.Prometheus.Servers)),
	}
}

// Validate checks every field and returns all problems at once, joined with
// errors.Join, so an operator can fix a configuration in one go rather than
// one error per restart. Each message names the key path, the offending
// value and what is allowed. It returns nil when c is valid. It reads no
// file: CheckFiles reads the files the settings name.
func (c Config) Validate() error {
	var v validator

	v.oneOf("profile", c.Profile, ProfileHPA, ProfileSpinscale)
	v.durationRange("interval", c.Interval, time.Second, 10*time.Minute)
	// Against an invalid interval, only the interval is reported.
	if c.Poll != 0 && inRange(c.Interval, time.Second, 10*time.Minute) && !inRange(c.Poll, 100*time.Millisecond, c.Interval) {
		v.addf("poll", "%q is out of range: allowed 0 (decide on the interval only), or 100ms up to the interval (%s)", duration.Format(c.Poll), duration.Format(c.Interval))
	}
	for i, ns := range c.Namespaces {
		v.dns1123Label(fmt.Sprintf("namespaces[%d]", i), ns)
	}
	if _, err := labels.Parse(c.Selector); err != nil {
		v.addf("selector", "%q is not a valid label selector: %v", c.Selector, err)
	}
	v.intRange("workers", c.Workers, 1, 1024)
	if c.PodSelector != "" {
		if _, err := labels.Parse(c.PodSelector); err != nil {
			v.addf("podSelector", "%q is not a valid label selector: %v", c.PodSelector, err)
		}
	}
	if !(c.Kube.QPS >= 1 && c.Kube.QPS <= 10000) {
		v.addf("kube.qps", "%v is out of range: allowed 1 to 10000 requests per second", c.Kube.QPS)
	}
	v.intRange("kube.burst", c.Kube.Burst, 1, 100000)
	v.positiveDuration("maxSampleAge", c.MaxSampleAge, time.Hour)
	v.floatRange("tolerance", c.Tolerance, 0, 1)
	v.durationRange("cpuInitializationPeriod", c.CPUInitializationPeriod, 0, time.Hour)
	v.durationRange("initialReadinessDelay", c.InitialReadinessDelay, 0, time.Hour)
	v.durationRange("downscaleStabilization", c.DownscaleStabilization, 0, time.Hour)
	v.floatRange("scaleUpLimitFactor", c.ScaleUpLimitFactor, 1, 100)
	if c.ScaleUpLimitMinimum < 1 {
		v.addf("scaleUpLimitMinimum", "%d is out of range: allowed 1 or more", c.ScaleUpLimitMinimum)
	}

	c.Prometheus.validate(&v)
	c.Activator.validate(&v)
	c.LeaderElection.validate(&v)

	v.oneOf("log.level", c.Log.Level, LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError)
	v.oneOf("log.format", c.Log.Format, LogFormatJSON, LogFormatConsole)

	return errors.Join(v.errs...)
}

// Validate checks the Prometheus settings alone, by the rules of
// Config.Validate.
func (p Prometheus) Validate() error {
	var v validator
	p.validate(&v)
	return errors.Join(v.errs...)
}

func (p Prometheus) validate(v *validator) {
	p.validateAs(v, "prometheus")
	if len(p.Servers) > 0 && p.Address == "" {
		v.addf("prometheus.servers", "needs prometheus.address, the default server that metrics without a server field use")
	}
	for _, name := range slices.Sorted(maps.Keys(p.Servers)) {
		key := p.Key(name)
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			v.addf(key, "%q is not a valid server name: %s", name, strings.Join(msgs, "; "))
			continue
		}
		s, _ := p.Server(name)
		if s.Address == "" {
			v.addf(key+".address", "%q is empty: a server needs an address", s.Address)
			continue
		}
		if len(p.Servers[name].Servers) > 0 {
			v.addf(key+".servers", "a server has no servers of its own")
		}
		s.validateAs(v, key)
	}
}

// validateAs checks one server's settings, naming its keys under prefix.
func (p Prometheus) validateAs(v *validator, prefix string) {
	before := len(v.errs)
	if p.Address != "" {
		u, err := url.Parse(p.Address)
		switch {
		case err != nil:
			v.addf(prefix+".address", "%q is not a valid URL: %v", p.Address, err)
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			v.addf(prefix+".address", "%q is not an absolute http or https URL: allowed e.g. http://prometheus:9090, or empty to disable Prometheus", p.Address)
		}
	}
	v.positiveDuration(prefix+".timeout", p.Timeout, time.Minute)
	if p.BearerTokenFile != "" && (p.BasicAuth.Username != "" || p.BasicAuth.PasswordFile != "") {
		v.addf(prefix+".bearerTokenFile", "%q is set together with %s.basicAuth: set one or the other, not both", p.BearerTokenFile, prefix)
	}
	v.bothOrNeither(prefix+".basicAuth.username", p.BasicAuth.Username,
		prefix+".basicAuth.passwordFile", p.BasicAuth.PasswordFile)
	v.bothOrNeither(prefix+".tls.certFile", p.TLS.CertFile,
		prefix+".tls.keyFile", p.TLS.KeyFile)
	for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
		canonical := http.CanonicalHeaderKey(name)
		if _, reserved := promconfig.ReservedHeaders[canonical]; reserved && canonical != "Host" {
			v.addf(prefix+".headers."+name, "%s is set by the client itself: use bearerTokenFile or basicAuth for credentials", canonical)
		}
	}
	if p.PodLabel == "" {
		v.addf(prefix+".podLabel", "%q is empty: a label name is required", p.PodLabel)
	}
	v.intRange(prefix+".concurrency", p.Concurrency, 1, 256)
	if len(v.errs) > before {
		return
	}
	// The client library's own rules, on the settings as it receives them:
	// the checks above name Spinscale's keys, so this only catches a
	// mapping that the library would refuse.
	hc, _ := p.HTTPClient()
	if err := hc.Validate(); err != nil {
		v.addf(prefix, "%v", err)
	}
}

// HTTPClient maps the connection settings onto the configuration of
// prometheus/common's HTTP client, and the options it takes besides: a Host
// header is the client's host option, not a header it may send.
func (p Prometheus) HTTPClient() (promconfig.HTTPClientConfig, []promconfig.HTTPClientOption) {
	hc := promconfig.HTTPClientConfig{
		TLSConfig: promconfig.TLSConfig{
			CAFile:             p.TLS.CAFile,
			CertFile:           p.TLS.CertFile,
			KeyFile:            p.TLS.KeyFile,
			InsecureSkipVerify: p.TLS.InsecureSkipVerify,
			MinVersion:         promconfig.TLSVersion(tls.VersionTLS12),
		},
		// As Go's default client: redirects followed (credentials are not
		// sent to another host), HTTP/2 when the server offers it, and the
		// proxy of HTTPS_PROXY and NO_PROXY.
		FollowRedirects: true,
		EnableHTTP2:     true,
		ProxyConfig:     promconfig.ProxyConfig{ProxyFromEnvironment: true},
	}
	if p.BearerTokenFile != "" {
		hc.Authorization = &promconfig.Authorization{Type: "Bearer", CredentialsFile: p.BearerTokenFile}
	}
	if p.BasicAuth.Username != "" || p.BasicAuth.PasswordFile != "" {
		hc.BasicAuth = &promconfig.BasicAuth{Username: p.BasicAuth.Username, PasswordFile: p.BasicAuth.PasswordFile}
	}
	var opts []promconfig.HTTPClientOption
	for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
		if http.CanonicalHeaderKey(name) == "Host" {
			opts = append(opts, promconfig.WithHost(p.Headers[name]))
			continue
		}
		if hc.HTTPHeaders == nil {
			hc.HTTPHeaders = &promconfig.Headers{Headers: map[string]promconfig.Header{}}
		}
		hc.HTTPHeaders.Headers[http.CanonicalHeaderKey(name)] = promconfig.Header{Values: []string{p.Headers[name]}}
	}
	return hc, opts
}

// CheckFiles reads the files the Prometheus settings name, as the client
// does when it starts, and returns every problem at once, each naming its
// key and file. It reads nothing when the source is disabled (no address)
// or the settings are invalid, which Validate reports.
func (p Prometheus) CheckFiles() error {
	if p.Address == "" {
		return nil
	}
	var v validator
	if p.validate(&v); len(v.errs) > 0 {
		return nil
	}
	p.checkFilesAs(&v, "prometheus")
	for _, name := range slices.Sorted(maps.Keys(p.Servers)) {
		s, _ := p.Server(name)
		s.checkFilesAs(&v, p.Key(name))
	}
	return errors.Join(v.errs...)
}

// checkFilesAs reads one server's files, naming its keys under prefix.
func (p Prometheus) checkFilesAs(v *validator, prefix string) {
	for _, f := range []struct{ key, path string }{
		{prefix + ".bearerTokenFile", p.BearerTokenFile},
		{prefix + ".basicAuth.passwordFile", p.BasicAuth.PasswordFile},
	} {
		if f.path == "" {
			continue
		}
		// The client's own reader: it trims surrounding whitespace, as
		// Prometheus does with its *_file settings.
		secret, err := promconfig.NewFileSecret(f.path).Fetch(context.Background())
		switch {
		case err != nil:
			v.addf(f.key, "%w", err)
		case secret == "":
			v.addf(f.key, "%s is empty", f.path)
		}
	}
	if p.TLS.CAFile != "" {
		if _, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CAFile: p.TLS.CAFile}); err != nil {
			v.addf(prefix+".tls.caFile", "%w", err)
		}
	}
	if p.TLS.CertFile != "" {
		if _, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CertFile: p.TLS.CertFile, KeyFile: p.TLS.KeyFile}); err != nil {
			v.addf(prefix+".tls.certFile, "+prefix+".tls.keyFile", "%w", err)
		}
	}
}

func (l LeaderElection) validate(v *validator) {
	if l.Namespace != "" {
		v.dns1123Label("leaderElection.namespace", l.Namespace)
	}
	if msgs := validation.IsDNS1123Subdomain(l.LeaseName); len(msgs) > 0 {
		v.addf("leaderElection.leaseName", "%q is not a valid DNS-1123 subdomain: %s", l.LeaseName, strings.Join(msgs, "; "))
	}
	// These mirror client-go's leaderelection.NewLeaderElector checks, so a
	// bad combination is reported with the other problems instead of by
	// client-go once leader election starts.
	if l.LeaseDuration <= l.RenewDeadline {
		v.addf("leaderElection.leaseDuration", "%q must be greater than leaderElection.renewDeadline (%q)",
			duration.Format(l.LeaseDuration), duration.Format(l.RenewDeadline))
	}
	if minRenew := time.Duration(leaderElectionJitterFactor * float64(l.RetryPeriod)); l.RenewDeadline <= minRenew {
		v.addf("leaderElection.renewDeadline", "%q must be greater than leaderElection.retryPeriod (%q) times %s, i.e. more than %s",
			duration.Format(l.RenewDeadline), duration.Format(l.RetryPeriod),
			formatFloat(leaderElectionJitterFactor), duration.Format(minRenew))
	}
	if l.RetryPeriod <= 0 {
		v.addf("leaderElection.retryPeriod", "%q is out of range: allowed more than 0s", duration.Format(l.RetryPeriod))
	}
}

// leaderElectionJitterFactor is client-go's leaderelection.JitterFactor: the
// renew deadline must exceed the jittered retry period. It is copied rather
// than imported to keep client-go out of this package.
const leaderElectionJitterFactor = 1.2

// FieldError is one problem with one setting. Validate and CheckFiles
// join them, so that a caller can locate each problem with errors.As.
type FieldError struct {
	// Key is the setting's dotted key path, such as "prometheus.timeout".
	Key string
	// Err says what is wrong, with the offending value and what is allowed.
	Err error
}

// Error renders `key: problem`.
func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// validator accumulates problems so Validate can report all of them.
type validator struct {
	errs []error
}

func (v *validator) addf(key, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Key: key, Err: fmt.Errorf(format, args...)})
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.addf(key, "%q is not allowed: allowed values are %s", val, strings.Join(allowed, ", "))
	}
}

func (v *validator) durationRange(key string, d, lo, hi time.Duration) {
	if !inRange(d, lo, hi) {
		v.addf(key, "%q is out of range: allowed %s to %s", duration.Format(d), duration.Format(lo), duration.Format(hi))
	}
}

// positiveDuration checks 0 < d <= hi: a zero timeout or age would make the
// feature it bounds useless, so zero is rejected rather than meaning "off".
func (v *validator) positiveDuration(key string, d, hi time.Duration) {
	if d <= 0 || d > hi {
		v.addf(key, "%q is out of range: allowed more than 0s up to %s", duration.Format(d), duration.Format(hi))
	}
}

func (v *validator) intRange(key string, n, lo, hi int) {
	if !inRange(n, lo, hi) {
		v.addf(key, "%d is out of range: allowed %d to %d", n, lo, hi)
	}
}

func (v *validator) floatRange(key string, f, lo, hi float64) {
	if !inRange(f, lo, hi) {
		v.addf(key, "%s is out of range: allowed %s to %s", formatFloat(f), formatFloat(lo), formatFloat(hi))
	}
}

func (v *validator) dns1123Label(key, val string) {
	if msgs := validation.IsDNS1123Label(val); len(msgs) > 0 {
		v.addf(key, "%q is not a valid DNS-1123 label: %s", val, strings.Join(msgs, "; "))
	}
}

// bothOrNeither reports a pair of settings that only make sense together
// (a username without a password, a certificate without its key).
func (v *validator) bothOrNeither(keyA, valA, keyB, valB string) {
	switch {
	case valA != "" && valB == "":
		v.addf(keyB, "%q is empty but %s is %q: set both or neither", valB, keyA, valA)
	case valA == "" && valB != "":
		v.addf(keyA, "%q is empty but %s is %q: set both or neither", valA, keyB, valB)
	}
}

// inRange reports lo <= x <= hi. It is written so that NaN is out of range.
func inRange[T cmp.Ordered](x, lo, hi T) bool {
	return x >= lo && x <= hi
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Decode overlays m on a copy of base and returns the result; keys missing
// from m keep base's value, nested maps merge field by field. m is a generic
// tree such as YAML yields or viper.AllSettings returns.
//
// Keys match the json tags case-insensitively, because viper lower-cases
// them. Because environment variables and flags arrive as strings, input is
// weakly typed ("4" decodes into an int, "true" into a bool), durations
// parse from strings ("15s") and a comma-separated string fills a []string.
// Unknown keys are an error naming the key, so that a typo cannot silently
// fall back to a default.
//
// Decode does not validate; callers call Validate on the result.
func Decode(base Config, m map[string]any) (Config, error) {
	// Clone the reference-typed fields first: mapstructure writes into
	// existing slices and maps, which would otherwise mutate base.
	out := base.clone()
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "json",
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		Result: &out,
	})
	if err != nil {
		return Config{}, fmt.Errorf("create config decoder: %w", err)
	}
	if err := dec.Decode(m); err != nil {
		return Config{}, fmt.Errorf("decode config: %w", err)
	}
	return out, nil
}

// clone returns a deep copy of c.
func (c Config) clone() Config {
	c.Namespaces = slices.Clone(c.Namespaces)
	c.Activator.Addresses = slices.Clone(c.Activator.Addresses)
	c.Prometheus.Headers = maps.Clone(c.Prometheus.Headers)
	if c.Prometheus.Servers != nil {
		servers := make(map[string]Prometheus, len(c.Prometheus.Servers))
		for name, s := range c.Prometheus.Servers {
			s.Headers = maps.Clone(s.Headers)
			servers[name] = s
		}
		c.Prometheus.Servers = servers
	}
	return c
}

// Map flattens c into dotted key paths (e.g. "prometheus.timeout") mapped to
// their values. Durations are rendered as strings ("5s") so the values can be
// fed back through Decode; slices and maps are copied as is.
//
// Its purpose is to register every key as a viper default, since viper only
// resolves environment variables for keys it knows about. It is derived from
// the json tags by reflection so a new field can never be forgotten.
func (c Config) Map() map[string]any {
	out := make(map[string]any)
	flatten(out, "", reflect.ValueOf(c.clone()))
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

func flatten(out map[string]any, prefix string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := prefix + name
		fv := v.Field(i)
		switch {
		case fv.Type() == durationType:
			out[key] = duration.Format(time.Duration(fv.Int()))
		case fv.Kind() == reflect.Struct:
			flatten(out, key+".", fv)
		default:
			out[key] = fv.Interface()
		}
	}
}
