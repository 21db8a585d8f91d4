package controller

import (
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/spinscale/spinscale/internal/recommender"
)

// When an app is decided on.
//
// The loop runs every `poll` (every `interval` when poll is 0) and reads the
// metric sources for the apps that may be decided on: one metrics.k8s.io
// LIST per namespace group and each distinct PromQL query once, however
// many apps there are. An app is then decided on when
//   - its interval is due: the hpa profile keeps HPA's fixed sync, one
//     decision every interval from its first; the spinscale profile decides
//     at least once an interval;
//   - its annotations changed since its last decision (an edit is acted on
//     at once, as HPA does when its own spec changes);
//   - an activator holds a request for it while it has no ready pod (a
//     wake): the loop runs a pass at once rather than at its next poll;
//   - it reacts to fresh data (the spinscale profile) and one of its metrics
//     has a sample its last decision did not use.
//
// Stabilization windows, rate policies and the engine's history are kept in
// seconds, so deciding more often changes none of their meanings.

// schedule is one app's decision clock.
type schedule struct {
	// last is when the app was last decided on; zero before the first.
	last time.Time
	// next is when its interval is next due.
	next time.Time
	// seen fingerprints the metric data the last decision used.
	seen uint64
	// edited is set when the annotations changed since the last decision.
	edited bool
	// woken is set when an activator holds a request for the app while it
	// has no ready pod (Controller.Wake).
	woken bool
}

// due reports whether the interval asks for a decision at now, or an edit
// does. Fresh data is checked separately, once the data is read.
func (s *schedule) due(now time.Time) bool {
	return s.last.IsZero() || s.edited || s.woken || !now.Before(s.next)
}

// decided records a decision at now on data with the given fingerprint.
func (s *schedule) decided(now time.Time, interval time.Duration, fixed bool, fingerprint uint64) {
	switch {
	case s.last.IsZero() || !fixed:
		s.next = now.Add(interval)
	default:
		// A fixed sync keeps its phase: a decision that came late does not
		// push the next one back.
		for !s.next.After(now) {
			s.next = s.next.Add(interval)
		}
	}
	s.last, s.seen, s.edited, s.woken = now, fingerprint, false, false
}

// fingerprint summarises what the metric sources returned for an app, so
// that a change means new data: a sample's pod and value, a single value's
// value, and whether a metric failed (a failure that persists is not new
// data). A metrics.k8s.io sample also counts with its timestamp, since
// metrics-server stamps each scrape; a Prometheus result is stamped with
// the query's own time, which changes on every query, so its timestamps are
// left out. metrics[i] is the spec of obs[i]. Per-pod samples are combined
// independently of their order.
func fingerprint(metrics []recommender.MetricSpec, obs []recommender.Observation) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	word := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		_, _ = h.Write(buf[:])
	}
	for i := range obs {
		o := &obs[i]
		stamped := i < len(metrics) && metrics[i].Source == recommender.SourceResource
		switch {
		case o.Err != nil:
			word(1)
		case o.PerPod:
			word(2)
			var sum uint64
			for _, s := range o.Samples {
				ph := fnv.New64a()
				_, _ = ph.Write([]byte(s.Pod))
				binary.LittleEndian.PutUint64(buf[:], uint64(s.Value))
				_, _ = ph.Write(buf[:])
				if stamped {
					binary.LittleEndian.PutUint64(buf[:], uint64(s.Timestamp.UnixNano()))
					_, _ = ph.Write(buf[:])
				}
				sum += ph.Sum64()
			}
			word(sum)
			word(uint64(len(o.Samples)))
		case o.HTTP != nil:
			// Each second the activators count is new data.
			word(4)
			word(uint64(o.HTTP.Latest.Unix()))
			word(uint64(o.HTTP.PanicHeld))
		default:
			word(3)
			word(uint64(o.Value))
		}
	}
	return h.Sum64()
}
