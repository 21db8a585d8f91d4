package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestActivatorFlagsAreValidated(t *testing.T) {
	tests := map[string]struct {
		args []string
		want []string
	}{
		"bad listen":    {[]string{"--listen", "8080"}, []string{`--listen: "8080" is not an address host:port`}},
		"queue size":    {[]string{"--queue-size", "0"}, []string{"--queue-size: 0 is out of range: allowed 1 to 100000"}},
		"queue timeout": {[]string{"--queue-timeout", "20m"}, []string{"--queue-timeout: 20m0s is out of range"}},
		"namespace":     {[]string{"--namespaces", "ok,Not_OK"}, []string{`--namespaces: "Not_OK" is not a namespace name`}},
		"address map":   {[]string{"--endpoint-address-map", "10.244.0.0/16=127.0.0.0/8"}, []string{"--endpoint-address-map: \"10.244.0.0/16=127.0.0.0/8\": both sides must have the same prefix length"}},
		"log level":     {[]string{"--log-level", "loud"}, []string{`--log-level: "loud" is not a level`}},
		"every problem at once": {
			[]string{"--queue-size", "-1", "--drain-timeout", "-1s", "--admin-listen", "x"},
			[]string{"--queue-size", "--drain-timeout", "--admin-listen"},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"activator"}, tt.args...), &stdout, &stderr)
			assert.Equal(t, exitUsage, code)
			for _, w := range tt.want {
				assert.Contains(t, stderr.String(), w)
			}
		})
	}
}

func TestActivatorHelpListsTheFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run([]string{"activator", "--help"}, &stdout, &stderr))
	for _, f := range []string{"--listen", "--admin-listen", "--kubeconfig", "--namespaces", "--queue-size", "--queue-timeout",
		"--drain-timeout", "--name", "--endpoint-address-map", "--log-level", `":8080"`, `":9090"`, "1000", "30s"} {
		assert.Contains(t, stdout.String(), f)
	}
	stdout.Reset()
	assert.Equal(t, exitUsage, run(nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "activator")
}

func TestReplicaName(t *testing.T) {
	t.Setenv("POD_NAME", "activator-7f9")
	assert.Equal(t, "given", replicaName("given"))
	assert.Equal(t, "activator-7f9", replicaName(""))
	t.Setenv("POD_NAME", "")
	assert.NotEmpty(t, replicaName(""))
}
