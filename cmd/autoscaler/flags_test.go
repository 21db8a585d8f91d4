package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Every subcommand treats --help, bad flags and stray arguments alike: help
// on stdout and exit 0; the problem and the usage on stderr and exit 2.
func TestSubcommandFlags(t *testing.T) {
	commands := map[string]func([]string, io.Writer, io.Writer) int{
		"run": runRun, "simulate": runSimulate, "convert": runConvert,
		"status": runStatus, "shadow-report": runShadowReport,
	}
	for name, run := range commands {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, exitOK, run([]string{"--help"}, &stdout, &stderr))
			assert.Contains(t, stdout.String(), "Usage: autoscaler "+name)
			assert.Empty(t, stderr.String())

			stdout.Reset()
			stderr.Reset()
			assert.Equal(t, exitUsage, run([]string{"--bogus"}, &stdout, &stderr))
			assert.Contains(t, stderr.String(), name+": unknown flag: --bogus")
			assert.Contains(t, stderr.String(), "Usage: autoscaler "+name)
			assert.Empty(t, stdout.String())

			stderr.Reset()
			stray := []string{"stray"}
			if name == "status" { // takes an app's name
				stray = []string{"app", "stray"}
			}
			assert.Equal(t, exitUsage, run(stray, &stdout, &stderr))
			assert.Contains(t, stderr.String(), name+`: unexpected arguments ["stray"]`)
		})
	}
}
