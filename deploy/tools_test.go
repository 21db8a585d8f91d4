// Package deploy holds the tests of what ships under deploy/: the Helm chart,
// the plain manifests rendered from it, the container build, the Grafana
// dashboard and the Prometheus alerts. It has no code of its own.
//
// The tests run the real tools: Helm (pinned in the Makefile, built into
// bin/ from the Go module proxy) and promtool (bin/promtool: the system's, or
// taken from Debian's prometheus package). A missing tool is installed with
// `make deploy-tools` on first use.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var tools struct {
	once     sync.Once
	err      error
	root     string
	helm     string
	promtool string
}

// ensureTools finds (or installs, through the Makefile) Helm and promtool.
func ensureTools(t *testing.T) {
	t.Helper()
	tools.once.Do(func() { tools.err = findTools() })
	require.NoError(t, tools.err)
}

func findTools() error {
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	tools.root = root
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`(?m)^HELM_VERSION\s*:=\s*(\S+)`).FindSubmatch(makefile)
	if m == nil {
		return fmt.Errorf("no HELM_VERSION in the Makefile")
	}
	tools.helm = filepath.Join(root, "bin", "helm-"+string(m[1]))
	tools.promtool = filepath.Join(root, "bin", "promtool")
	_, helmErr := os.Stat(tools.helm)
	_, promErr := os.Stat(tools.promtool)
	if helmErr != nil || promErr != nil {
		cmd := exec.Command("make", "--no-print-directory", "deploy-tools")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make deploy-tools: %w\n%s", err, out)
		}
	}
	return nil
}

// run runs a command in the repository root and returns its stdout; stderr
// is part of the error.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = tools.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// helmTemplate renders the chart as `make manifests` does, plus args.
func helmTemplate(t *testing.T, args ...string) string {
	t.Helper()
	ensureTools(t)
	out, err := run(t, tools.helm, append([]string{"template", "spinscale", "deploy/helm/spinscale", "--namespace", "spinscale-system"}, args...)...)
	require.NoError(t, err)
	return out
}
