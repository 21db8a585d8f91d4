// Package podserve gives kwok's fake pods a real HTTP server, for the
// activator's integration tests and bench on the local control plane.
//
// kwok gives each pod an address from 10.244.0.0/16 and marks it Running and
// Ready; the EndpointSlice controller publishes those addresses, and the
// activator rewrites each one to a loopback address before dialing
// (--endpoint-address-map 10.244.0.0/16=127.244.0.0/16). A Server watches the
// pods of one namespace and selector and, for each Running, Ready, not
// terminating pod, listens on the pod's mapped address and port (Linux routes
// all of 127.0.0.0/8 to lo, so any 127.x.y.z can be bound without setup). It
// stops listening when the pod stops being Ready or goes away.
//
// It must not import the activator or the controller: it stands for the
// pods they talk to.
package podserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// PodHeader names the pod that answered, on every response.
const PodHeader = "X-Pod-Name"

// AddressMap rewrites a pod address under one prefix to the same host bits
// under another of the same length, as the activator's
// --endpoint-address-map does.
type AddressMap struct{ from, to netip.Prefix }

// ParseAddressMap parses one FROM=TO rule of two IPv4 CIDRs of the same
// length, such as "10.244.0.0/16=127.244.0.0/16". TO must be in
// 127.0.0.0/8: a Server binds only loopback addresses.
func ParseAddressMap(s string) (AddressMap, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return AddressMap{}, fmt.Errorf("address map %q: want FROM=TO, two CIDRs of the same length (e.g. 10.244.0.0/16=127.244.0.0/16)", s)
	}
	f, err := netip.ParsePrefix(strings.TrimSpace(from))
	if err != nil {
		return AddressMap{}, fmt.Errorf("address map %q: %w", s, err)
	}
	t, err := netip.ParsePrefix(strings.TrimSpace(to))
	if err != nil {
		return AddressMap{}, fmt.Errorf("address map %q: %w", s, err)
	}
	switch {
	case !f.Addr().Is4() || !t.Addr().Is4():
		return AddressMap{}, fmt.Errorf("address map %q: both sides must be IPv4", s)
	case f.Bits() != t.Bits():
		return AddressMap{}, fmt.Errorf("address map %q: both sides must have the same prefix length (/%d and /%d)", s, f.Bits(), t.Bits())
	case !netip.MustParsePrefix("127.0.0.0/8").Contains(t.Addr()) || t.Bits() < 8:
		return AddressMap{}, fmt.Errorf("address map %q: %s is not inside the loopback range 127.0.0.0/8", s, t)
	}
	return AddressMap{from: f.Masked(), to: t.Masked()}, nil
}

// String is the rule as ParseAddressMap reads it.
func (m AddressMap) String() string { return m.from.String() + "=" + m.to.String() }

// Map returns ip rewritten, or false when ip is not under the rule's FROM.
func (m AddressMap) Map(ip string) (string, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !m.from.IsValid() || !m.from.Contains(a.Unmap()) {
		return "", false
	}
	src, dst := a.Unmap().As4(), m.to.Addr().As4()
	host := ^uint32(0) >> m.from.Bits()
	if m.from.Bits() == 0 {
		host = ^uint32(0)
	}
	v := be(dst)&^host | be(src)&host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String(), true
}

func be(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Config says which pods to serve and how.
type Config struct {
	// Namespace and Selector (a label selector; empty: every pod) choose
	// the pods.
	Namespace string
	Selector  string
	// Map rewrites each pod address to the loopback address to bind.
	Map AddressMap
	// Port is the port to listen on; 0 takes the pod's container port
	// named "http".
	Port int32
	// Latency is how long each request takes before it is answered; it
	// can be changed later with SetLatency.
	Latency time.Duration
	// Log receives the binds, closes and failures; nil logs nothing.
	Log *zap.Logger
}

// Pod is one pod being served.
type Pod struct {
	Name string
	// IP is the pod's address; Addr the loopback host:port served for it.
	IP, Addr string
	// ReadyAt is when the Server saw the pod Running and Ready; it listened
	// right after.
	ReadyAt time.Time
	// Served counts the requests this pod answered.
	Served int64
}

// Server serves the pods' HTTP. Run it once.
type Server struct {
	client   kubernetes.Interface
	cfg      Config
	log      *zap.Logger
	selector labels.Selector
	latency  atomic.Int64

	served   atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64

	mu   sync.Mutex
	pods map[string]*backend // by pod name
	// waiting are servable pods whose address was still held by another
	// pod's listener, by name, with the address; they are served once it
	// closes.
	waiting map[string]waitingPod
	changed chan struct{} // closed and replaced on every change of pods
	closed  bool
}

type waitingPod struct {
	pod  *corev1.Pod
	addr string
}

type backend struct {
	pod    Pod
	ln     net.Listener
	srv    *http.Server
	served atomic.Int64
}

// New checks cfg and returns a Server for it.
func New(client kubernetes.Interface, cfg Config) (*Server, error) {
	if client == nil {
		return nil, errors.New("podserve: no client")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("podserve: no namespace")
	}
	if !cfg.Map.from.IsValid() {
		return nil, errors.New("podserve: no address map")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("podserve: port %d is not 0 to 65535", cfg.Port)
	}
	sel, err := labels.Parse(cfg.Selector)
	if err != nil {
		return nil, fmt.Errorf("podserve: selector %q: %w", cfg.Selector, err)
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{client: client, cfg: cfg, selector: sel, log: log.With(zap.String("namespace", cfg.Namespace)),
		pods: map[string]*backend{}, waiting: map[string]waitingPod{}, changed: make(chan struct{})}
	s.latency.Store(int64(cfg.Latency))
	return s, nil
}

// SetLatency changes how long each request takes from now on.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// Served is the number of requests answered, over all pods.
func (s *Server) Served() int64 { return s.served.Load() }

// MaxInFlight is the most requests that were being answered at once, over
// all pods.
func (s *Server) MaxInFlight() int64 { return s.maxIn.Load() }

// Pods returns the pods being served, by name.
func (s *Server) Pods() []Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Pod, 0, len(s.pods))
	for _, b := range s.pods {
		p := b.pod
		p.Served = b.served.Load()
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WaitFor returns once cond holds for the pods being served, or ctx's error.
func (s *Server) WaitFor(ctx context.Context, cond func([]Pod) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		pods := s.Pods()
		if cond(pods) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for served pods (now %d): %w", len(pods), ctx.Err())
		case <-ch:
		}
	}
}

// Run watches the pods and serves them until ctx ends, then closes every
// listener and returns nil. It returns an error only when the watch cannot
// start.
func (s *Server) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 0,
		informers.WithNamespace(s.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = s.selector.String() }))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.sync(obj, false) },
		UpdateFunc: func(_, obj any) { s.sync(obj, false) },
		DeleteFunc: func(obj any) { s.sync(obj, true) },
	}); err != nil {
		return fmt.Errorf("podserve: watch pods of %s: %w", s.cfg.Namespace, err)
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	s.mu.Lock()
	s.closed = true
	for name := range s.pods {
		s.stopLocked(name)
	}
	s.mu.Unlock()
	return nil
}

// sync brings one pod's server in line with the pod.
func (s *Server) sync(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	addr, serve := s.address(pod)
	serve = serve && !deleted
	delete(s.waiting, pod.Name)
	cur := s.pods[pod.Name]
	if cur != nil && (!serve || cur.pod.Addr != addr) {
		s.stopLocked(pod.Name)
		cur = nil
	}
	if serve && cur == nil {
		s.startLocked(pod, addr)
	}
}

// address is the loopback host:port to serve pod on, and whether it should
// be served now.
func (s *Server) address(pod *corev1.Pod) (string, bool) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning || !ready(pod) || pod.Status.PodIP == "" {
		return "", false
	}
	ip, ok := s.cfg.Map.Map(pod.Status.PodIP)
	if !ok {
		s.log.Warn("pod address outside the address map", zap.String("pod", pod.Name),
			zap.String("podIP", pod.Status.PodIP), zap.Stringer("map", s.cfg.Map))
		return "", false
	}
	port := s.cfg.Port
	if port == 0 {
		port = namedPort(pod, "http")
	}
	if port == 0 {
		s.log.Warn("pod has no container port named http and no port is configured", zap.String("pod", pod.Name))
		return "", false
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(port))), true
}

func ready(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func namedPort(pod *corev1.Pod, name string) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	return 0
}

// startLocked listens for pod on addr. s.mu is held.
func (s *Server) startLocked(pod *corev1.Pod, addr string) {
	readyAt := time.Now()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// The pod that held the address before may not have been seen
		// to go yet: retry when a listener closes.
		s.waiting[pod.Name] = waitingPod{pod: pod, addr: addr}
		s.log.Info("address busy; waiting for it", zap.String("pod", pod.Name), zap.String("addr", addr), zap.Error(err))
		return
	}
	b := &backend{pod: Pod{Name: pod.Name, IP: pod.Status.PodIP, Addr: addr, ReadyAt: readyAt}, ln: ln}
	b.srv = &http.Server{Handler: s.handler(b), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	s.pods[pod.Name] = b
	s.notifyLocked()
	s.log.Debug("serving pod", zap.String("pod", pod.Name), zap.String("addr", addr))
}

// stopLocked stops listening for a pod at once, so its address is free
// for another pod, and lets the requests it is answering finish. s.mu is
// held.
func (s *Server) stopLocked(name string) {
	b := s.pods[name]
	if b == nil {
		return
	}
	delete(s.pods, name)
	_ = b.ln.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.srv.Shutdown(ctx)
	}()
	s.notifyLocked()
	s.log.Debug("stopped serving pod", zap.String("pod", name), zap.String("addr", b.pod.Addr))
	if s.closed {
		return
	}
	var next []waitingPod
	for wname, w := range s.waiting {
		if w.addr == b.pod.Addr {
			delete(s.waiting, wname)
			next = append(next, w)
		}
	}
	for _, w := range next {
		s.startLocked(w.pod, w.addr)
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// handler answers after the latency with the pod's name.
func (s *Server) handler(b *backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxIn.Load()
			if n <= m || s.maxIn.CompareAndSwap(m, n) {
				break
			}
		}
		if d := time.Duration(s.latency.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		b.served.Add(1)
		s.served.Add(1)
		w.Header().Set(PodHeader, b.pod.Name)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = fmt.Fprintf(w, "%s %s\n", b.pod.Name, r.URL.Path)
	})
}
