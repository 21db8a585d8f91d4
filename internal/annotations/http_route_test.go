package annotations

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRoute(t *testing.T) {
	routed := func(kv ...string) map[string]string {
		ann := map[string]string{KeyEnabled: "true"}
		for i := 0; i+1 < len(kv); i += 2 {
			ann[kv[i]] = kv[i+1]
		}
		return ann
	}
	tests := []struct {
		name   string
		ann    map[string]string
		want   Route
		routed bool
		errs   []string // substrings, one per expected field error
	}{
		{name: "not enabled", ann: map[string]string{KeyHTTPHosts: "a.example.com"}},
		{name: "enabled false", ann: map[string]string{KeyEnabled: "false", KeyHTTPHosts: "a.example.com"}},
		{name: "no hosts", ann: routed(KeyHTTPPort, "8080")},
		{
			name: "defaults", ann: routed(KeyHTTPHosts, "Shop.Example.com"), routed: true,
			want: Route{Hosts: []string{"shop.example.com"}, PathPrefix: "/", Service: "web"},
		},
		{
			name: "every key",
			ann: routed(KeyHTTPHosts, " a.example.com, b.example.com ,a.example.com", KeyHTTPPathPrefix, "/api",
				KeyHTTPService, "web-svc", KeyHTTPPort, "http", KeyHTTPQueueSize, "50", KeyHTTPQueueTimeout, "2m"),
			routed: true,
			want: Route{Hosts: []string{"a.example.com", "b.example.com"}, PathPrefix: "/api", Service: "web-svc",
				Port: "http", QueueSize: 50, QueueTimeout: 2 * time.Minute},
		},
		{name: "numeric port", ann: routed(KeyHTTPHosts, "a", KeyHTTPPort, "3000"), routed: true,
			want: Route{Hosts: []string{"a"}, PathPrefix: "/", Service: "web", Port: "3000"}},
		{name: "host with a port", ann: routed(KeyHTTPHosts, "a.example.com:8080"),
			errs: []string{`spinscale.dev/http-hosts: "a.example.com:8080": a host name takes no port`}},
		{name: "bad host", ann: routed(KeyHTTPHosts, "a_b.example.com"),
			errs: []string{`spinscale.dev/http-hosts: "a_b.example.com": is not a host name`}},
		{name: "empty host entry", ann: routed(KeyHTTPHosts, "a,,b"),
			errs: []string{`spinscale.dev/http-hosts: "a,,b": must be comma-separated host names`}},
		{name: "empty hosts", ann: routed(KeyHTTPHosts, ""),
			errs: []string{`spinscale.dev/http-hosts: "": must be comma-separated`}},
		{name: "prefix without slash", ann: routed(KeyHTTPHosts, "a", KeyHTTPPathPrefix, "api"),
			errs: []string{`spinscale.dev/http-path-prefix: "api": must be a path starting with "/"`}},
		{name: "prefix with query", ann: routed(KeyHTTPHosts, "a", KeyHTTPPathPrefix, "/a?b"),
			errs: []string{`spinscale.dev/http-path-prefix: "/a?b": must be a path without a query`}},
		{name: "bad service", ann: routed(KeyHTTPHosts, "a", KeyHTTPService, "Web.Svc"),
			errs: []string{`spinscale.dev/http-service: "Web.Svc": must be a Service name`}},
		{name: "port out of range", ann: routed(KeyHTTPHosts, "a", KeyHTTPPort, "70000"),
			errs: []string{`spinscale.dev/http-port: "70000": must be a port number 1 to 65535`}},
		{name: "port zero", ann: routed(KeyHTTPHosts, "a", KeyHTTPPort, "0"),
			errs: []string{`spinscale.dev/http-port: "0": must be a port number`}},
		{name: "bad port name", ann: routed(KeyHTTPHosts, "a", KeyHTTPPort, "not_a-port-name"),
			errs: []string{`spinscale.dev/http-port: "not_a-port-name": must be a port number 1 to 65535 or a port name`}},
		{name: "queue size", ann: routed(KeyHTTPHosts, "a", KeyHTTPQueueSize, "0"),
			errs: []string{`spinscale.dev/http-queue-size: "0": must be an integer 1 to 100000`}},
		{name: "queue size too big", ann: routed(KeyHTTPHosts, "a", KeyHTTPQueueSize, "100001"),
			errs: []string{`spinscale.dev/http-queue-size: "100001"`}},
		{name: "queue timeout short", ann: routed(KeyHTTPHosts, "a", KeyHTTPQueueTimeout, "500ms"),
			errs: []string{`spinscale.dev/http-queue-timeout: "500ms": must be a Go duration 1s to 10m`}},
		{name: "queue timeout garbage", ann: routed(KeyHTTPHosts, "a", KeyHTTPQueueTimeout, "soon"),
			errs: []string{`spinscale.dev/http-queue-timeout: "soon"`}},
		{name: "every problem at once", ann: routed(KeyHTTPHosts, "a:1", KeyHTTPPort, "0", KeyHTTPQueueSize, "x"),
			errs: []string{"http-hosts", "http-port", "http-queue-size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseRoute(tt.ann, "web")
			if len(tt.errs) > 0 {
				require.Error(t, err)
				assert.False(t, ok)
				var e *Error
				require.True(t, errors.As(err, &e))
				require.Len(t, e.Fields, len(tt.errs), err.Error())
				for i, want := range tt.errs {
					assert.Contains(t, e.Fields[i].Error(), want)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.routed, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}
