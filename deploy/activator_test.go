package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// activatorGrants is everything the activator does with the API: informers
// on Deployments (their annotations) and EndpointSlices.
var activatorGrants = sorted(
	"get deployments.apps", "list deployments.apps", "watch deployments.apps",
	"get endpointslices.discovery.k8s.io", "list endpointslices.discovery.k8s.io", "watch endpointslices.discovery.k8s.io",
)

// activatorObjects are the rendered objects of the activator's component.
func activatorObjects(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetLabels()["app.kubernetes.io/component"] == "activator" {
			out = append(out, o)
		}
	}
	return out
}

func TestActivatorIsOffByDefault(t *testing.T) {
	assert.Empty(t, activatorObjects(objects(t, helmTemplate(t))))
	assert.Empty(t, activatorObjects(manifestObjects(t)))
}

func TestActivatorChart(t *testing.T) {
	all := objects(t, helmTemplate(t, "--set", "activator.enabled=true"))
	objs := activatorObjects(all)

	deps := find(objs, "Deployment")
	require.Len(t, deps, 1)
	var d appsv1.Deployment
	into(t, deps[0], &d)
	assert.Equal(t, "spinscale-activator", d.Name)
	assert.Equal(t, int32(2), *d.Spec.Replicas)
	pod := d.Spec.Template.Spec
	assert.Equal(t, "spinscale-activator", pod.ServiceAccountName, "its own account, not the controller's")
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, []string{"activator", "--listen=:8080", "--admin-listen=:9090", "--queue-size=1000",
		"--queue-timeout=30s", "--drain-timeout=30s", "--log-level=info"}, c.Args)
	assert.Equal(t, "metadata.name", c.Env[0].ValueFrom.FieldRef.FieldPath, "POD_NAME names the replica in its reports")
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, intstr.FromString("admin"), c.ReadinessProbe.HTTPGet.Port)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Greater(t, *pod.TerminationGracePeriodSeconds, int64(30), "longer than the drain")

	// Neither selector picks the other's pods.
	for _, o := range find(all, "Deployment") {
		var other appsv1.Deployment
		into(t, o, &other)
		if other.Name != d.Name {
			assert.NotEqual(t, other.Spec.Selector.MatchLabels["app.kubernetes.io/name"], d.Spec.Selector.MatchLabels["app.kubernetes.io/name"])
		}
	}

	svcs := find(objs, "Service")
	require.Len(t, svcs, 2)
	ports := map[string]corev1.ServicePort{}
	for _, o := range svcs {
		var s corev1.Service
		into(t, o, &s)
		assert.Equal(t, d.Spec.Selector.MatchLabels, s.Spec.Selector)
		require.Len(t, s.Spec.Ports, 1)
		ports[s.Name] = s.Spec.Ports[0]
		if s.Name == "spinscale-activator-admin" {
			assert.Equal(t, corev1.ClusterIPNone, s.Spec.ClusterIP, "the admin Service is headless: the controller reads every replica")
		}
	}
	assert.Equal(t, intstr.FromString("http"), ports["spinscale-activator"].TargetPort)
	assert.Equal(t, intstr.FromString("admin"), ports["spinscale-activator-admin"].TargetPort)

	pdbs := find(objs, "PodDisruptionBudget")
	require.Len(t, pdbs, 1)
	var pdb policyv1.PodDisruptionBudget
	into(t, pdbs[0], &pdb)
	assert.Equal(t, intstr.FromInt32(1), *pdb.Spec.MinAvailable)
	assert.Equal(t, d.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)

	crs := find(objs, "ClusterRole")
	require.Len(t, crs, 1)
	var cr rbacv1.ClusterRole
	into(t, crs[0], &cr)
	assert.Equal(t, activatorGrants, grants(t, cr.Rules))
	crbs := find(objs, "ClusterRoleBinding")
	require.Len(t, crbs, 1)
	var crb rbacv1.ClusterRoleBinding
	into(t, crbs[0], &crb)
	assert.Equal(t, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name}, crb.RoleRef)
	assert.Equal(t, []rbacv1.Subject{subjectOf(t, "spinscale-system", "spinscale-activator")}, crb.Subjects)
	assert.Len(t, find(objs, "ServiceAccount"), 1)
}

// With namespaces, a Role in each replaces the ClusterRole, and the
// activator is told to watch only them.
func TestActivatorNamespacedRBAC(t *testing.T) {
	objs := activatorObjects(objects(t, helmTemplate(t, "--set", "activator.enabled=true,activator.namespaces={shop,blog}",
		"--set", "activator.endpointAddressMap=10.244.0.0/16=127.244.0.0/16")))
	assert.Empty(t, find(objs, "ClusterRole"))
	roles := find(objs, "Role")
	require.Len(t, roles, 2)
	for _, o := range roles {
		var r rbacv1.Role
		into(t, o, &r)
		assert.Equal(t, activatorGrants, grants(t, r.Rules))
		assert.Contains(t, []string{"shop", "blog"}, r.Namespace)
	}
	assert.Len(t, find(objs, "RoleBinding"), 2)
	var d appsv1.Deployment
	into(t, find(objs, "Deployment")[0], &d)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--namespaces=shop,blog")
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--endpoint-address-map=10.244.0.0/16=127.244.0.0/16")
}

func TestActivatorChartLints(t *testing.T) {
	ensureTools(t)
	for name, sets := range map[string][]string{
		"enabled":         {"--set", "activator.enabled=true"},
		"namespaced":      {"--set", "activator.enabled=true,config.namespaces={shop}"},
		"without its PDB": {"--set", "activator.enabled=true,activator.podDisruptionBudget.enabled=false"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, tools.helm, append([]string{"lint", "--strict", "deploy/helm/spinscale"}, sets...)...)
			assert.NoError(t, err)
		})
	}
}
