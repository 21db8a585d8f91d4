package simulate

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"github.com/spinscale/spinscale/internal/chart"
)

// Plot geometry, in pixels.
const (
	plotW     = 1200
	plotH     = 800
	plotLeft  = 96
	plotRight = plotW - 36
)

var (
	colLoad     = color.RGBA{20, 20, 20, 255}
	colCapacity = color.RGBA{31, 119, 180, 255}
	colUnserved = color.RGBA{244, 182, 182, 255}
	colReplicas = color.RGBA{255, 127, 14, 255}
	colReady    = color.RGBA{31, 119, 180, 255}
	colOracle   = color.RGBA{190, 190, 190, 255}
)

// WritePlot draws the simulation as a PNG: the load and the Ready pods'
// capacity (ready × capacityPerPod) on top, unserved demand shaded; the
// replicas, Ready pods and the oracle's count below; both over time. title
// names the scenario.
func WritePlot(w io.Writer, r *TraceResult, capacityPerPod float64, title string) error {
	c := chart.New(plotW, plotH)

	tl := r.Timeline
	dur := float64(max(len(tl), 1))
	s := &r.Summary
	c.Text(plotLeft, 10, title, chart.TextColor)
	c.Text(plotLeft, 10+chart.LineHeight+4, fmt.Sprintf("cost ratio %s (%s pod-s, oracle %s) | under-provisioned %s pod-s, %s s",
		strconv.FormatFloat(s.CostRatio, 'f', 2, 64), fmtFig(math.Round(s.PodSeconds)), fmtFig(math.Round(s.OraclePodSeconds)),
		fmtFig(math.Round(s.UnderProvisionedPodSeconds*10)/10), fmtFig(s.UnderProvisionedSeconds)), chart.AxisColor)
	c.Text(plotLeft, 10+2*chart.LineHeight+4, fmt.Sprintf("%d scale actions, %d reversals | first scale-up at %s s",
		s.ScaleActions, s.Reversals, fmtOpt(s.FirstScaleUpSeconds)), chart.AxisColor)

	// Top panel: load and capacity.
	maxLoad := 1.0
	maxPods := 1.0
	for i := range tl {
		maxLoad = max(maxLoad, tl[i].Load, float64(tl[i].Ready)*capacityPerPod)
		maxPods = max(maxPods, float64(tl[i].Replicas), float64(tl[i].Oracle))
	}
	xAxis := timeAxis(dur)
	top := chart.Panel{X0: plotLeft, X1: plotRight, Y0: 130, Y1: 430, XMax: dur, XTicks: xAxis.ticks, YTicks: chart.NiceTicks(maxLoad, 6)}
	bottom := chart.Panel{X0: plotLeft, X1: plotRight, Y0: 500, Y1: 720, XMax: dur, XTicks: xAxis.ticks, YTicks: chart.IntegerTicks(chart.NiceTicks(maxPods, 5))}
	for _, p := range []*chart.Panel{&top, &bottom} {
		p.YMax = p.YTicks[len(p.YTicks)-1]
	}
	c.Grid(&top, nil)
	// The time axis is labelled under the bottom panel only.
	c.Grid(&bottom, xAxis.label)

	// Unserved demand: between capacity and load.
	for i := range tl {
		capNow := float64(tl[i].Ready) * capacityPerPod
		if tl[i].Load > capNow {
			xa, xb := top.X(float64(tl[i].T)), top.X(float64(tl[i].T+1))
			c.FillRect(xa, top.Y(tl[i].Load), max(xb, xa+1), top.Y(capNow), colUnserved)
		}
	}
	steps(c, &top, tl, func(s *Second) float64 { return float64(s.Ready) * capacityPerPod }, colCapacity, 2)
	polyline(c, &top, tl, func(s *Second) float64 { return s.Load }, colLoad, 2)
	c.Legend(&top, "load", []chart.LegendEntry{{Label: "load", Color: colLoad, Width: 2}, {Label: "ready capacity (ready pods × capacityPerPod)", Color: colCapacity, Width: 2}, {Label: "unserved", Color: colUnserved, Width: 8}})

	steps(c, &bottom, tl, func(s *Second) float64 { return float64(s.Oracle) }, colOracle, 6)
	// Replicas drawn wide under the Ready pods, so both show where equal.
	steps(c, &bottom, tl, func(s *Second) float64 { return float64(s.Replicas) }, colReplicas, 5)
	steps(c, &bottom, tl, func(s *Second) float64 { return float64(s.Ready) }, colReady, 2)
	c.Legend(&bottom, "pods", []chart.LegendEntry{{Label: "replicas (all pods)", Color: colReplicas, Width: 5}, {Label: "ready pods", Color: colReady, Width: 2}, {Label: "oracle", Color: colOracle, Width: 6}})

	xl := "time (" + xAxis.unit + ")"
	c.Text((plotLeft+plotRight)/2-c.Width(xl)/2, bottom.Y1+8+chart.LineHeight+4, xl, chart.TextColor)
	return c.Encode(w)
}

// axis is the time axis: tick positions in seconds, labelled in unit.
type axis struct {
	ticks []float64
	unit  string
	scale float64
}

func (a axis) label(t float64) string { return chart.FormatTick(t / a.scale) }

// timeAxis labels in seconds, minutes or hours, whichever reads best.
func timeAxis(dur float64) axis {
	a := axis{unit: "s", scale: 1}
	switch {
	case dur > 3*3600:
		a.unit, a.scale = "h", 3600
	case dur > 900:
		a.unit, a.scale = "min", 60
	}
	for _, v := range chart.NiceTicks(dur/a.scale, 10) {
		if v*a.scale <= dur+1e-9 {
			a.ticks = append(a.ticks, v*a.scale)
		}
	}
	return a
}

// polyline joins the value of every second.
func polyline(c *chart.Canvas, p *chart.Panel, tl []Second, v func(*Second) float64, col color.RGBA, width int) {
	for i := range tl {
		x, y := p.X(float64(tl[i].T)+0.5), p.Y(v(&tl[i]))
		if i == 0 {
			c.Line(p.X(0), y, x, y, width, col)
			continue
		}
		c.Line(p.X(float64(tl[i-1].T)+0.5), p.Y(v(&tl[i-1])), x, y, width, col)
	}
}

// steps draws a value that holds for each whole second.
func steps(c *chart.Canvas, p *chart.Panel, tl []Second, v func(*Second) float64, col color.RGBA, width int) {
	for i := range tl {
		y := p.Y(v(&tl[i]))
		xa, xb := p.X(float64(tl[i].T)), p.X(float64(tl[i].T+1))
		c.Line(xa, y, xb, y, width, col)
		if i > 0 {
			if yp := p.Y(v(&tl[i-1])); yp != y {
				c.Line(xa, yp, xa, y, width, col)
			}
		}
	}
}
