package main

import (
	"bufio"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spinscale/spinscale/internal/chart"
)

// Plot geometry, in pixels.
const (
	plotW       = 1200
	panelH      = 420
	plotLeft    = 110
	plotRight   = plotW - 40
	panelTop    = 90
	panelBottom = panelH - 70
)

var (
	colSpinscale = color.RGBA{255, 127, 14, 255}
	colHPA       = color.RGBA{120, 120, 120, 255}
	colOther     = color.RGBA{31, 119, 180, 255}
)

type series struct {
	label string
	col   color.RGBA
	width int
	y     []float64 // by result; NaN = missing
}

type panel struct {
	title, yLabel string
	lines         []series
}

// writePlotFile draws three panels against N: the time until every app
// and the median app had its count, Spinscale's tick duration, and its
// RSS.
func writePlotFile(path string, rs []result) error {
	if len(rs) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	reachLine := func(g string, i int) []float64 {
		out := make([]float64, len(rs))
		for j, r := range rs {
			out[j] = math.NaN()
			if x := r.reach[g][i]; x.ok {
				out[j] = x.d.Seconds()
			}
		}
		return out
	}
	figure := func(f func(r result) float64) []float64 {
		out := make([]float64, len(rs))
		for j, r := range rs {
			out[j] = f(r)
		}
		return out
	}
	panels := []panel{
		{"time from the load step until the apps had the right count", "seconds", []series{
			{"spinscale, every app", colSpinscale, 3, reachLine(groupSpinscale, 2)},
			{"spinscale, median app", colSpinscale, 1, reachLine(groupSpinscale, 0)},
			{"HPA, every app", colHPA, 3, reachLine(groupHPA, 2)},
			{"HPA, median app", colHPA, 1, reachLine(groupHPA, 0)},
		}},
		{"Spinscale's tick duration", "seconds", []series{
			{"p99", colSpinscale, 3, figure(func(r result) float64 { return r.tickP99 })},
			{"p50", colSpinscale, 1, figure(func(r result) float64 { return r.tickP50 })},
		}},
		{"Spinscale's resident memory", "MiB", []series{
			{"peak", colOther, 3, figure(func(r result) float64 { return mib(r.rssPeak) })},
			{"steady", colOther, 1, figure(func(r result) float64 { return mib(r.rssSteady) })},
		}},
	}
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = float64(r.n)
	}
	c := chart.New(plotW, panelH*len(panels))
	for i, p := range panels {
		drawPanel(c, xs, p, i*panelH)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.Encode(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(c *chart.Canvas, xs []float64, pp panel, top int) {
	hi := 0.0
	for _, l := range pp.lines {
		for _, v := range l.y {
			if !math.IsNaN(v) {
				hi = math.Max(hi, v)
			}
		}
	}
	p := chart.Panel{X0: plotLeft, X1: plotRight, Y0: top + panelTop, Y1: top + panelBottom}
	p.XTicks = chart.NiceTicks(xs[len(xs)-1], 8)
	p.XMax = p.XTicks[len(p.XTicks)-1]
	p.YTicks = chart.NiceTicks(hi, 5)
	p.YMax = p.YTicks[len(p.YTicks)-1]
	c.Text(12, top+12, pp.title, chart.TextColor)
	c.Grid(&p, chart.FormatTick)
	xl := "apps per group (N)"
	c.Text((plotLeft+plotRight)/2-c.Width(xl)/2, p.Y1+8+chart.LineHeight, xl, chart.TextColor)
	c.Text(12, p.Y0-chart.LineHeight-8-chart.LineHeight, pp.yLabel, chart.TextColor)
	var legend []chart.LegendEntry
	for _, l := range pp.lines {
		prev := -1
		for j, v := range l.y {
			if math.IsNaN(v) {
				continue
			}
			x, y := p.X(xs[j]), p.Y(v)
			c.Marker(x, y, 7, l.col)
			if prev >= 0 {
				c.Line(p.X(xs[prev]), p.Y(l.y[prev]), x, y, l.width, l.col)
			}
			prev = j
		}
		legend = append(legend, chart.LegendEntry{Label: l.label, Color: l.col, Width: l.width + 2})
	}
	c.Legend(&p, "", legend)
}

// machine describes the host: CPU model and count, memory.
func machine() string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	mem := ""
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscan(rest, &kb); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
				break
			}
		}
		_ = f.Close()
	}
	s := fmt.Sprintf("%d cores", runtime.NumCPU())
	if model != "" {
		s += " (" + model + ")"
	}
	if mem != "" {
		s += ", " + mem + " RAM"
	}
	return s + ", " + runtime.Version()
}
