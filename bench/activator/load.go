package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newClient is a keep-alive HTTP/1.1 client with room for conns
// connections per host.
func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute, DisableCompression: true}}
}

// get sends one GET for host to base and reads the answer; it returns the
// status, or an error.
func get(ctx context.Context, c *http.Client, base, host, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// getBody is get that also returns the start of the body of an answer
// other than 200, which says why.
func getBody(ctx context.Context, c *http.Client, base, host, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode == http.StatusOK {
		body = nil
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// target is where a request goes: straight to a pod or through the
// activator, with the Host to send.
type target struct {
	name, base, host string
}

// latencies are one target's request durations.
type latencies struct {
	d      []time.Duration
	errors int
}

// quantile returns the q-quantile (nearest rank) of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// openLoop sends rate requests per second to each target, interleaved, for
// d (after warm of the same load, not counted), each on a schedule of its
// own rather than after the previous answer, so a slow answer does not
// hide the ones queued behind it. At most maxInFlight requests are
// outstanding; a request that would exceed it counts as an error.
func openLoop(ctx context.Context, c *http.Client, targets []target, rate int, warm, d time.Duration, maxInFlight int64) ([]latencies, error) {
	if rate <= 0 || d <= 0 {
		return nil, fmt.Errorf("rate %d and duration %s must be positive", rate, d)
	}
	out := make([]latencies, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var inFlight atomic.Int64
	total := int(float64(rate) * (warm + d).Seconds())
	warmN := int(float64(rate) * warm.Seconds())
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		for ti, t := range targets {
			counted := i >= warmN
			if inFlight.Load() >= maxInFlight {
				if counted {
					mu.Lock()
					out[ti].errors++
					mu.Unlock()
				}
				continue
			}
			inFlight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer inFlight.Add(-1)
				t0 := time.Now()
				status, err := get(ctx, c, t.base, t.host, "/lat")
				took := time.Since(t0)
				if !counted {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil || status != http.StatusOK {
					out[ti].errors++
					return
				}
				out[ti].d = append(out[ti].d, took)
			}()
		}
	}
	wg.Wait()
	for i := range out {
		slices.Sort(out[i].d)
	}
	return out, nil
}

// closedLoop runs workers that each send a request as soon as the previous
// one is answered, for d or limit requests, whichever comes first; it
// returns the requests answered 200 and the others.
func closedLoop(ctx context.Context, c *http.Client, t target, workers int, d time.Duration, limit int64) (ok, failed int64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var okN, failN, sent atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && sent.Add(1) <= limit {
				status, err := get(ctx, c, t.base, t.host, "/tp")
				switch {
				case ctx.Err() != nil:
				case err == nil && status == http.StatusOK:
					okN.Add(1)
				default:
					failN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return okN.Load(), failN.Load()
}
