package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	promconfig "github.com/prometheus/common/config"

	"github.com/spinscale/spinscale/internal/config"
)

// newTransport builds the HTTP transport of the Prometheus source with
// prometheus/common's client: bearer token or basic auth read from their
// files on every request (a rotated Secret is used at once), TLS whose CA
// and client certificate are reloaded when their files change, extra
// headers. cfg must have passed Validate.
func newTransport(cfg config.Prometheus) (http.RoundTripper, error) {
	hc, opts := cfg.HTTPClient()
	rt, err := promconfig.NewRoundTripperFromConfig(hc, "prometheus", opts...)
	if err != nil {
		return nil, err
	}
	keys := fileKeys{next: rt, keys: map[string]string{}}
	for key, path := range map[string]string{
		"prometheus.bearerTokenFile":        cfg.BearerTokenFile,
		"prometheus.basicAuth.passwordFile": cfg.BasicAuth.PasswordFile,
		"prometheus.tls.caFile":             cfg.TLS.CAFile,
		"prometheus.tls.certFile":           cfg.TLS.CertFile,
		"prometheus.tls.keyFile":            cfg.TLS.KeyFile,
	} {
		if path != "" {
			keys.keys[path] = key
		}
	}
	return keys, nil
}

// fileKeys names the setting whose file a request could not read, so that
// the query's error says which key to fix: the client's own message names
// only the file.
type fileKeys struct {
	next http.RoundTripper
	// keys maps a file's path to the setting that names it.
	keys map[string]string
}

func (t fileKeys) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	var pathErr *fs.PathError
	if err != nil && errors.As(err, &pathErr) {
		if key, ok := t.keys[pathErr.Path]; ok {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return resp, err
}
