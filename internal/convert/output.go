package convert

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"
)

// Which patches Write prints.
const (
	PatchBoth       = "both"
	PatchSpinApp    = "spinapp"
	PatchDeployment = "deployment"
)

// SpinAppPatch is the JSON merge patch for the app's SpinApp: its
// deploymentAnnotations, which spin-operator copies onto the Deployment, and
// enableAutoscaling, without which spin-operator writes replicas back.
func (r Result) SpinAppPatch() map[string]any {
	spec := map[string]any{"enableAutoscaling": true}
	for k, v := range r.SpinAppSpec {
		spec[k] = v
	}
	spec["deploymentAnnotations"] = r.Annotations
	return map[string]any{"spec": spec}
}

// DeploymentPatch is the JSON merge patch for a Deployment that is not
// managed by spin-operator (which would overwrite its annotations).
func (r Result) DeploymentPatch() map[string]any {
	return map[string]any{"metadata": map[string]any{"annotations": r.Annotations}}
}

// Write prints the patches of every result: YAML documents with comments
// saying where each comes from and how to apply it, or (json) one compact
// JSON object per patch and line.
func Write(w io.Writer, results []Result, which, format string) error {
	if which != PatchBoth && which != PatchSpinApp && which != PatchDeployment {
		return fmt.Errorf("patch %q: allowed %s, %s, %s", which, PatchBoth, PatchSpinApp, PatchDeployment)
	}
	if format != "yaml" && format != "json" {
		return fmt.Errorf("output %q: allowed yaml, json", format)
	}
	first := true
	for _, r := range results {
		for _, p := range []struct {
			kind, display, resource string
			patch                   map[string]any
			comment                 string
		}{
			{PatchSpinApp, "SpinApp", "spinapp", r.SpinAppPatch(), "SpinApp patch (spin-operator copies deploymentAnnotations onto the Deployment)"},
			{PatchDeployment, "Deployment", "deployment", r.DeploymentPatch(), "Deployment patch (only for a Deployment that spin-operator does not manage)"},
		} {
			if which != PatchBoth && which != p.kind {
				continue
			}
			if format == "json" {
				data, err := json.Marshal(p.patch)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "%s\n", data); err != nil {
					return err
				}
				continue
			}
			data, err := yaml.Marshal(p.patch)
			if err != nil {
				return err
			}
			var b strings.Builder
			if !first {
				b.WriteString("---\n")
			}
			first = false
			fmt.Fprintf(&b, "# %s → %s %s\n", r.Source, p.display, name(r))
			for _, n := range r.Notes {
				fmt.Fprintf(&b, "# note: %s\n", n)
			}
			if len(r.Warnings) > 0 {
				fmt.Fprintf(&b, "# %d field(s) not converted: see the warnings\n", len(r.Warnings))
			}
			fmt.Fprintf(&b, "# %s:\n#   kubectl patch %s %s%s --type merge --patch-file FILE\n", p.comment, p.resource, name(r), nsFlag(r))
			if cmd := deleteCommand(r); cmd != "" {
				fmt.Fprintf(&b, "# then, as Spinscale refuses apps that another autoscaler targets:\n#   %s\n", cmd)
			}
			b.Write(data)
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

func name(r Result) string {
	if r.Name == "" {
		return "NAME"
	}
	return r.Name
}

func nsFlag(r Result) string {
	if r.Namespace == "" {
		return ""
	}
	return " -n " + r.Namespace
}

// deleteCommand removes the converted autoscaler, once the annotations are
// in place.
func deleteCommand(r Result) string {
	kind, obj, ok := strings.Cut(r.Source, " ")
	if !ok {
		return ""
	}
	resource := map[string]string{"HorizontalPodAutoscaler": "hpa", "ScaledObject": "scaledobject"}[kind]
	if resource == "" {
		return ""
	}
	if _, n, ok := strings.Cut(obj, "/"); ok {
		obj = n
	}
	return fmt.Sprintf("kubectl delete %s %s%s", resource, obj, nsFlag(r))
}
