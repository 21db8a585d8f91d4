package activator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Serve serves the proxy on proxyLn (HTTP/1.1 and HTTP/2 without TLS,
// h2c with prior knowledge) and the admin endpoints on adminLn, and
// publishes a stats tick each second, until ctx ends. Then it drains:
// /readyz turns false, the proxy stops accepting, and the requests in
// flight or held get up to drainTimeout to finish before they are cut. The
// stats streams end after a last tick.
func (x *Activator) Serve(ctx context.Context, proxyLn, adminLn net.Listener, drainTimeout time.Duration) error {
	baseCtx, cut := context.WithCancel(context.WithoutCancel(ctx))
	defer cut()
	x.baseCtx.Store(&baseCtx)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	proxySrv := &http.Server{
		Handler:           x,
		ReadHeaderTimeout: x.clientHeader,
		IdleTimeout:       x.clientIdle,
		Protocols:         &protocols,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          zap.NewStdLog(x.log.Named("http")),
	}
	adminSrv := &http.Server{Handler: x.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}

	// The frontend takes the proxy's connections and hands to proxySrv
	// those its fast loop does not serve (fast.go).
	fe := newFrontend(x, proxyLn)
	fe.srv = proxySrv
	errs := make(chan error, 3)
	go func() { errs <- fe.serve() }()
	go func() { errs <- serveOn(proxySrv, fe.handoff, "proxy") }()
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go fe.watch(stopWatch)
	go func() { errs <- serveOn(adminSrv, adminLn, "admin") }()
	ticksCtx, stopTicks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTicks()
	go x.runTicks(ticksCtx)
	x.log.Info("activator serving", zap.String("proxy", proxyLn.Addr().String()), zap.String("admin", adminLn.Addr().String()))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	x.draining.Store(true)
	if x.onDrain != nil {
		x.onDrain()
	}
	x.log.Info("draining", zap.Duration("drainTimeout", drainTimeout), zap.Int64("inFlight", x.active.load()))
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if !fe.shutdown(drainCtx) {
		x.log.Warn("proxy shutdown: keep-alive connections still busy at the drain timeout")
	}
	if serr := proxySrv.Shutdown(drainCtx); serr != nil {
		x.log.Warn("proxy shutdown", zap.Error(serr))
	}
	// Shutdown does not wait for upgraded connections: the count does.
	if werr := x.active.wait(drainCtx); werr != nil {
		x.log.Warn("drain timed out: cutting the remaining requests", zap.Error(werr))
		cut()
		fe.cut()
		_ = proxySrv.Close()
	} else {
		x.log.Info("drained")
	}
	stopTicks()
	x.tick(x.clock.Now())
	x.closeOnce.Do(func() { close(x.streamsDone) })
	adminCtx, cancelAdmin := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelAdmin()
	_ = adminSrv.Shutdown(adminCtx)
	return err
}

func serveOn(srv *http.Server, ln net.Listener, name string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s on %s: %w", name, ln.Addr(), err)
	}
	return nil
}
