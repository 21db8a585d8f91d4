// Package duration writes durations as people write them in configuration
// and annotations. It is a leaf: the global configuration, the annotation
// parser and the converter all quote limits with it, so it imports none of
// them.
package duration

import (
	"strings"
	"time"
)

// Format writes a duration as people do: 5m, 1h30m, 90s (not 5m0s). The
// text parses back with time.ParseDuration.
func Format(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
