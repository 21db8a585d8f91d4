package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/status"
)

// statusServer serves a leader's document with one app in shop (in shadow
// mode) and one in blog.
func statusServer(t *testing.T) string {
	t.Helper()
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l := status.List{Leader: "spinscale-0_ab12cd", Leading: true, At: at, Apps: []status.App{
		{Namespace: "blog", Name: "feed", State: "ok", Targets: "cpu: 40%/60%", MinReplicas: 1, MaxReplicas: 5, Replicas: 2, Desired: 2,
			Reason: "within tolerance", LastDecision: at,
			Conditions: []status.Condition{{Type: "AbleToScale", Status: "True", Reason: "ReadyForNewScale"}}},
		{Namespace: "shop", Name: "web", State: "shadow", Targets: "cpu: 70%/60%", MinReplicas: 1, MaxReplicas: 20, Replicas: 4, Desired: 5,
			LimitedBy: "none", Reason: "scale up", LastDecision: at,
			Conditions: []status.Condition{{Type: "Shadow", Status: "True", Reason: "ShadowMode", Message: "decided beside the live autoscaler, never written"}},
			Shadow:     &status.Shadow{Decisions: 10, Agree: 9, AgreementRate: 0.9, Higher: 1, MeanHigher: 1, Sooner: 2, MeanSoonerSeconds: 34}},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(l)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestStatusCommand(t *testing.T) {
	url := statusServer(t)
	isolateKubeconfig(t) // the default namespace is then "default"
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		unwanted []string
		stderr   string
	}{
		{name: "table of a namespace", args: []string{"-n", "shop"},
			stdout:   []string{"NAME   REFERENCE        TARGETS", "web    Deployment/web   cpu: 70%/60%"},
			unwanted: []string{"feed", "NAMESPACE"}},
		{name: "all namespaces", args: []string{"-A"}, stdout: []string{"NAMESPACE", "blog        feed", "shop        web"}},
		{name: "wide", args: []string{"-n", "shop", "-o", "wide"}, stdout: []string{"LIMITED-BY   REASON", "none         scale up"}},
		{name: "the kubeconfig's namespace by default", args: nil, stderr: "No apps found in default namespace.\n"},
		{name: "describe", args: []string{"-n", "shop", "web"},
			stdout: []string{"Name:", "Conditions:", "Shadow  True    ShadowMode", "Shadow comparison", "would have scaled 34 s sooner on average"}},
		{name: "json", args: []string{"-n", "blog", "-o", "json"}, stdout: []string{`"name": "feed"`}, unwanted: []string{`"web"`}},
		{name: "unknown app", args: []string{"-n", "shop", "nope"}, code: exitFailure, stderr: "status: app shop/nope not found"},
		{name: "name across namespaces", args: []string{"-A", "web"}, code: exitUsage, stderr: "cannot be named across all namespaces"},
		{name: "-n with -A", args: []string{"-A", "-n", "shop"}, code: exitUsage, stderr: "exclude each other"},
		{name: "bad output", args: []string{"-o", "yaml"}, code: exitUsage, stderr: `"yaml" is not an output format`},
		{name: "watch ends at its timeout", args: []string{"-n", "shop", "-w", "--interval", "10ms", "--watch-timeout", "100ms"},
			stdout: []string{"web    Deployment/web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runStatus(append([]string{"--url", url}, tt.args...), &stdout, &stderr)
			assert.Equal(t, tt.code, code, stderr.String())
			for _, s := range tt.stdout {
				assert.Contains(t, stdout.String(), s)
			}
			for _, s := range tt.unwanted {
				assert.NotContains(t, stdout.String(), s)
			}
			if tt.stderr != "" {
				assert.Contains(t, stderr.String(), tt.stderr)
			} else {
				assert.Empty(t, stderr.String())
			}
		})
	}
}

func TestStatusWatchPrintsTheTableOnce(t *testing.T) {
	url := statusServer(t)
	var stdout, stderr bytes.Buffer
	code := runStatus([]string{"--url", url, "-A", "-w", "--interval", "5ms", "--watch-timeout", "200ms"}, &stdout, &stderr)
	require.Equal(t, exitOK, code, stderr.String())
	assert.Equal(t, 1, strings.Count(stdout.String(), "NAMESPACE"), "one header")
	assert.Equal(t, 1, strings.Count(stdout.String(), "Deployment/web"), "an unchanged row is printed once")
}

func TestStatusUnreachable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runStatus([]string{"--url", "http://127.0.0.1:1", "-A"}, &stdout, &stderr)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr.String(), "status: status from http://127.0.0.1:1/apps")
}

func TestShadowReportCommand(t *testing.T) {
	url := statusServer(t)
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, runShadowReport([]string{"--url", url, "-n", "shop"}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stdout.String(), "NAME   DECISIONS   AGREE %")
	assert.Contains(t, stdout.String(), "web: agrees with the live count in 90% of 10 decisions; would have scaled 34 s sooner on average")

	stdout.Reset()
	require.Equal(t, exitOK, runShadowReport([]string{"--url", url, "-n", "blog"}, &stdout, &stderr))
	assert.Equal(t, "no app is in shadow mode\n", stdout.String())
}

// As a kubectl plugin the binary takes the commands that read the status
// (kubectl passes what follows `kubectl spinscale`), and no others.
func TestPlugin(t *testing.T) {
	url := statusServer(t)
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, runPlugin([]string{"status", "--url", url, "-n", "shop"}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stdout.String(), "Deployment/web")

	stdout.Reset()
	require.Equal(t, exitOK, runPlugin([]string{"shadow-report", "--url", url, "-A"}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "shop/web: agrees")

	stdout.Reset()
	require.Equal(t, exitOK, runPlugin([]string{"status", "--help"}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "kubectl spinscale status [NAME] [flags]")

	stdout.Reset()
	require.Equal(t, exitOK, runPlugin([]string{"--help"}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "Usage: kubectl spinscale <command>")

	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, exitUsage, runPlugin([]string{"run"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), `kubectl spinscale: unknown command "run"`)
	assert.Empty(t, stdout.String())

	stderr.Reset()
	assert.Equal(t, exitUsage, runPlugin(nil, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "Usage: kubectl spinscale")
}
