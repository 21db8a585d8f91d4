package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConvertExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	hpa := write("hpa.yaml", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {kind: Deployment, name: app}\n  minReplicas: 0\n  maxReplicas: 4\n")
	onlyCustom := write("custom.yaml", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {kind: Deployment, name: app}\n  maxReplicas: 4\n  metrics: [{type: Pods, pods: {metric: {name: q}, target: {type: Value, value: '1'}}}]\n")
	configMap := write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
	broken := write("broken.yaml", "spec: [")

	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring
		stderr     string // substring
		noStdout   bool
		noWarnings bool
	}{
		{name: "warnings exit 0", args: []string{"-f", hpa}, code: exitOK, stdout: `spinscale.dev/min-replicas: "1"`,
			stderr: "warning: HorizontalPodAutoscaler a: spec.minReplicas: 0 (scale to zero) needs a Prometheus metric in Spinscale"},
		{name: "nothing usable is still exit 0, with a warning", args: []string{"-f", onlyCustom}, code: exitOK,
			stderr: "Spinscale would refuse them as they stand"},
		{name: "scaffold flags", args: []string{"--autoscaler", "keda", "--cpu-request", "50m", "--memory-request", "64Mi", "--name", "web"},
			code: exitOK, stdout: "kubectl patch spinapp web --type merge", noWarnings: true},
		{name: "pasted scaffold flags are accepted", args: []string{"--from", "ghcr.io/a/b:1", "--autoscaler", "hpa", "--executor", "containerd-shim-spin",
			"--cpu-limit", "1", "--memory-limit", "1Gi", "--image-pull-secret", "s1", "--image-pull-secret", "s2"}, code: exitOK, stdout: "SpinApp b", noWarnings: true},
		{name: "help", args: []string{"--help"}, code: exitOK, stdout: "Usage: autoscaler convert"},
		{name: "unreadable YAML", args: []string{"-f", broken}, code: exitUsage, stderr: "not YAML or JSON", noStdout: true},
		{name: "missing file", args: []string{"-f", filepath.Join(dir, "nope.yaml")}, code: exitUsage, stderr: "no such file", noStdout: true},
		{name: "no autoscaler", args: []string{"-f", configMap}, code: exitUsage, stderr: "no HorizontalPodAutoscaler or KEDA ScaledObject found", noStdout: true},
		{name: "no input", args: nil, code: exitUsage, stderr: "-f FILE or --autoscaler hpa|keda is required", noStdout: true},
		{name: "both inputs", args: []string{"-f", hpa, "--autoscaler", "hpa"}, code: exitUsage, stderr: "not both", noStdout: true},
		{name: "bad scaffold values", args: []string{"--autoscaler", "hpa", "--replicas", "5"}, code: exitUsage, stderr: "--max-replicas: 3: must be at least --replicas (5)", noStdout: true},
		{name: "bad patch", args: []string{"-f", hpa, "--patch", "hpa"}, code: exitUsage, stderr: "allowed both, spinapp, deployment", noStdout: true},
		{name: "bad output", args: []string{"-f", hpa, "--output", "toml"}, code: exitUsage, stderr: "allowed yaml, json", noStdout: true},
		{name: "stray argument", args: []string{"-f", hpa, "extra"}, code: exitUsage, stderr: "unexpected arguments", noStdout: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"convert"}, tc.args...), &stdout, &stderr)
			assert.Equal(t, tc.code, code, "stderr: %s", stderr.String())
			assert.Contains(t, stdout.String(), tc.stdout)
			assert.Contains(t, stderr.String(), tc.stderr)
			if tc.noStdout {
				assert.Empty(t, stdout.String())
			}
			if tc.noWarnings {
				assert.Empty(t, stderr.String())
			}
		})
	}
}

// Every `autoscaler convert` example in docs/migrate.md prints exactly what
// the page shows (standard error first, as a terminal shows it), over the
// input files the page shows (```yaml file=NAME blocks).
func TestMigrateDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/migrate.md")
	require.NoError(t, err)
	dir := t.TempDir()
	fence := regexp.MustCompile("(?ms)^```([a-z]*)( file=(\\S+))?\n(.*?)^```\n")
	var examples int
	for _, block := range fence.FindAllStringSubmatch(string(doc), -1) {
		lang, file, body := block[1], block[3], block[4]
		if file != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(body), 0o600))
		}
		if lang != "console" {
			continue
		}
		t.Chdir(dir)
		for _, cmd := range strings.Split("\n"+body, "\n$ ")[1:] {
			line, want, _ := strings.Cut(cmd, "\n")
			args := strings.Fields(line)
			require.Equal(t, "autoscaler", args[0], "only autoscaler commands in console blocks: %s", line)
			var stdout, stderr bytes.Buffer
			code := run(args[1:], &stdout, &stderr)
			assert.Equal(t, exitOK, code, line)
			assert.Equal(t, want, stderr.String()+stdout.String(), "docs/migrate.md: the output of %s", line)
			examples++
		}
	}
	assert.GreaterOrEqual(t, examples, 3)
}
