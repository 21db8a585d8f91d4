package main

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"github.com/spinscale/spinscale/internal/chart"
)

// plotLine is one policy's points, by target.
type plotLine struct {
	name   string
	points []point
}

// plotPanel is one split and metric setup: HPA's frontier and the policies.
type plotPanel struct {
	title    string
	hpa      []point
	policies []plotLine
}

// Plot geometry, in pixels.
const (
	plotW       = 1200
	panelH      = 520
	plotLeft    = 110
	plotRight   = plotW - 40
	panelTop    = 90
	panelBottom = panelH - 80
)

var (
	colHPA      = color.RGBA{120, 120, 120, 255}
	colPolicies = []color.RGBA{{255, 127, 14, 255}, {31, 119, 180, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255}}
)

// writePlot draws one panel per split and setup: pod-seconds across,
// under-provisioned pod-seconds up, a line per policy through its targets,
// HPA's frontier in grey. Lower and further left is better; a policy under
// the grey line does better than any retuning of HPA.
func writePlot(w io.Writer, panels []plotPanel) error {
	if len(panels) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	c := chart.New(plotW, panelH*len(panels))
	for i := range panels {
		drawPanel(c, &panels[i], i*panelH)
	}
	return c.Encode(w)
}

func drawPanel(c *chart.Canvas, pp *plotPanel, top int) {
	lo, hi, maxUnder := math.Inf(1), 0.0, 0.0
	lines := append([]plotLine{{name: "hpa (its frontier: every target)", points: pp.hpa}}, pp.policies...)
	for _, l := range lines {
		for _, p := range l.points {
			lo, hi = math.Min(lo, p.PodSeconds), math.Max(hi, p.PodSeconds)
			maxUnder = math.Max(maxUnder, p.Under)
		}
	}
	// Pod-seconds are shown in thousands.
	const k = 1000
	p := chart.Panel{X0: plotLeft, X1: plotRight, Y0: top + panelTop, Y1: top + panelBottom}
	p.XTicks = chart.NiceTicksFrom(lo/k, hi/k, 8)
	p.XMin, p.XMax = p.XTicks[0], p.XTicks[len(p.XTicks)-1]
	p.YTicks = chart.NiceTicks(maxUnder, 5)
	p.YMax = p.YTicks[len(p.YTicks)-1]
	c.Text(12, top+12, pp.title, chart.TextColor)
	c.Grid(&p, chart.FormatTick)
	xl := "pod-seconds (thousands), summed over the windows"
	c.Text((plotLeft+plotRight)/2-c.Width(xl)/2, p.Y1+8+chart.LineHeight+4, xl, chart.TextColor)
	c.Text(12, p.Y0-chart.LineHeight-8-chart.LineHeight, "under-provisioned pod-s", chart.TextColor)

	var legend []chart.LegendEntry
	for i, l := range lines {
		col, width := colHPA, 3
		if i > 0 {
			col, width = colPolicies[(i-1)%len(colPolicies)], 2
		}
		for j, pt := range l.points {
			x, y := p.X(pt.PodSeconds/k), p.Y(pt.Under)
			c.Marker(x, y, 7, col)
			if j > 0 {
				prev := l.points[j-1]
				c.Line(p.X(prev.PodSeconds/k), p.Y(prev.Under), x, y, width, col)
			}
			// HPA's targets are labelled; the policies' run at the same
			// ones, from the right.
			if i == 0 {
				label := fmt.Sprintf("%d%%", pt.Target)
				c.Text(x+6, y-chart.TextHeight-4, label, col)
			}
		}
		legend = append(legend, chart.LegendEntry{Label: l.name, Color: col, Width: width + 2})
	}
	c.Legend(&p, "", legend)
}
