// Package httpstats is the wire format between the activator (autoscaler
// activator) and the controller: per-app HTTP counts, one report each second
// and one at once when a request arrives for an app with no ready pod.
//
// The controller's leader opens GET StreamPath on every activator replica and
// reads newline-delimited JSON Reports until it loses leadership or the
// stream ends. Activators never need to know which controller replica leads.
package httpstats

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// StreamPath is the activator's admin endpoint that streams Reports.
const StreamPath = "/v1/stats"

// ContentType is the stream's media type: one JSON Report per line.
const ContentType = "application/x-ndjson"

// Version is the wire version; a controller refuses reports of another.
const Version = 1

// Kind says why a Report was sent.
type Kind string

const (
	// KindTick is the report at the end of each second: every app that
	// had traffic, requests in flight or held requests in that second.
	KindTick Kind = "tick"
	// KindWake is sent at once when a request is held for an app with no
	// ready endpoint; Apps holds that app alone. The controller scales it
	// from zero without waiting for its next decision.
	KindWake Kind = "wake"
)

// App names an app: its Deployment.
type App struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (a App) String() string { return a.Namespace + "/" + a.Name }

// AppStats is one app's counts over one report's second, on one activator.
type AppStats struct {
	App
	// Requests is the number of requests that arrived in the second.
	Requests int64 `json:"requests"`
	// Concurrency is the time-averaged number of requests in flight over
	// the second (held requests included), as Knative's queue-proxy counts.
	Concurrency float64 `json:"concurrency"`
	// MaxConcurrency is the peak number in flight during the second.
	MaxConcurrency int64 `json:"maxConcurrency"`
	// Held is the number of requests waiting for a ready pod at the end of
	// the second (or at the wake).
	Held int64 `json:"held"`
	// Endpoints is the number of ready endpoints the activator saw.
	Endpoints int `json:"endpoints"`
}

// Report is one line of the stream.
type Report struct {
	Version int  `json:"version"`
	Kind    Kind `json:"kind"`
	// Activator identifies the replica (its pod name).
	Activator string `json:"activator"`
	// Time is the end of the second the counts cover (tick), or the moment
	// of the wake.
	Time time.Time  `json:"time"`
	Apps []AppStats `json:"apps"`
}

// Encoder writes Reports to a stream.
type Encoder struct{ enc *json.Encoder }

// NewEncoder returns an Encoder writing to w. The caller flushes w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{enc: json.NewEncoder(w)} }

// Encode writes r as one line.
func (e *Encoder) Encode(r Report) error {
	r.Version = Version
	if err := e.enc.Encode(r); err != nil {
		return fmt.Errorf("encode %s report: %w", r.Kind, err)
	}
	return nil
}

// MaxLine bounds one Report's line; an activator that sends a longer one is
// broken and the stream is dropped.
const MaxLine = 16 << 20

// Decoder reads Reports from a stream.
type Decoder struct{ sc *bufio.Scanner }

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &Decoder{sc: sc}
}

// Decode reads the next Report. It returns io.EOF at the end of the stream,
// and an error naming the problem for a line that is not a Report of this
// version.
func (d *Decoder) Decode() (Report, error) {
	if !d.sc.Scan() {
		if err := d.sc.Err(); err != nil {
			return Report{}, fmt.Errorf("read stats stream: %w", err)
		}
		return Report{}, io.EOF
	}
	var r Report
	if err := json.Unmarshal(d.sc.Bytes(), &r); err != nil {
		return Report{}, fmt.Errorf("decode stats report: %w", err)
	}
	if r.Version != Version {
		return Report{}, fmt.Errorf("stats report version %d, want %d", r.Version, Version)
	}
	switch r.Kind {
	case KindTick, KindWake:
	default:
		return Report{}, fmt.Errorf("stats report kind %q, want %q or %q", r.Kind, KindTick, KindWake)
	}
	return r, nil
}
