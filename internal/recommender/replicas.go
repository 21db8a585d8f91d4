package recommender

import (
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// This file ports HPA's replica calculator (replica_calculator.go): one
// proposal per metric from the pods and their samples.

// podSet is the per-metric working set: each pod's sample, and the samples
// that match no pod (HPA keeps those in its metrics map: they count in the
// plain average and in the pod count of the re-computation).
type podSet struct {
	// sampleOf[i] is the index in samples of pod i's sample, or -1.
	sampleOf []int
	samples  []Sample
	// extra are samples whose pod is not in Input.Pods.
	extra []int
}

// lookup matches samples to pods by name. Duplicate samples for one pod keep
// the last, as a map would. Stale samples are dropped and counted. sampleOf
// has one element per pod; the caller provides it so that a small app's
// index can live on its stack.
func lookup(pods []Pod, samples []Sample, now time.Time, maxAge time.Duration, sampleOf []int) (ps podSet, stale int) {
	ps.samples = samples
	ps.sampleOf = sampleOf
	for i := range ps.sampleOf {
		ps.sampleOf[i] = -1
	}
	// Small apps are the common case: a linear scan beats building a map.
	if len(pods)*len(samples) <= 256 {
		for j := range samples {
			if isStale(samples[j].Timestamp, now, maxAge) {
				stale++
				continue
			}
			found := false
			for i := range pods {
				if pods[i].Name == samples[j].Pod {
					ps.sampleOf[i] = j
					found = true
					break
				}
			}
			if !found {
				ps.extra = appendUnique(ps.extra, samples, j)
			}
		}
		return ps, stale
	}
	index := make(map[string]int, len(pods))
	for i := range pods {
		index[pods[i].Name] = i
	}
	extraIndex := map[string]int{}
	for j := range samples {
		if isStale(samples[j].Timestamp, now, maxAge) {
			stale++
			continue
		}
		if i, ok := index[samples[j].Pod]; ok {
			ps.sampleOf[i] = j
			continue
		}
		if k, ok := extraIndex[samples[j].Pod]; ok {
			ps.extra[k] = j
			continue
		}
		extraIndex[samples[j].Pod] = len(ps.extra)
		ps.extra = append(ps.extra, j)
	}
	return ps, stale
}

// isStale reports whether a sample taken at ts is older than maxAge at now.
// A zero timestamp means "now" and a zero maxAge disables the check.
func isStale(ts, now time.Time, maxAge time.Duration) bool {
	return maxAge > 0 && !ts.IsZero() && now.Sub(ts) > maxAge
}

func appendUnique(extra []int, samples []Sample, j int) []int {
	for k, e := range extra {
		if samples[e].Pod == samples[j].Pod {
			extra[k] = j
			return extra
		}
	}
	return append(extra, j)
}

type podClass uint8

const (
	classReady podClass = iota
	classUnready
	classMissing
	classIgnored
)

// classify is HPA's groupPods: deleting and Failed pods are ignored, Pending
// pods are unready, pods without a sample are missing, and for cpu only the
// start-up rules can make a pod with a sample unready.
func classify(spec *Spec, p *Pod, s *Sample, resource corev1.ResourceName, now time.Time) podClass {
	if p.Deleting || p.Phase == corev1.PodFailed {
		return classIgnored
	}
	if p.Phase == corev1.PodPending {
		return classUnready
	}
	if s == nil {
		return classMissing
	}
	if resource != corev1.ResourceCPU {
		return classReady
	}
	if !p.HasReadyCondition || p.StartTime.IsZero() {
		return classUnready
	}
	ts := s.Timestamp
	if ts.IsZero() {
		ts = now
	}
	if p.StartTime.Add(spec.CPUInitializationPeriod).After(now) {
		// Still initializing: ignore the sample if the pod is unready or
		// no full metric window has passed since it last changed readiness.
		if !p.Ready || ts.Before(p.ReadyTransition.Add(s.Window)) {
			return classUnready
		}
		return classReady
	}
	// Past initialization: ignore only a pod that is unready and has never
	// been ready (its readiness last changed within the initial delay).
	if !p.Ready && p.StartTime.Add(spec.InitialReadinessDelay).After(p.ReadyTransition) {
		return classUnready
	}
	return classReady
}

// perPodCounts is the outcome of grouping for one metric.
type perPodCounts struct {
	ready, unready, missing, ignored int
}

// computePerPod proposes a replica count for per-pod data: resource
// utilization (HPA GetResourceReplicas), resource average value and per-pod
// metrics (HPA calcPlainMetricReplicas).
func computePerPod(spec *Spec, ms *MetricSpec, in *Input, obs *Observation, now time.Time, r *MetricResult) {
	current := in.SpecReplicas
	if len(in.Pods) == 0 {
		r.Err = ErrNoPods
		return
	}
	resourceName := corev1.ResourceName("")
	if ms.Source == SourceResource {
		resourceName = ms.Resource
	}
	// Most apps have a few pods: their index needs no allocation.
	var small [16]int
	var sampleOf []int
	if len(in.Pods) <= len(small) {
		sampleOf = small[:len(in.Pods)]
	} else {
		sampleOf = make([]int, len(in.Pods))
	}
	ps, stale := lookup(in.Pods, obs.Samples, now, spec.MaxSampleAge, sampleOf)
	r.StalePods = stale

	classes := make([]podClass, len(in.Pods))
	var c perPodCounts
	// used counts samples left in HPA's metrics map after removing ignored
	// and unready pods: ready pods' samples plus samples of unknown pods.
	used := len(ps.extra)
	for i := range in.Pods {
		var s *Sample
		if j := ps.sampleOf[i]; j >= 0 {
			s = &ps.samples[j]
		}
		classes[i] = classify(spec, &in.Pods[i], s, resourceName, now)
		switch classes[i] {
		case classReady:
			c.ready++
			used++
		case classUnready:
			c.unready++
		case classMissing:
			c.missing++
		case classIgnored:
			c.ignored++
		}
	}
	r.ReadyPods, r.UnreadyPods, r.MissingPods, r.IgnoredPods = c.ready, c.unready, c.missing, c.ignored
	if used == 0 {
		if stale > 0 {
			r.Err = fmt.Errorf("%w: %d samples older than %s", ErrStale, stale, spec.MaxSampleAge)
		} else {
			r.Err = fmt.Errorf("%w: no samples for the app's ready pods (pods might be unready)", ErrNoData)
		}
		return
	}
	if ms.Source == SourceResource && allZero(in.Pods, classes, &ps) {
		r.Err = fmt.Errorf("%w (%d pods): check the node's cgroup accounting", ErrAllZero, c.ready)
		return
	}
	if ms.Target == TargetUtilization {
		utilizationProposal(ms, in, &ps, classes, c, current, spec.Tolerance, spec.Profile == ProfileSpinscale, r)
		return
	}
	averageProposal(ms, in, &ps, classes, c, used, current, spec.Tolerance, spec.Profile == ProfileSpinscale, r)
}

func allZero(pods []Pod, classes []podClass, ps *podSet) bool {
	for i := range pods {
		if classes[i] == classReady && ps.samples[ps.sampleOf[i]].Value != 0 {
			return false
		}
	}
	for _, j := range ps.extra {
		if ps.samples[j].Value != 0 {
			return false
		}
	}
	return true
}

// utilizationProposal is GetResourceReplicas after grouping.
func utilizationProposal(ms *MetricSpec, in *Input, ps *podSet, classes []podClass, c perPodCounts, current int32, tol Tolerances, tuned bool, r *MetricResult) {
	if ms.TargetUtilization <= 0 {
		r.Err = fmt.Errorf("%w: utilization %d%%", ErrInvalidTarget, ms.TargetUtilization)
		return
	}
	// HPA needs a request from every matched pod, even ignored ones: from
	// each of its containers, or from the pod as a whole when it sets
	// pod-level requests.
	for i := range in.Pods {
		if req := in.Pods[i].request(ms.Resource); req.MissingIn != "" {
			r.Err = &MissingRequestError{Resource: ms.Resource, Container: req.MissingIn, Pod: in.Pods[i].Name, PodLevel: req.PodLevel}
			return
		}
	}
	// First pass over ready pods only. Samples of unknown pods have no
	// request and so do not enter the utilization.
	var usage, requests int64
	entries := 0
	for i := range in.Pods {
		if classes[i] == classReady {
			usage = addSaturating(usage, ps.samples[ps.sampleOf[i]].Value)
			requests += in.Pods[i].request(ms.Resource).Milli
			entries++
		}
	}
	if requests == 0 {
		r.Err = fmt.Errorf("%w: no samples matched known pods", ErrNoData)
		return
	}
	// Utilization is a whole percent before the ratio is formed.
	utilization := int32(usage * 100 / requests)
	ratio := float64(utilization) / float64(ms.TargetUtilization)
	r.Utilization, r.CurrentMilli = utilization, usage/int64(entries)
	if firstPass(current, ratio, c, tol, tuned, r) {
		return
	}

	// Re-compute with the conservative assumption for pods we could not
	// use: missing pods at max(100%, target) of request on a scale-down and
	// 0 on a scale-up; unready pods at 0 on a scale-up.
	count := len(ps.extra) + c.ready
	for i := range in.Pods {
		req := in.Pods[i].request(ms.Resource).Milli
		switch {
		case classes[i] == classMissing && ratio < 1:
			usage = addSaturating(usage, req*int64(max(100, ms.TargetUtilization))/100)
			requests += req
			count++
		case classes[i] == classMissing && ratio > 1:
			requests += req
			count++
		case classes[i] == classUnready && ratio > 1:
			requests += req
			count++
		}
	}
	newRatio := float64(int32(usage*100/requests)) / float64(ms.TargetUtilization)
	r.Proposal = settle(current, ratio, newRatio, count, tol, r)
}

// averageProposal is calcPlainMetricReplicas after grouping: the plain
// average over the samples (integer milli-units) against the target.
func averageProposal(ms *MetricSpec, in *Input, ps *podSet, classes []podClass, c perPodCounts, used int, current int32, tol Tolerances, tuned bool, r *MetricResult) {
	if ms.TargetMilli <= 0 {
		r.Err = fmt.Errorf("%w: %dm", ErrInvalidTarget, ms.TargetMilli)
		return
	}
	var total int64
	for i := range in.Pods {
		if classes[i] == classReady {
			total = addSaturating(total, ps.samples[ps.sampleOf[i]].Value)
		}
	}
	for _, j := range ps.extra {
		total = addSaturating(total, ps.samples[j].Value)
	}
	average := total / int64(used)
	ratio := float64(average) / float64(ms.TargetMilli)
	r.CurrentMilli = average
	if firstPass(current, ratio, c, tol, tuned, r) {
		return
	}
	// Missing pods count as exactly the target on a scale-down and 0 on a
	// scale-up; unready pods as 0 on a scale-up.
	count := used
	switch {
	case ratio < 1:
		total = addSaturating(total, int64(c.missing)*ms.TargetMilli)
		count += c.missing
	case ratio > 1:
		count += c.missing + c.unready
	}
	newRatio := float64(total/int64(count)) / float64(ms.TargetMilli)
	r.Proposal = settle(current, ratio, newRatio, count, tol, r)
}

// firstPass records the usage ratio of the ready pods and, when it settles
// the proposal, sets it and returns true. It settles it when every pod was
// counted (no pod without a sample, and no unready pod on a scale-up), and
// on the spinscale profile's scale-up (leaveOut). Otherwise the caller
// re-computes with the conservative assumptions for the pods left out.
func firstPass(current int32, ratio float64, c perPodCounts, tol Tolerances, tuned bool, r *MetricResult) bool {
	r.Ratio = ratio
	r.load = ratio * float64(c.ready)
	switch {
	case tuned && ratio > 1:
		r.Proposal = leaveOut(current, ratio, c.ready, tol, r)
	case c.missing > 0 || (c.unready > 0 && ratio > 1):
		return false
	case tol.within(ratio):
		r.Proposal, r.WithinTolerance = current, true
	default:
		r.Proposal = ceilInt32(ratio * float64(c.ready))
	}
	return true
}

// leaveOut is the spinscale profile's scale-up with pods that have no
// usable sample (started recently, or unready): they are left out instead of
// being counted at 0. The ready pods' samples measured the load; the pods
// without one will share it, so the load still needs ceil(ratio × ready)
// pods. Never below the current count on a scale-up.
func leaveOut(current int32, ratio float64, ready int, tol Tolerances, r *MetricResult) int32 {
	if tol.within(ratio) {
		r.WithinTolerance = true
		return current
	}
	return max(current, ceilInt32(ratio*float64(ready)))
}

// settle finishes a re-computation: keep the current count when the new
// ratio is inside tolerance or reverses the direction of the first pass, or
// when the new count would move against that direction.
func settle(current int32, ratio, newRatio float64, count int, tol Tolerances, r *MetricResult) int32 {
	if tol.within(newRatio) || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		r.WithinTolerance = tol.within(newRatio)
		return current
	}
	proposal := ceilInt32(newRatio * float64(count))
	if (newRatio < 1 && proposal > current) || (newRatio > 1 && proposal < current) {
		return current
	}
	return proposal
}

// computeValue proposes a replica count for one value for the whole app
// (HPA's External metrics): a per-pod result is summed first.
func computeValue(spec *Spec, ms *MetricSpec, in *Input, obs *Observation, now time.Time, r *MetricResult) {
	r.Kind = "value"
	value := obs.Value
	if obs.PerPod {
		value = 0
		fresh := 0
		for i := range obs.Samples {
			s := &obs.Samples[i]
			if isStale(s.Timestamp, now, spec.MaxSampleAge) {
				r.StalePods++
				continue
			}
			value = addSaturating(value, s.Value)
			fresh++
		}
		if fresh == 0 {
			if r.StalePods > 0 {
				r.Err = fmt.Errorf("%w: %d samples older than %s", ErrStale, r.StalePods, spec.MaxSampleAge)
			} else {
				r.Err = fmt.Errorf("%w: empty result", ErrNoData)
			}
			return
		}
	} else if isStale(obs.Timestamp, now, spec.MaxSampleAge) {
		r.Err = fmt.Errorf("%w: sample from %s is older than %s", ErrStale, obs.Timestamp.UTC().Format(time.RFC3339), spec.MaxSampleAge)
		return
	}
	if ms.TargetMilli <= 0 {
		r.Err = fmt.Errorf("%w: %dm", ErrInvalidTarget, ms.TargetMilli)
		return
	}
	r.CurrentMilli = value
	if ms.Target == TargetAverageValue {
		externalAverage(in.StatusReplicas, value, ms.TargetMilli, spec.Tolerance, r)
		return
	}
	externalValue(in, value, ms.TargetMilli, spec.Tolerance, r)
}

// externalValue is GetExternalMetricReplicas: ratio value/target against
// spec replicas for the tolerance, then scaled by the Running and Ready pods.
func externalValue(in *Input, value, target int64, tol Tolerances, r *MetricResult) {
	ratio := float64(value) / float64(target)
	r.Ratio = ratio
	if in.SpecReplicas == 0 {
		// At zero (an app Spinscale scaled there): ceil(ratio), with no
		// tolerance and no pods, as getUsageRatioReplicaCount.
		r.load = ratio
		r.Proposal = ceilInt32(ratio)
		return
	}
	ready := 0
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Phase == corev1.PodRunning && p.HasReadyCondition && p.Ready {
			ready++
		}
		if p.Deleting || p.Phase == corev1.PodFailed {
			r.IgnoredPods++
		}
	}
	r.ReadyPods, r.UnreadyPods = ready, len(in.Pods)-ready-r.IgnoredPods
	if tol.within(ratio) {
		r.Proposal, r.WithinTolerance = in.SpecReplicas, true
		return
	}
	if len(in.Pods) == 0 {
		r.Err = ErrNoPods
		return
	}
	// HPA would propose ceil(ratio × 0) = 0 here and scale to the minimum
	// while a rollout has no ready pod; that is a decision on missing data.
	if ready == 0 {
		r.Err = fmt.Errorf("%w to scale a value target against (%d pods)", ErrNoReadyPods, len(in.Pods))
		return
	}
	r.load = ratio * float64(ready)
	r.Proposal = ceilInt32(ratio * float64(ready))
}

// externalAverage is GetExternalPerPodMetricReplicas: the tolerance is
// checked against status replicas and the proposal is ceil(value/target).
func externalAverage(statusReplicas int32, value, target int64, tol Tolerances, r *MetricResult) {
	ratio := float64(value) / (float64(target) * float64(statusReplicas))
	r.load = float64(value) / float64(target)
	// With no status replicas the ratio is infinite (HPA goes straight to
	// ceil(value/target)); it is not reported.
	if statusReplicas > 0 {
		r.Ratio = ratio
	}
	r.Proposal = statusReplicas
	if statusReplicas > 0 {
		r.AverageMilli = int64(math.Ceil(float64(value) / float64(statusReplicas)))
	} else {
		r.AverageMilli = value
	}
	if statusReplicas > 0 && tol.within(ratio) {
		r.WithinTolerance = true
		return
	}
	r.Proposal = ceilInt32(float64(value) / float64(target))
}

// CeilReplicas rounds a load, in pods' worth, up to whole pods, and
// saturates at the int32 range. Such a load is computed from floats, and
// their noise is forgiven: (0.1 + 0.2) × 10 pods' worth needs 3 pods, not 4.
func CeilReplicas(pods float64) int32 {
	return ceilInt32(pods - 1e-9)
}

// ceilInt32 rounds up exactly, as HPA does (ratio × pods at 1.1 × 10 reads
// 11.000000000000002 and gives 12), and saturates at the int32 range.
func ceilInt32(f float64) int32 {
	c := math.Ceil(f)
	switch {
	case math.IsNaN(c) || c <= 0:
		return 0
	case c >= math.MaxInt32:
		return math.MaxInt32
	}
	return int32(c)
}

func addSaturating(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}
