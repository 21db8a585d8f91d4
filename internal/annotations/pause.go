package annotations

import (
	"strconv"

	"github.com/spinscale/spinscale/internal/recommender"
)

// pause parses paused-replicas, paused-scale-in and paused-scale-out, the
// equivalents of KEDA's autoscaling.keda.sh/ pause annotations.
//
// paused-replicas is not checked against min-replicas and max-replicas: as
// with KEDA, the app goes to exactly that count, which is how a user parks
// an app below its minimum or at 0.
func (p *parser) pause() recommender.Pause {
	var out recommender.Pause
	if _, ok := p.ann[KeyPausedReplicas]; ok {
		v, _ := p.get(KeyPausedReplicas)
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 || n > maxReplicas {
			p.fail(KeyPausedReplicas, "must be an integer from 0 to %d: the replica count to go to and hold", maxReplicas)
		} else {
			replicas := int32(n)
			out.Replicas = &replicas
		}
	}
	out.ScaleIn = p.boolean(KeyPausedScaleIn)
	out.ScaleOut = p.boolean(KeyPausedScaleOut)
	return out
}
