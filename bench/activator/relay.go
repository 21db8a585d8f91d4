package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// The floor of part a. Any proxy in its own process adds at least the
// cost of one more process on the path: two more wake-ups and two more
// loopback hops per request. The relay is the least a proxy can be: it
// copies bytes between the client's connection and one of its own to the
// pod, a goroutine each way, and parses nothing. It runs in its own
// process (this binary, re-run with -relay-listen), and part a measures it
// as it measures the activator.

// runRelay relays each connection accepted on listen to a new connection
// to the pod at to, until SIGTERM or SIGINT.
func runRelay(listen, to string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("relay: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			relayConn(ctx, c, to)
		}()
	}
}

// relayConn copies between c and a new connection to the pod until both
// directions end or ctx ends.
func relayConn(ctx context.Context, c net.Conn, to string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay: dial:", err)
		return
	}
	defer u.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close(); _ = u.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(u, c)
		_ = u.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, u)
	_ = c.(*net.TCPConn).CloseWrite()
	<-done
}
