package metrics

import (
	"context"
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
func newTransport(cfg config.Prometheus, prefix string) (http.RoundTripper, error) {
	hc, opts := cfg.HTTPClient()
	rt, err := promconfig.NewRoundTripperFromConfig(hc, "prometheus", opts...)
	if err != nil {
		return nil, err
	}
	keys := fileKeys{next: rt, keys: map[string]string{}}
	for key, path := range map[string]string{
		prefix + ".bearerTokenFile":        cfg.BearerTokenFile,
		prefix + ".basicAuth.passwordFile": cfg.BasicAuth.PasswordFile,
		prefix + ".tls.caFile":             cfg.TLS.CAFile,
		prefix + ".tls.certFile":           cfg.TLS.CertFile,
		prefix + ".tls.keyFile":            cfg.TLS.KeyFile,
	} {
		if path != "" {
			keys.keys[path] = key
		}
	}
	return queryParams{next: keys}, nil
}

// paramsKey carries a query's extra parameters in its request's context.
type paramsKey struct{}

// withParams attaches extra query parameters (URL-encoded) to ctx.
func withParams(ctx context.Context, params string) context.Context {
	if params == "" {
		return ctx
	}
	return context.WithValue(ctx, paramsKey{}, params)
}

// queryParams adds a query's extra parameters (a metric's queryParameters,
// such as Thanos' dedup) to the request's URL: the Prometheus API reads
// parameters from the URL as well as from a POST body.
type queryParams struct{ next http.RoundTripper }

func (t queryParams) RoundTrip(req *http.Request) (*http.Response, error) {
	params, _ := req.Context().Value(paramsKey{}).(string)
	if params == "" {
		return t.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	if req.URL.RawQuery != "" {
		req.URL.RawQuery += "&"
	}
	req.URL.RawQuery += params
	return t.next.RoundTrip(req)
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
