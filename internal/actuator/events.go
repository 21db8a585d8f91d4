package actuator

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// Event reasons Spinscale records on Deployments.
const (
	ReasonRescaled          = "SpinscaleRescaled"
	ReasonInvalidConfig     = "SpinscaleInvalidAnnotations"
	ReasonUnknownAnnotation = "SpinscaleUnknownAnnotation"
	ReasonRefused           = "SpinscaleRefused"
	ReasonMetricsDegraded   = "SpinscaleMetricsDegraded"
	ReasonRescaleFailed     = "SpinscaleRescaleFailed"
)

// Events records Events on Deployments. Warnings are emitted once per change
// of their message, not on every tick: a condition that persists is reported
// once, a changed one again, a cleared and recurring one again.
type Events struct {
	Recorder record.EventRecorder

	mu   sync.Mutex
	last map[warnKey]string
}

type warnKey struct {
	app    types.NamespacedName
	reason string
}

// Normal records a Normal event every time.
func (e *Events) Normal(obj runtime.Object, reason, message string) {
	if e == nil || e.Recorder == nil {
		return
	}
	e.Recorder.Event(obj, corev1.EventTypeNormal, reason, message)
}

// Warning records a Warning event unless the same message was the last one
// recorded for this app and reason. It reports whether it recorded.
func (e *Events) Warning(obj runtime.Object, app types.NamespacedName, reason, message string) bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	if e.last == nil {
		e.last = map[warnKey]string{}
	}
	k := warnKey{app, reason}
	if e.last[k] == message {
		e.mu.Unlock()
		return false
	}
	e.last[k] = message
	e.mu.Unlock()
	if e.Recorder != nil {
		e.Recorder.Event(obj, corev1.EventTypeWarning, reason, message)
	}
	return true
}

// Clear forgets the last warning for the app and reason, so that the
// condition is reported again if it comes back.
func (e *Events) Clear(app types.NamespacedName, reason string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	delete(e.last, warnKey{app, reason})
	e.mu.Unlock()
}

// Forget drops everything remembered about an app that is gone.
func (e *Events) Forget(app types.NamespacedName) {
	if e == nil {
		return
	}
	e.mu.Lock()
	for k := range e.last {
		if k.app == app {
			delete(e.last, k)
		}
	}
	e.mu.Unlock()
}
