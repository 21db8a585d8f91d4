// Command generate writes the standard load traces of the scaling-quality
// bench (bench/traces/*.csv): synthetic shapes, and windows of two real
// per-second request-rate traces. Its output is deterministic; the CSVs are
// committed, so the bench never needs the archives.
//
// Usage, from the repository root:
//
//	go run ./bench/traces [-data ../shared/traces] [-out bench/traces]
//
// -data is the directory holding nasa-1995-per-second.tbz2 and
// twitter-stream-per-second.tbz2 (each a tar.bz2 with one workload.txt of
// space-separated per-second counts); they are read in place. See
// bench/traces/README.md for what each trace is and where it comes from.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spinscale/spinscale/bench/internal/tracedata"
)

const (
	// busiestHourMean is the request rate, per second, the busiest hour
	// of each real trace is scaled to average; the same factor applies to
	// the trace's other window.
	busiestHourMean = 3000.0
	// windowSeconds is the length of each real window.
	windowSeconds = 3600
	// riseAverage, riseSpan: the steepest rise is the largest increase of
	// the riseAverage-second moving average over riseSpan seconds.
	riseAverage = 600
	riseSpan    = 1800
	// riseFloor excludes windows with a minute below this fraction of the
	// trace's overall mean: those are collection gaps, and the "rise"
	// after one is the collector restarting, not traffic.
	riseFloor = 0.3
	// riseLead is how long before the rise its window starts: none, the
	// rise and the plateau it reaches fill the hour.
	riseLead = 0
	// riseAway keeps the rise window this far from the busiest hour, so
	// the two windows differ.
	riseAway = 2 * 3600
)

func main() {
	data := flag.String("data", "../shared/traces", "directory holding nasa-1995-per-second.tbz2 and twitter-stream-per-second.tbz2")
	out := flag.String("out", "bench/traces", "directory to write the CSV files into")
	flag.Parse()
	if err := run(*data, *out); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(data, out string) error {
	for _, s := range synthetic() {
		if err := write(filepath.Join(out, s.name+".csv"), s.header, s.points); err != nil {
			return err
		}
	}
	// Each real window is stored as averages over step seconds: that keeps
	// a file small, and scaling the counts up must not scale up their
	// noise too much. NASA's busiest hour has 4 requests a second: scaled
	// 700-fold, per-second Poisson noise would be ±25%, where an app really
	// serving 3000 requests/s sees ±2%; 30 s averages bring it to ±9% and
	// keep every minute-scale feature. Twitter's 177 a second need only
	// 5 s averages (±3%).
	steps := map[string]int{"nasa": 30, "twitter": 5}
	for _, r := range tracedata.Archives {
		counts, err := tracedata.ReadCounts(filepath.Join(data, r.File))
		if err != nil {
			return err
		}
		if err := writeReal(out, r.Name, r.File, r.Source, steps[r.Name], counts); err != nil {
			return err
		}
	}
	return nil
}

type point struct{ at, load float64 }

type trace struct {
	name   string
	header []string
	points []point
}

// synthetic returns the designed shapes. Loads are in the unit of the
// scenario that replays them (requests/s, users or connections).
func synthetic() []trace {
	var out []trace

	// A 10× step up at 60 s, and back down at 600 s.
	out = append(out, trace{"step-10x", []string{
		"step-10x: 300 requests/s, 3000 from 60 s (a 10x step), back to 300 at 600 s; 1200 s",
	}, []point{{0, 300}, {60, 300}, {60, 3000}, {600, 3000}, {600, 300}, {1200, 300}}})

	// k6-style ramps of virtual users, each user one request per second.
	for _, ramp := range []float64{120, 240} {
		end := ramp + 300
		out = append(out, trace{fmt.Sprintf("ramp-%.0fs", ramp), []string{
			fmt.Sprintf("ramp-%.0fs: 0 to 1400 users over %.0f s, held 300 s, then stopped; idle until %.0f s", ramp, ramp, end+360),
			"one user = one request per second",
		}, []point{{0, 0}, {ramp, 1400}, {end, 1400}, {end, 0}, {end + 360, 0}}})
	}

	// The SpinKube autoscaling tutorial's load: `bombardier -c 40 -t 3m`.
	out = append(out, trace{"connections-40", []string{
		"connections-40: 40 concurrent connections for 3 minutes (bombardier -c 40 -t 3m, as in SpinKube's HPA tutorial), from 30 s; idle until 600 s",
		"the unit is one busy connection",
	}, []point{{0, 0}, {30, 0}, {30, 40}, {210, 40}, {210, 0}, {600, 0}}})

	// A day: quiet at 04:00, busiest at 16:00, with ±5% of deterministic
	// noise, one point a minute.
	var day []point
	rng := lcg(1995)
	for m := 0; m <= 24*60; m++ {
		h := float64(m) / 60
		shape := 0.5 - 0.5*math.Cos(2*math.Pi*(h-4)/24)
		load := (400 + 5600*shape*shape) * (1 + 0.05*(2*rng()-1))
		day = append(day, point{float64(m * 60), round1(load)})
	}
	out = append(out, trace{"diurnal", []string{
		"diurnal: one day, 400 requests/s at 04:00 to 6000 at 16:00 (raised-cosine squared), ±5% deterministic noise, one point a minute",
	}, day})

	// Short spikes over a steady 300 requests/s, with 2 s edges.
	spikes := []point{{0, 300}}
	for _, s := range []struct{ at, length, load float64 }{{120, 10, 3000}, {420, 30, 1500}, {720, 60, 2400}, {1200, 20, 4000}} {
		spikes = append(spikes, point{s.at, 300}, point{s.at + 2, s.load}, point{s.at + s.length - 2, s.load}, point{s.at + s.length, 300})
	}
	spikes = append(spikes, point{1800, 300})
	out = append(out, trace{"spikes", []string{
		"spikes: 300 requests/s with spikes of 10 s at 3000 (t=120), 30 s at 1500 (420), 60 s at 2400 (720), 20 s at 4000 (1200); 1800 s",
	}, spikes})

	// A slow rise and a quick fall, every 8 minutes: HPA's 5-minute
	// scale-down window lets go of each peak while the next rise is under
	// way, baiting a scale-down just before the pods are needed again.
	saw := []point{{0, 400}}
	for p := 0.0; p < 2400; p += 480 {
		saw = append(saw, point{p + 420, 4000}, point{p + 480, 400})
	}
	out = append(out, trace{"sawtooth", []string{
		"sawtooth: 400 to 4000 requests/s over 420 s, back to 400 in 60 s, five times (period 480 s); 2400 s",
	}, saw})
	return out
}

// writeReal extracts the busiest hour and the steepest rise of one real
// trace.
func writeReal(out, name, archive, source string, step int, counts []float64) error {
	n := len(counts)
	if n < 4*windowSeconds {
		return fmt.Errorf("%s: %d seconds: too short", archive, n)
	}
	cum := tracedata.Prefix(counts)
	mean := cum[n] / float64(n)

	busiest := 0
	for i := 0; i+windowSeconds <= n; i++ {
		if cum[i+windowSeconds]-cum[i] > cum[busiest+windowSeconds]-cum[busiest] {
			busiest = i
		}
	}
	scale := busiestHourMean / ((cum[busiest+windowSeconds] - cum[busiest]) / windowSeconds)

	// m[i] is the average of [i, i+riseAverage); minute[i] the average of
	// [i, i+60), and low[i] the lowest minute of the hour from i (a
	// sliding-window minimum): a window is eligible when none of its
	// minutes looks like a gap.
	m := make([]float64, n-riseAverage+1)
	for i := range m {
		m[i] = (cum[i+riseAverage] - cum[i]) / riseAverage
	}
	minute := make([]float64, n-60+1)
	for i := range minute {
		minute[i] = (cum[i+60] - cum[i]) / 60
	}
	low := slidingMin(minute, windowSeconds-60+1)
	rise, best := -1, math.Inf(-1)
	for i := riseLead; i+riseSpan < len(m) && i-riseLead+windowSeconds <= n; i++ {
		if abs(i-busiest) < riseAway || low[i-riseLead] < riseFloor*mean {
			continue
		}
		if d := m[i+riseSpan] - m[i]; d > best {
			rise, best = i, d
		}
	}
	if rise < 0 {
		return fmt.Errorf("%s: no rise found", archive)
	}
	riseStart := rise - riseLead

	for _, w := range []struct {
		suffix, what string
		start        int
	}{
		{"busiest-hour", "the hour with the most requests", busiest},
		{"steepest-rise", fmt.Sprintf("the steepest rise: the %d s moving average grew by %.1f/s (raw) over %d s from second %d, more than %d h from the busiest hour, in an hour where no minute falls below %.0f%% of the trace's mean (such a minute is a collection gap); the window starts at the rise",
			riseAverage, best, riseSpan, rise, riseAway/3600, riseFloor*100), riseStart},
	} {
		var pts []point
		for t := 0; t < windowSeconds; t += step {
			sum := cum[w.start+t+step] - cum[w.start+t]
			pts = append(pts, point{float64(t), round1(sum / float64(step) * scale)})
		}
		header := []string{
			fmt.Sprintf("%s-%s: %s", name, w.suffix, source),
			fmt.Sprintf("window: seconds %d to %d of %s (day %.2f of %.1f): %s", w.start, w.start+windowSeconds, archive, float64(w.start)/86400, float64(n)/86400, w.what),
			fmt.Sprintf("scaled x%.3f so the trace's busiest hour averages %.0f requests/s; %d s averages (at = start of each)", scale, busiestHourMean, step),
		}
		if err := write(filepath.Join(out, name+"-"+w.suffix+".csv"), header, pts); err != nil {
			return err
		}
	}
	return nil
}

// slidingMin returns, for each i, the minimum of v[i : i+w] (clipped).
func slidingMin(v []float64, w int) []float64 {
	out := make([]float64, len(v))
	var dq []int // indices of increasing values
	for i := len(v) - 1; i >= 0; i-- {
		for len(dq) > 0 && v[dq[len(dq)-1]] >= v[i] {
			dq = dq[:len(dq)-1]
		}
		dq = append(dq, i)
		for dq[0] >= i+w {
			dq = dq[1:]
		}
		out[i] = v[dq[0]]
	}
	return out
}

func write(path string, header []string, pts []point) error {
	var b strings.Builder
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	b.WriteString("# generated by bench/traces/generate.go\n")
	b.WriteString("at,load\n")
	for _, p := range pts {
		b.WriteString(strconv.FormatFloat(p.at, 'f', -1, 64) + "," + strconv.FormatFloat(p.load, 'f', -1, 64) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d points\n", path, len(pts))
	return nil
}

// lcg is a small deterministic random source in [0, 1).
func lcg(seed uint64) func() float64 {
	s := seed
	return func() float64 {
		s = s*6364136223846793005 + 1442695040888963407
		return float64(s>>11) / (1 << 53)
	}
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
