package localcluster

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadEnv(t *testing.T) {
	path := t.TempDir() + "/env"
	require.NoError(t, os.WriteFile(path, []byte("export KUBECONFIG=/tmp/a\\ b/kubeconfig\nexport SPINSCALE_CLUSTER_KCM=https://127.0.0.1:17446\nexport Q='/tmp/c d'\n"), 0o600))
	env, err := ReadEnv(path)
	require.NoError(t, err)
	assert.Equal(t, "/tmp/a b/kubeconfig", env["KUBECONFIG"], "bash's %q escapes are undone")
	assert.Equal(t, "https://127.0.0.1:17446", env["SPINSCALE_CLUSTER_KCM"])
	assert.Equal(t, "/tmp/c d", env["Q"], "single quotes are undone")

	require.NoError(t, os.WriteFile(path, []byte("export OTHER=1\n"), 0o600))
	_, err = ReadEnv(path)
	assert.ErrorContains(t, err, "no KUBECONFIG")
}
