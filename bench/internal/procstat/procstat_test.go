package procstat

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVmRSS(t *testing.T) {
	kb, err := ParseVmRSS(strings.NewReader("Name:\tautoscaler\nVmPeak:\t 9000 kB\nVmRSS:\t   61234 kB\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(61234), kb)
	_, err = ParseVmRSS(strings.NewReader("Name:\tx\n"))
	assert.ErrorContains(t, err, "no VmRSS line")
	_, err = ParseVmRSS(strings.NewReader("VmRSS:\n"))
	assert.ErrorContains(t, err, "empty VmRSS line")
	_, err = ParseVmRSS(strings.NewReader("VmRSS: many kB\n"))
	assert.ErrorContains(t, err, `VmRSS " many kB"`)
}

func TestParseStatSkipsACommandNameWithSpaces(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	d, err := parseStat([]byte("42 (a b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3\n"))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, d, "(250 + 50) ticks of 10 ms")
	_, err = parseStat([]byte("42 no-paren S 1"))
	assert.ErrorContains(t, err, "no ')'")
	_, err = parseStat([]byte("42 (x) S 1 2"))
	assert.ErrorContains(t, err, "fields after the command name")
	_, err = parseStat([]byte("42 (x) S 1 42 42 0 -1 4194304 100 0 0 0 u s 0"))
	assert.ErrorContains(t, err, `utime "u" stime "s"`)
}

func TestOwnProcess(t *testing.T) {
	rss, err := RSS(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, rss, int64(1<<20), "a Go test binary holds more than 1 MiB")
	_, err = CPUTime(os.Getpid())
	require.NoError(t, err)
	_, err = RSS(-1)
	assert.ErrorContains(t, err, "read rss")
	_, err = CPUTime(-1)
	assert.ErrorContains(t, err, "read cpu time")
	p, err := FreePort()
	require.NoError(t, err)
	assert.Positive(t, p)
}
