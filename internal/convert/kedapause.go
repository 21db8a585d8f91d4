package convert

import (
	"strconv"
	"strings"

	"github.com/spinscale/spinscale/internal/annotations"
)

// kedaAnnotations is the prefix of KEDA's annotations on a ScaledObject.
const kedaAnnotations = "autoscaling.keda.sh/"

// kedaPause converts KEDA's pause annotations, which mean the same in
// Spinscale: paused, paused-replicas (it wins over paused in both),
// paused-scale-in and paused-scale-out. A false value is the default and is
// not written.
func kedaPause(r *Result, ann map[string]string) {
	path := func(name string) string { return "metadata.annotations." + kedaAnnotations + name }
	if v, ok := ann[kedaAnnotations+"paused-replicas"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 || n > 100000 {
			r.warnf("%s: %q: Spinscale takes a replica count from 0 to 100000, not converted", path("paused-replicas"), v)
		} else {
			r.Annotations[annotations.KeyPausedReplicas] = strconv.FormatInt(n, 10)
		}
	}
	for _, p := range []struct{ name, key string }{
		{"paused", annotations.KeyPaused},
		{"paused-scale-in", annotations.KeyPausedScaleIn},
		{"paused-scale-out", annotations.KeyPausedScaleOut},
	} {
		v, ok := ann[kedaAnnotations+p.name]
		if !ok {
			continue
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		switch {
		case err == nil && b:
			r.Annotations[p.key] = "true"
		case err == nil:
		case p.name == "paused":
			// KEDA pauses a ScaledObject whose paused value is not a boolean.
			r.Annotations[p.key] = "true"
			r.notef("%s: %q is not a boolean, which KEDA reads as true: converted to true", path(p.name), v)
		default:
			r.warnf("%s: %q is not a boolean, not converted", path(p.name), v)
		}
	}
}
