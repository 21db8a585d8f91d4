package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// objects splits a multi-document YAML stream into objects, skipping empty
// documents.
func objects(t *testing.T, stream string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split("\n"+stream, "\n---") {
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj), "document:\n%s", doc)
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

// manifestObjects reads every file that deploy/manifests/kustomization.yaml
// lists.
func manifestObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join("manifests")
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		Resources []string `json:"resources"`
	}
	require.NoError(t, yaml.Unmarshal(data, &k))
	require.NotEmpty(t, k.Resources)
	var all []*unstructured.Unstructured
	for _, f := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		all = append(all, objects(t, string(data))...)
	}
	return all
}

// find returns the objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// into converts an unstructured object into a typed one.
func into(t *testing.T, u *unstructured.Unstructured, out any) {
	t.Helper()
	data, err := yaml.Marshal(u.Object)
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(data, out))
}
