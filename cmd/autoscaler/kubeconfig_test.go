package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigs are the files the cases of TestClientConfig choose from, by
// name: each points at its own server and, but for "nons", sets a namespace.
var kubeconfigs = map[string]struct{ server, namespace string }{
	"flag": {"https://flag:6443", "from-flag"},
	"env1": {"https://env1:6443", "from-env1"},
	"env2": {"https://env2:6443", "from-env2"},
	"home": {"https://home:6443", "from-home"},
	"nons": {"https://nons:6443", ""},
}

func TestClientConfig(t *testing.T) {
	tests := []struct {
		name       string
		flag       string   // kubeconfig file given with --kubeconfig
		kubeconfig []string // files listed in $KUBECONFIG
		home       string   // file copied to ~/.kube/config
		wantHost   string
		wantNS     string
		wantErr    bool
		wantErrIs  error // when set, the error must wrap it
	}{
		{
			name: "flag beats $KUBECONFIG and ~/.kube/config",
			flag: "flag", kubeconfig: []string{"env1"}, home: "home",
			wantHost: "https://flag:6443", wantNS: "from-flag",
		},
		{
			name:       "$KUBECONFIG beats ~/.kube/config",
			kubeconfig: []string{"env1"}, home: "home",
			wantHost: "https://env1:6443", wantNS: "from-env1",
		},
		{
			name:       "first file in $KUBECONFIG wins",
			kubeconfig: []string{"env1", "env2"},
			wantHost:   "https://env1:6443", wantNS: "from-env1",
		},
		{
			name:       "missing file in $KUBECONFIG is skipped",
			kubeconfig: []string{"missing", "env2"}, home: "home",
			wantHost: "https://env2:6443", wantNS: "from-env2",
		},
		{
			name:     "~/.kube/config without flag or $KUBECONFIG",
			home:     "home",
			wantHost: "https://home:6443", wantNS: "from-home",
		},
		{
			name:     "context without namespace means default",
			flag:     "nons",
			wantHost: "https://nons:6443", wantNS: "default",
		},
		{
			name: "missing flag file is an error, not a fallback",
			flag: "missing", home: "home",
			wantErr: true, wantErrIs: fs.ErrNotExist,
		},
		{
			name:    "no kubeconfig outside a cluster is an error",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := func(name string) string { return filepath.Join(dir, name) }
			for name, kc := range kubeconfigs {
				writeKubeconfig(t, path(name), kc.server, kc.namespace)
			}
			home := isolateKubeconfig(t)
			if tt.home != "" {
				data, err := os.ReadFile(path(tt.home))
				require.NoError(t, err)
				require.NoError(t, os.MkdirAll(filepath.Join(home, ".kube"), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(home, ".kube", "config"), data, 0o600))
			}
			var list []string
			for _, name := range tt.kubeconfig {
				list = append(list, path(name))
			}
			t.Setenv("KUBECONFIG", strings.Join(list, string(filepath.ListSeparator)))
			flag := ""
			if tt.flag != "" {
				flag = path(tt.flag)
			}

			cfg, ns, err := clientConfig(flag)

			if tt.wantErr {
				require.Error(t, err)
				if tt.wantErrIs != nil {
					assert.ErrorIs(t, err, tt.wantErrIs)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantHost, cfg.Host)
			assert.Equal(t, tt.wantNS, ns)
		})
	}
}

// isolateKubeconfig makes clientConfig see neither the real home directory
// nor a cluster, and returns the home directory it sees instead. client-go
// resolves ~/.kube/config once, when its package initialises, so moving
// $HOME is not enough: the resolved path is pointed at the new home too.
func isolateKubeconfig(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	// In-cluster credentials need this variable; tests may run in a pod.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	saved := clientcmd.RecommendedHomeFile
	clientcmd.RecommendedHomeFile = filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
	t.Cleanup(func() { clientcmd.RecommendedHomeFile = saved })
	return home
}

// writeKubeconfig writes a kubeconfig whose current context points at server
// with namespace (none when empty).
func writeKubeconfig(t *testing.T, path, server, namespace string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: namespace}
	cfg.CurrentContext = "ctx"
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
}
