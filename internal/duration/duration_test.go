package duration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	tests := map[time.Duration]string{
		0:                       "0s",
		500 * time.Millisecond:  "500ms",
		10 * time.Minute:        "10m",
		time.Hour:               "1h",
		90 * time.Minute:        "1h30m",
		time.Hour + time.Second: "1h0m1s",
		-time.Second:            "-1s",
		90 * time.Second:        "1m30s",
		24 * time.Hour:          "24h",
	}
	for d, want := range tests {
		t.Run(want, func(t *testing.T) {
			assert.Equal(t, want, Format(d))
			parsed, err := time.ParseDuration(want)
			require.NoError(t, err)
			assert.Equal(t, d, parsed)
		})
	}
}
