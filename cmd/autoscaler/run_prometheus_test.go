package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunReportsPrometheusSettingsWithTheOtherConfigErrors: a bad
// combination of Prometheus settings, or a file they name that cannot be
// read, is a configuration error like any other: reported with the rest,
// before any client is built, with the exit code of bad configuration.
func TestRunReportsPrometheusSettingsWithTheOtherConfigErrors(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	// A kubeconfig that loads: the clients are built without contacting
	// the (absent) API server, so only the configuration can stop the run.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	base := []string{"--kubeconfig", kubeconfig, "--once", "--set", "prometheus.address=http://127.0.0.1:1"}

	for _, tc := range []struct {
		name string
		sets []string
		want []string
	}{
		{"bearer token and basic auth",
			[]string{"prometheus.bearerTokenFile=" + secret, "prometheus.basicAuth.username=u", "prometheus.basicAuth.passwordFile=" + secret},
			[]string{"prometheus.bearerTokenFile", "prometheus.basicAuth", "not both"}},
		{"with another invalid setting",
			[]string{"prometheus.bearerTokenFile=" + secret, "prometheus.basicAuth.username=u", "prometheus.basicAuth.passwordFile=" + secret, "workers=0"},
			[]string{"prometheus.bearerTokenFile", "workers: 0"}},
		{"unreadable token file",
			[]string{"prometheus.bearerTokenFile=" + filepath.Join(dir, "missing"), "workers=0"},
			[]string{"prometheus.bearerTokenFile: ", filepath.Join(dir, "missing"), "workers: 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{}, base...)
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			var stdout, stderr bytes.Buffer
			assert.Equal(t, exitUsage, runRun(args, &stdout, &stderr), "stderr: %s", stderr.String())
			for _, w := range tc.want {
				assert.Contains(t, stderr.String(), w)
			}
			assert.Empty(t, stdout.String())
		})
	}
}
