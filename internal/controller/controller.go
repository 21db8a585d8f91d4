package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

// Options wires a Controller. Every field but Dynamic, Resources, Queries and APIs
// is required.
type Options struct {
	Config config.Config
	Logger *zap.Logger
	Client kubernetes.Interface
	// Dynamic reads SpinApps and KEDA ScaledObjects when their CRDs exist.
	Dynamic   dynamic.Interface
	Resources metrics.ResourceSource
	// Queries runs Prometheus queries; nil when no Prometheus is configured.
	Queries metrics.QuerySource
	// APIs reads custom.metrics.k8s.io and external.metrics.k8s.io; nil
	// fails every metric of those types.
	APIs metrics.APISource
	// HTTP is the activator source of HTTP metrics; nil when no activator
	// is configured. It runs while the controller leads.
	HTTP HTTPSource
	// Scaler carries out the decisions of apps that are not in dry-run.
	Scaler actuator.Actuator
	// Printer carries out the decisions of apps in dry-run, by the global
	// setting or their own annotation.
	Printer actuator.Actuator
	// Events records Events on Deployments; in a global dry run it is
	// replaced by one that records nothing.
	Events      *actuator.Events
	Instruments *Instruments
	Clock       clock.WithTicker
	// Identity names this replica in the leader election Lease.
	Identity string
}

// HTTPSource is the activator source (metrics.Activators).
type HTTPSource interface {
	// Run streams the activators until ctx ends.
	Run(ctx context.Context)
	// Observe returns an app's counts over one HTTP metric's windows.
	Observe(namespace, name string, h recommender.HTTPSpec, now time.Time) recommender.Observation
}

// Controller autoscales every opted-in Deployment.
type Controller struct {
	opts     Options
	cfg      config.Config
	log      *zap.Logger
	defaults annotations.Defaults
	clock    clock.WithTicker

	factories   []informers.SharedInformerFactory
	deployments []appslisters.DeploymentLister
	pods        []cache.Indexer
	conflicts   *conflictChecker
	synced      []cache.InformerSynced

	mu   sync.Mutex
	apps map[types.NamespacedName]*app

	// writes are the scale writes decided and not yet made (writes.go).
	writes *writeQueue

	// nudge asks the loop for a pass at once: a request waits for an app
	// with no ready pod (Wake).
	nudge chan struct{}

	ready    atomic.Bool
	leading  atomic.Bool
	lastTick atomic.Int64 // unix nanos of the last completed tick
	started  atomic.Int64 // unix nanos the loop started
}

// New builds the controller and its informers; nothing runs until Run.
func New(opts Options) (*Controller, error) {
	if opts.Client == nil || opts.Logger == nil || opts.Scaler == nil || opts.Printer == nil || opts.Events == nil ||
		opts.Instruments == nil || opts.Clock == nil {
		return nil, errors.New("controller: Client, Logger, Scaler, Printer, Events, Instruments and Clock are required")
	}
	cfg := opts.Config
	if cfg.DryRun {
		// A global dry run writes nothing at all: every app goes to the
		// Printer, Run takes no Lease, and Warnings are remembered (so that
		// they are logged once per change) but never recorded.
		opts.Events = &actuator.Events{}
	}
	c := &Controller{
		opts: opts, cfg: cfg, log: opts.Logger, clock: opts.Clock,
		defaults: cfg.AppDefaults(),
		apps:     map[types.NamespacedName]*app{},
		nudge:    make(chan struct{}, 1),
		writes:   newWriteQueue(opts.Instruments),
	}
	namespaces := cfg.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	for _, ns := range namespaces {
		// Deployments come from their own factory, narrowed by the
		// configured label selector; pods from another, narrowed by the
		// pod selector (all pods when it is empty).
		df := informers.NewSharedInformerFactoryWithOptions(opts.Client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = cfg.Selector }))
		deployments := df.Apps().V1().Deployments()
		if err := deployments.Informer().SetTransform(trimDeployment); err != nil {
			return nil, fmt.Errorf("deployment informer transform: %w", err)
		}
		pf := informers.NewSharedInformerFactoryWithOptions(opts.Client, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = cfg.PodSelector }))
		pods := pf.Core().V1().Pods().Informer()
		if err := pods.SetTransform(trimPod); err != nil {
			return nil, fmt.Errorf("pod informer transform: %w", err)
		}
		if err := pods.AddIndexers(cache.Indexers{labelIndex: podLabelKeys}); err != nil {
			return nil, fmt.Errorf("pod informer index: %w", err)
		}
		c.factories = append(c.factories, df, pf)
		c.deployments = append(c.deployments, deployments.Lister())
		c.pods = append(c.pods, pods.GetIndexer())
		c.synced = append(c.synced, deployments.Informer().HasSynced, pods.HasSynced)
	}
	var err error
	c.conflicts, err = newConflictChecker(opts.Client, opts.Dynamic, namespaces, c.log)
	if err != nil {
		return nil, err
	}
	c.synced = append(c.synced, c.conflicts.synced...)
	return c, nil
}

// Ready reports whether the caches have synced.
func (c *Controller) Ready() bool { return c.ready.Load() }

// Healthy is false when this replica leads (or runs alone) and no tick has
// completed for three intervals.
func (c *Controller) Healthy() error {
	if !c.leading.Load() {
		return nil
	}
	last := c.lastTick.Load()
	if last == 0 {
		last = c.started.Load()
	}
	if since := c.clock.Since(time.Unix(0, last)); since > 3*c.cfg.Interval {
		return fmt.Errorf("no tick completed for %s (interval %s)", since.Round(time.Second), c.cfg.Interval)
	}
	return nil
}

// Start runs the informers for as long as ctx lives and waits, at most
// syncTimeout, for their caches. The informers keep running after Start
// returns: only the wait is bounded.
func (c *Controller) Start(ctx context.Context, syncTimeout time.Duration) error {
	for _, f := range c.factories {
		f.Start(ctx.Done())
	}
	c.conflicts.start(ctx)
	waitCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(waitCtx.Done(), c.synced...) {
		return fmt.Errorf("wait for informer caches (%s): %w", syncTimeout, context.Cause(waitCtx))
	}
	c.ready.Store(true)
	c.log.Info("caches synced")
	return nil
}

// Once runs a single tick (after Start).
func (c *Controller) Once(ctx context.Context) {
	c.leading.Store(true)
	c.tick(ctx, c.clock.Now())
}

// Run ticks until ctx ends: directly in dry-run or without leader election,
// otherwise only while this replica holds the Lease. Standbys keep their
// caches warm and never write. It returns an error when leadership is lost
// while ctx is still live, so the process restarts as a clean standby.
func (c *Controller) Run(ctx context.Context) error {
	if c.cfg.DryRun || !c.cfg.LeaderElection.Enabled {
		c.opts.Instruments.Leader.Set(1)
		c.loop(ctx)
		return nil
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(c.cfg.LeaderElection.Namespace, c.cfg.LeaderElection.LeaseName),
		Client:     c.opts.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.opts.Identity},
	}
	lost := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   c.cfg.LeaderElection.LeaseDuration,
		RenewDeadline:   c.cfg.LeaderElection.RenewDeadline,
		RetryPeriod:     c.cfg.LeaderElection.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            "spinscale",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.log.Info("became leader", zap.String("identity", c.opts.Identity))
				c.opts.Instruments.Leader.Set(1)
				c.loop(ctx)
			},
			OnStoppedLeading: func() {
				c.opts.Instruments.Leader.Set(0)
				c.leading.Store(false)
				c.log.Info("stopped leading", zap.String("identity", c.opts.Identity))
				close(lost)
			},
			OnNewLeader: func(id string) {
				if id != c.opts.Identity {
					c.log.Info("standing by", zap.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	select {
	case <-lost:
		if ctx.Err() == nil {
			return errors.New("lost leadership")
		}
	default:
	}
	return nil
}

// loop ticks at once, then every poll (every interval when poll is 0): each
// tick decides for the apps that are due (schedule.go). A tick runs to
// completion (bounded by a deadline of one interval) before the next
// starts, so ticks never overlap; a late tick is recorded as lag.
func (c *Controller) loop(ctx context.Context) {
	c.started.Store(c.clock.Now().UnixNano())
	c.leading.Store(true)
	defer c.leading.Store(false)
	period := c.cfg.Poll
	if period <= 0 {
		period = c.cfg.Interval
	}
	ticker := c.clock.NewTicker(period)
	defer ticker.Stop()
	if c.opts.HTTP != nil {
		// Only the leader streams the activators, for as long as it leads.
		hctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.opts.HTTP.Run(hctx)
		}()
		defer func() { cancel(); <-done }()
	}
	// Scale writes are made beside the passes, for as long as the loop runs.
	defer c.runWriters(ctx)()
	scheduled := c.clock.Now()
	for {
		now := c.clock.Now()
		c.opts.Instruments.TickLag.Set(max(0, now.Sub(scheduled).Seconds()))
		tctx, cancel := context.WithTimeout(ctx, c.cfg.Interval)
		c.tick(tctx, now)
		cancel()
		select {
		case <-ctx.Done():
			return
		case scheduled = <-ticker.C():
		case <-c.nudge:
			// A wake: a pass now, for the woken apps (schedule.go).
			scheduled = c.clock.Now()
		}
	}
}

// Wake asks for a decision at once on app, when it is managed and has no
// ready pod: the activator holds a request for it. The activator source
// calls it on a wake report; it never blocks.
func (c *Controller) Wake(namespace, name string) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var d *appsv1.Deployment
	for _, l := range c.deployments {
		if got, err := l.Deployments(namespace).Get(name); err == nil {
			d = got
			break
		}
	}
	if d == nil || !annotations.Enabled(d.Annotations) || d.DeletionTimestamp != nil {
		return
	}
	if specReplicas(d) > 0 && d.Status.ReadyReplicas > 0 {
		return
	}
	a := c.appFor(key)
	a.mu.Lock()
	a.sched.woken = true
	a.mu.Unlock()
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}
