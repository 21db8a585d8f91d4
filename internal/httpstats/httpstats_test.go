package httpstats

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	at := time.Date(2026, 12, 4, 9, 0, 1, 0, time.UTC)
	in := []Report{
		{Kind: KindTick, Activator: "a-0", Time: at, Apps: []AppStats{{App: App{"ns", "web"}, Requests: 12, Concurrency: 1.5, MaxConcurrency: 3, Endpoints: 2}}},
		{Kind: KindWake, Activator: "a-0", Time: at.Add(300 * time.Millisecond), Apps: []AppStats{{App: App{"ns", "idle"}, Requests: 1, Held: 1}}},
	}
	for _, r := range in {
		require.NoError(t, enc.Encode(r))
	}
	assert.Equal(t, 2, strings.Count(buf.String(), "\n"), "one line per report")

	dec := NewDecoder(&buf)
	for _, want := range in {
		got, err := dec.Decode()
		require.NoError(t, err)
		want.Version = Version
		assert.Equal(t, want, got)
	}
	_, err := dec.Decode()
	assert.ErrorIs(t, err, io.EOF)
}

func TestDecodeRefusesOtherVersionsAndKinds(t *testing.T) {
	tests := map[string]string{
		`{"version":2,"kind":"tick"}`: "version 2",
		`{"version":1,"kind":"poke"}`: `kind "poke"`,
		`{"version":1,"kind":"tick"`:  "decode stats report",
		`not json`:                    "decode stats report",
	}
	for line, want := range tests {
		_, err := NewDecoder(strings.NewReader(line + "\n")).Decode()
		require.Error(t, err, line)
		assert.Contains(t, err.Error(), want, line)
	}
}

func TestAppString(t *testing.T) {
	assert.Equal(t, "apps/web", App{Namespace: "apps", Name: "web"}.String())
}
