package activator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/endpoints"
	"github.com/spinscale/spinscale/internal/httpstats"
)

// Table maps hosts and path prefixes to apps, and keeps each app's ready
// backends from its EndpointSlices. Lookups read an immutable snapshot and
// take no lock.
type Table struct {
	log     *zap.Logger
	now     func() time.Time
	addrMap AddressMap
	// slices lists the EndpointSlices of a Service (the informer's index).
	slices func(namespace, service string) []*discoveryv1.EndpointSlice
	// onRemove is called when an app stops being routed.
	onRemove func(*app)
	// changed is called after each change (tests).
	changed func()

	mu        sync.Mutex
	apps      map[httpstats.App]*app
	invalid   map[httpstats.App]invalidRoute
	conflicts map[string]bool // "host path loser" already logged
	snap      atomic.Pointer[routing]
}

// invalidRoute is a Deployment whose routing annotations do not parse.
type invalidRoute struct {
	hosts []string // what could be read of http-hosts
	err   string
}

// routing is one snapshot of the table.
type routing struct {
	// hosts lists each host's apps, the longest path prefix first.
	hosts map[string][]entry
	// invalid maps a host to the app whose invalid annotations claim it.
	invalid map[string]httpstats.App
	// byService lists the apps of each namespace/Service.
	byService map[string][]*app
}

// entry is one app on one host.
type entry struct {
	prefix string
	app    *app
}

// NewTable returns an empty table. slices lists a Service's EndpointSlices.
func NewTable(log *zap.Logger, now func() time.Time, addrMap AddressMap, slices func(namespace, service string) []*discoveryv1.EndpointSlice) *Table {
	t := &Table{
		log: log, now: now, addrMap: addrMap, slices: slices, onRemove: func(*app) {}, changed: func() {},
		apps: map[httpstats.App]*app{}, invalid: map[httpstats.App]invalidRoute{}, conflicts: map[string]bool{},
	}
	t.snap.Store(&routing{})
	return t
}

// SetDeployment adds, updates or removes the app of a Deployment after a
// change.
func (t *Table) SetDeployment(d *appsv1.Deployment) {
	key := httpstats.App{Namespace: d.Namespace, Name: d.Name}
	route, routed, err := annotations.ParseRoute(d.Annotations, d.Name)
	defer t.changed()
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		inv := invalidRoute{hosts: roughHosts(d.Annotations[annotations.KeyHTTPHosts]), err: err.Error()}
		if prev, ok := t.invalid[key]; !ok || prev.err != inv.err {
			t.log.Warn("app not routed: invalid routing annotations",
				zap.String("namespace", key.Namespace), zap.String("deployment", key.Name), zap.Error(err))
		}
		t.invalid[key] = inv
		t.removeLocked(key)
		t.rebuildLocked()
		return
	}
	delete(t.invalid, key)
	if !routed {
		t.removeLocked(key)
		t.rebuildLocked()
		return
	}
	a := t.apps[key]
	if a == nil {
		a = newApp(key, t.now())
		t.apps[key] = a
		t.log.Info("app routed", zap.String("namespace", key.Namespace), zap.String("deployment", key.Name),
			zap.Strings("hosts", route.Hosts), zap.String("pathPrefix", route.PathPrefix), zap.String("service", route.Service))
	}
	a.created = d.CreationTimestamp.Time
	a.setRoute(route)
	t.rebuildLocked()
	t.refresh(a)
}

// DeleteDeployment removes the app of a deleted Deployment.
func (t *Table) DeleteDeployment(namespace, name string) {
	key := httpstats.App{Namespace: namespace, Name: name}
	defer t.changed()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.invalid, key)
	t.removeLocked(key)
	t.rebuildLocked()
}

// SyncService refreshes the ready backends of the apps served by a
// Service after a change of its EndpointSlices.
func (t *Table) SyncService(namespace, service string) {
	for _, a := range t.snap.Load().byService[namespace+"/"+service] {
		t.refresh(a)
	}
	t.changed()
}

func (t *Table) removeLocked(key httpstats.App) {
	a := t.apps[key]
	if a == nil {
		return
	}
	delete(t.apps, key)
	a.remove()
	t.onRemove(a)
	t.log.Info("app no longer routed", zap.String("namespace", key.Namespace), zap.String("deployment", key.Name))
}

// rebuildLocked builds a new snapshot. Two apps claiming one host and path
// prefix: the older Deployment wins and the other is logged once.
func (t *Table) rebuildLocked() {
	r := &routing{hosts: map[string][]entry{}, invalid: map[string]httpstats.App{}, byService: map[string][]*app{}}
	apps := make([]*app, 0, len(t.apps))
	for _, a := range t.apps {
		apps = append(apps, a)
	}
	slices.SortFunc(apps, func(x, y *app) int {
		if c := x.created.Compare(y.created); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(x.key.Namespace, y.key.Namespace), cmp.Compare(x.key.Name, y.key.Name))
	})
	claimed := map[string]*app{} // host + " " + prefix → winner
	conflicts := map[string]bool{}
	for _, a := range apps {
		route := a.getRoute()
		svc := a.key.Namespace + "/" + route.Service
		r.byService[svc] = append(r.byService[svc], a)
		for _, h := range route.Hosts {
			k := h + " " + route.PathPrefix
			if w := claimed[k]; w != nil {
				c := k + " " + a.key.String()
				conflicts[c] = true
				if !t.conflicts[c] {
					t.log.Warn("app not routed on a host and path another app claims first (the older Deployment wins)",
						zap.String("namespace", a.key.Namespace), zap.String("deployment", a.key.Name),
						zap.String("host", h), zap.String("pathPrefix", route.PathPrefix), zap.String("routedTo", w.key.String()))
				}
				continue
			}
			claimed[k] = a
			r.hosts[h] = append(r.hosts[h], entry{prefix: route.PathPrefix, app: a})
		}
	}
	t.conflicts = conflicts
	for h, as := range r.hosts {
		slices.SortStableFunc(as, func(x, y entry) int { return cmp.Compare(len(y.prefix), len(x.prefix)) })
		r.hosts[h] = as
	}
	for key, inv := range t.invalid {
		for _, h := range inv.hosts {
			r.invalid[h] = key
		}
	}
	t.snap.Store(r)
}

// refresh recomputes an app's ready backends from its EndpointSlices.
func (t *Table) refresh(a *app) {
	route := a.getRoute()
	addrs := readyAddresses(t.slices(a.key.Namespace, route.Service), route.Port, t.addrMap)
	before, after := a.setBackends(addrs)
	if (before == 0) != (after == 0) {
		t.log.Info("ready endpoints changed", zap.String("namespace", a.key.Namespace), zap.String("deployment", a.key.Name),
			zap.Int("before", before), zap.Int("after", after))
	}
}

// lookup finds the app serving host and path: the longest path prefix
// among the host's apps. When none does, hint says why.
func (t *Table) lookup(host, path string) (*app, string) {
	r := t.snap.Load()
	for _, e := range r.hosts[host] {
		if matchPrefix(e.prefix, path) {
			return e.app, ""
		}
	}
	if key, ok := r.invalid[host]; ok {
		return nil, fmt.Sprintf("the app %s claims this host but its %shttp-* annotations are invalid (see the activator's log)", key, annotations.Prefix)
	}
	if len(r.hosts[host]) > 0 {
		return nil, "no app of this host serves this path"
	}
	return nil, ""
}

// matchPrefix reports whether path is under prefix, element by element
// as an Ingress's Prefix path: "/api" matches "/api" and "/api/x", not
// "/apix".
func matchPrefix(prefix, path string) bool {
	if prefix == "/" || path == prefix {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// apps returns the routed apps.
func (t *Table) appList() []*app {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*app, 0, len(t.apps))
	for _, a := range t.apps {
		out = append(out, a)
	}
	return out
}

// roughHosts reads what it can of an invalid http-hosts value, for the
// 404 hint.
func roughHosts(v string) []string {
	var out []string
	for _, h := range strings.Split(v, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if i := strings.IndexByte(h, ':'); i >= 0 {
			h = h[:i]
		}
		if h != "" {
			out = append(out, h)
		}
	}
	return out
}

// readyAddresses lists the host:port of the ready endpoints (package
// endpoints), mapped by m. port is the route's http-port: a number is
// dialed as is, a name picks the slice port of that name; empty picks the
// slice's only port, else the one named "http".
func readyAddresses(eps []*discoveryv1.EndpointSlice, port string, m AddressMap) []string {
	return endpoints.Ready(eps, port, "http", m.Map)
}
