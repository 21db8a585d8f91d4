package annotations

import (
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spinscale/spinscale/internal/duration"
)

// This file parses the routing keys the activator (autoscaler activator)
// reads: which requests go to an app, where its pods listen, and how many
// requests wait for it while it has no ready pod.

// Bounds of the routing keys.
const (
	MaxHTTPQueueSize    = 100000
	MinHTTPQueueTimeout = time.Second
	MaxHTTPQueueTimeout = 10 * time.Minute
)

// Route is how the activator routes to one app.
type Route struct {
	// Hosts are the lower-cased host names, without a port.
	Hosts []string
	// PathPrefix is the path prefix requests must start with; "/" by default.
	PathPrefix string
	// Service names the Service whose EndpointSlices list the app's pods.
	Service string
	// Port is the EndpointSlice port to forward to, by name or number;
	// empty picks the slice's only port, else the one named "http".
	Port string
	// QueueSize is the number of requests held while the app has no ready
	// pod; 0 means the activator's default.
	QueueSize int
	// QueueTimeout is how long a held request waits; 0 means the
	// activator's default.
	QueueTimeout time.Duration
}

// ParseRoute parses the routing keys of the Deployment named deployment.
// routed is false, with no error, when the app is not enabled or sets no
// http-hosts. Every problem is returned at once as an *Error; a Deployment
// with an error is not routed.
func ParseRoute(ann map[string]string, deployment string) (route Route, routed bool, err error) {
	if !Enabled(ann) {
		return Route{}, false, nil
	}
	p := &parser{ann: ann}
	hosts, ok := p.get(KeyHTTPHosts)
	if !ok {
		return Route{}, false, nil
	}
	route = Route{PathPrefix: "/", Service: deployment}
	route.Hosts = p.hosts(hosts)

	if v, ok := p.get(KeyHTTPPathPrefix); ok {
		switch {
		case !strings.HasPrefix(v, "/"):
			p.fail(KeyHTTPPathPrefix, "must be a path starting with \"/\" (e.g. /api)")
		case strings.ContainsAny(v, "?# \t"):
			p.fail(KeyHTTPPathPrefix, "must be a path without a query, a fragment or spaces")
		default:
			route.PathPrefix = v
		}
	}
	if v, ok := p.get(KeyHTTPService); ok {
		if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
			p.fail(KeyHTTPService, "must be a Service name in the app's namespace (a DNS-1123 label): %s", strings.Join(errs, "; "))
		} else {
			route.Service = v
		}
	}
	if v, ok := p.get(KeyHTTPPort); ok {
		if n, err := strconv.Atoi(v); err == nil {
			if n < 1 || n > 65535 {
				p.fail(KeyHTTPPort, "must be a port number 1 to 65535 or a port name")
			} else {
				route.Port = v
			}
		} else if errs := validation.IsValidPortName(v); len(errs) > 0 {
			p.fail(KeyHTTPPort, "must be a port number 1 to 65535 or a port name (an IANA service name): %s", strings.Join(errs, "; "))
		} else {
			route.Port = v
		}
	}
	if v, ok := p.get(KeyHTTPQueueSize); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHTTPQueueSize {
			p.fail(KeyHTTPQueueSize, "must be an integer 1 to %d", MaxHTTPQueueSize)
		} else {
			route.QueueSize = n
		}
	}
	if v, ok := p.get(KeyHTTPQueueTimeout); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinHTTPQueueTimeout || d > MaxHTTPQueueTimeout {
			p.fail(KeyHTTPQueueTimeout, "must be a Go duration %s to %s (e.g. 30s)", duration.Format(MinHTTPQueueTimeout), duration.Format(MaxHTTPQueueTimeout))
		} else {
			route.QueueTimeout = d
		}
	}
	if len(p.errs) > 0 {
		return Route{}, false, &Error{Fields: p.errs}
	}
	return route, true, nil
}

// hosts parses http-hosts: comma-separated DNS names, lower-cased,
// without duplicates. A port is refused: the activator routes by host name
// whatever port the request came in on.
func (p *parser) hosts(v string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range strings.Split(v, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
			p.failAt(KeyHTTPHosts, "", v, "must be comma-separated host names, with no empty entry (e.g. shop.example.com,www.shop.example.com)")
			return nil
		case strings.Contains(h, ":"):
			p.failAt(KeyHTTPHosts, "", h, "a host name takes no port (the activator routes by name whatever the port): write %q", h[:strings.Index(h, ":")])
			continue
		}
		if errs := validation.IsDNS1123Subdomain(h); len(errs) > 0 {
			p.failAt(KeyHTTPHosts, "", h, "is not a host name (a DNS subdomain): %s", strings.Join(errs, "; "))
			continue
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}
