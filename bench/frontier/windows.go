package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"

	"github.com/spinscale/spinscale/bench/internal/tracedata"
)

// A window is a stretch of one real trace, scaled to a stated mean load and
// paired with an app's start-up time: one load the policies are scored on.
type window struct {
	// ID numbers the windows in drawing order: w01, w02, …
	ID string
	// Trace names the real trace; Start and Length are seconds of it.
	Trace         string
	Start, Length int
	// Busy is true when the window's raw mean is above the trace's median
	// hourly mean.
	Busy bool
	// Mean is the load the window is scaled to average, in requests/s;
	// Scale the factor that does it.
	Mean, Scale float64
	// Bucket is the averaging step, in seconds, of the stored load: long
	// enough that a bucket holds about minCountsPerBucket raw counts, so
	// that scaling a quiet trace up does not scale its Poisson noise up.
	Bucket int
	// StartupSeconds is the app's pod start-up time.
	StartupSeconds int
	// Tuning is true for the tuning split; the others are held out.
	Tuning bool
	// Phase places the metric samples against the controller's clock: a
	// fraction of the metric resolution, drawn per window, since in a
	// cluster the two clocks are not aligned.
	Phase float64
	// Loads holds one value per Bucket seconds: the average over it.
	Loads []float64
}

// Drawing rules.
const (
	minWindowSeconds = 3600
	maxWindowSeconds = 7200
	// gapMinutes consecutive minutes without a single count are a gap in
	// the collection, not traffic: a window holding one is drawn again.
	gapMinutes = 3
	// minCountsPerBucket raw counts per stored value keep the Poisson
	// noise of the scaled load near 10%.
	minCountsPerBucket = 100
)

// The choices a window draws from: its scaled mean load (about 2, 5 and 10
// pods at 350 requests/s a pod) and its app's start-up time.
var (
	meanLoads      = []float64{700, 1750, 3500}
	startupChoices = []int{5, 10, 20, 30}
	bucketLadder   = []int{1, 5, 10, 15, 30, 60, 120, 300}
)

// seen are the stretches of the real traces that bench/traces holds as
// standard scenarios: the spinscale profile's defaults were tuned on them,
// so no window may overlap one.
var seen = map[string][][2]int{
	"nasa":    {{1069172, 1072772}, {1061895, 1065495}},
	"twitter": {{1766949, 1770549}, {630217, 633817}},
}

// drawWindows draws n windows, half from each real trace and within each
// half as many busy as calm ones, and puts one in tuneEvery into the tuning
// split. The same seed and data give the same windows.
func drawWindows(dataDir string, n int, seed uint64, tuneEvery int) ([]window, error) {
	var out []window
	for ti, a := range tracedata.Archives {
		counts, err := tracedata.ReadCounts(filepath.Join(dataDir, a.File))
		if err != nil {
			return nil, err
		}
		quota := n / len(tracedata.Archives)
		if ti < n%len(tracedata.Archives) {
			quota++
		}
		ws, err := drawFrom(a.Name, counts, quota, rand.New(rand.NewPCG(seed, uint64(ti)+1)))
		if err != nil {
			return nil, err
		}
		out = append(out, ws...)
	}
	// The split is drawn apart from the windows, so that changing the
	// split's size does not change the windows.
	perm := rand.New(rand.NewPCG(seed, 99)).Perm(len(out))
	for rank, i := range perm {
		out[i].Tuning = tuneEvery > 0 && rank%tuneEvery == 0
	}
	phases := rand.New(rand.NewPCG(seed, 100))
	for i := range out {
		out[i].ID = fmt.Sprintf("w%02d", i+1)
		out[i].Phase = phases.Float64()
	}
	return out, nil
}

// drawFrom draws quota windows from one trace.
func drawFrom(name string, counts []float64, quota int, rng *rand.Rand) ([]window, error) {
	n := len(counts)
	if n < 4*maxWindowSeconds {
		return nil, fmt.Errorf("%s: %d seconds: too short to draw windows from", name, n)
	}
	cum := tracedata.Prefix(counts)
	median := medianHourlyMean(cum)
	gapSpans := gaps(counts)

	busyLeft, calmLeft := (quota+1)/2, quota/2
	var out []window
	for tries := 0; busyLeft+calmLeft > 0; tries++ {
		if tries > 1000*quota {
			return nil, fmt.Errorf("%s: found %d of %d windows without gaps", name, len(out), quota)
		}
		length := minWindowSeconds + 60*rng.IntN((maxWindowSeconds-minWindowSeconds)/60+1)
		start := rng.IntN(n - length)
		mean := rng.IntN(len(meanLoads))
		startup := rng.IntN(len(startupChoices))
		if overlaps(seen[name], start, start+length) || overlaps(gapSpans, start, start+length) || overlapsAny(out, start, start+length) {
			continue
		}
		raw := (cum[start+length] - cum[start]) / float64(length)
		if raw <= 0 {
			continue
		}
		busy := raw > median
		if busy && busyLeft == 0 || !busy && calmLeft == 0 {
			continue
		}
		if busy {
			busyLeft--
		} else {
			calmLeft--
		}
		w := window{Trace: name, Start: start, Length: length, Busy: busy, Mean: meanLoads[mean], StartupSeconds: startupChoices[startup]}
		w.Scale = w.Mean / raw
		w.Bucket = bucketLadder[len(bucketLadder)-1]
		for _, b := range bucketLadder {
			if raw*float64(b) >= minCountsPerBucket {
				w.Bucket = b
				break
			}
		}
		for t := 0; t < length; t += w.Bucket {
			e := min(t+w.Bucket, length)
			w.Loads = append(w.Loads, math.Round((cum[start+e]-cum[start+t])/float64(e-t)*w.Scale*10)/10)
		}
		out = append(out, w)
	}
	// In time order within the trace: easier to read, and independent of
	// the order of acceptance.
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// medianHourlyMean is the median of the trace's hourly means (whole hours
// from its start).
func medianHourlyMean(cum []float64) float64 {
	var means []float64
	for s := 0; s+3600 < len(cum); s += 3600 {
		means = append(means, (cum[s+3600]-cum[s])/3600)
	}
	slices.Sort(means)
	return means[len(means)/2]
}

// gaps returns every run of gapMinutes or more empty minutes, as the
// seconds [start, end) it spans.
func gaps(counts []float64) [][2]int {
	var out [][2]int
	run := 0
	for m := 0; (m+1)*60 <= len(counts); m++ {
		empty := true
		for _, c := range counts[m*60 : (m+1)*60] {
			if c != 0 {
				empty = false
				break
			}
		}
		if empty {
			run++
			continue
		}
		if run >= gapMinutes {
			out = append(out, [2]int{(m - run) * 60, m * 60})
		}
		run = 0
	}
	return out
}

func overlaps(spans [][2]int, a, b int) bool {
	for _, s := range spans {
		if a < s[1] && s[0] < b {
			return true
		}
	}
	return false
}

func overlapsAny(ws []window, a, b int) bool {
	for _, w := range ws {
		if a < w.Start+w.Length && w.Start < b {
			return true
		}
	}
	return false
}
