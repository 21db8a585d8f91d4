package simulate

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot geometry, in pixels.
const (
	plotW       = 1200
	plotH       = 800
	plotLeft    = 96
	plotRight   = plotW - 36
	textScale   = 2
	charAdvance = (glyphW + 1) * textScale
	lineHeight  = (glyphH + 4) * textScale
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colAxis       = color.RGBA{60, 60, 60, 255}
	colGrid       = color.RGBA{228, 228, 228, 255}
	colText       = color.RGBA{30, 30, 30, 255}
	colLoad       = color.RGBA{20, 20, 20, 255}
	colCapacity   = color.RGBA{31, 119, 180, 255}
	colUnserved   = color.RGBA{244, 182, 182, 255}
	colReplicas   = color.RGBA{255, 127, 14, 255}
	colReady      = color.RGBA{31, 119, 180, 255}
	colOracle     = color.RGBA{190, 190, 190, 255}
)

// WritePlot draws the simulation as a PNG: the load and the Ready pods'
// capacity (ready × capacityPerPod) on top, unserved demand shaded; the
// replicas, Ready pods and the oracle's count below; both over time. title
// names the scenario.
func WritePlot(w io.Writer, r *TraceResult, capacityPerPod float64, title string) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBackground}, image.Point{}, draw.Src)
	c := &canvas{img: img}

	tl := r.Timeline
	dur := float64(max(len(tl), 1))
	s := &r.Summary
	c.text(plotLeft, 10, title, colText)
	c.text(plotLeft, 10+lineHeight+4, fmt.Sprintf("cost ratio %s (%s pod-s, oracle %s) | under-provisioned %s pod-s, %s s",
		strconv.FormatFloat(s.CostRatio, 'f', 2, 64), fmtFig(math.Round(s.PodSeconds)), fmtFig(math.Round(s.OraclePodSeconds)),
		fmtFig(math.Round(s.UnderProvisionedPodSeconds*10)/10), fmtFig(s.UnderProvisionedSeconds)), colAxis)
	c.text(plotLeft, 10+2*lineHeight+4, fmt.Sprintf("%d scale actions, %d reversals | first scale-up at %s s",
		s.ScaleActions, s.Reversals, fmtOpt(s.FirstScaleUpSeconds)), colAxis)

	// Top panel: load and capacity.
	maxLoad := 1.0
	maxPods := 1.0
	for i := range tl {
		maxLoad = max(maxLoad, tl[i].Load, float64(tl[i].Ready)*capacityPerPod)
		maxPods = max(maxPods, float64(tl[i].Replicas), float64(tl[i].Oracle))
	}
	xAxis := timeAxis(dur)
	top := panel{x0: plotLeft, x1: plotRight, y0: 130, y1: 430, dur: dur, yTicks: niceTicks(maxLoad, 6)}
	bottom := panel{x0: plotLeft, x1: plotRight, y0: 500, y1: 720, dur: dur, yTicks: niceTicks(maxPods, 5)}
	bottom.yTicks = integerTicks(bottom.yTicks)
	for _, p := range []*panel{&top, &bottom} {
		p.ymax = p.yTicks[len(p.yTicks)-1]
		c.grid(p, xAxis)
	}

	// Unserved demand: between capacity and load.
	for i := range tl {
		capNow := float64(tl[i].Ready) * capacityPerPod
		if tl[i].Load > capNow {
			xa, xb := top.x(float64(tl[i].T)), top.x(float64(tl[i].T+1))
			c.fillRect(xa, top.y(tl[i].Load), max(xb, xa+1), top.y(capNow), colUnserved)
		}
	}
	c.steps(&top, tl, func(s *Second) float64 { return float64(s.Ready) * capacityPerPod }, colCapacity, 2)
	c.polyline(&top, tl, func(s *Second) float64 { return s.Load }, colLoad, 2)
	c.legend(&top, "load", []legendEntry{{"load", colLoad, 2}, {"ready capacity (ready pods × capacityPerPod)", colCapacity, 2}, {"unserved", colUnserved, 8}})

	c.steps(&bottom, tl, func(s *Second) float64 { return float64(s.Oracle) }, colOracle, 6)
	// Replicas drawn wide under the Ready pods, so both show where equal.
	c.steps(&bottom, tl, func(s *Second) float64 { return float64(s.Replicas) }, colReplicas, 5)
	c.steps(&bottom, tl, func(s *Second) float64 { return float64(s.Ready) }, colReady, 2)
	c.legend(&bottom, "pods", []legendEntry{{"replicas (all pods)", colReplicas, 5}, {"ready pods", colReady, 2}, {"oracle", colOracle, 6}})

	// The time axis, labelled under the bottom panel.
	for _, tv := range xAxis.ticks {
		x := bottom.x(tv)
		label := xAxis.label(tv)
		c.text(x-c.width(label)/2, bottom.y1+8, label, colText)
	}
	xl := "time (" + xAxis.unit + ")"
	c.text((plotLeft+plotRight)/2-c.width(xl)/2, bottom.y1+8+lineHeight+4, xl, colText)

	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// panel is one chart area: seconds [0, dur) across, [0, ymax] up.
type panel struct {
	x0, y0, x1, y1 int
	dur, ymax      float64
	yTicks         []float64
}

func (p *panel) x(t float64) int {
	return p.x0 + int(math.Round(t/p.dur*float64(p.x1-p.x0)))
}

func (p *panel) y(v float64) int {
	return p.y1 - int(math.Round(v/p.ymax*float64(p.y1-p.y0)))
}

// axis is the time axis: tick positions in seconds, labelled in unit.
type axis struct {
	ticks []float64
	unit  string
	scale float64
}

func (a axis) label(t float64) string { return fmtTick(t / a.scale) }

// timeAxis labels in seconds, minutes or hours, whichever reads best.
func timeAxis(dur float64) axis {
	a := axis{unit: "s", scale: 1}
	switch {
	case dur > 3*3600:
		a.unit, a.scale = "h", 3600
	case dur > 900:
		a.unit, a.scale = "min", 60
	}
	for _, v := range niceTicks(dur/a.scale, 10) {
		if v*a.scale <= dur+1e-9 {
			a.ticks = append(a.ticks, v*a.scale)
		}
	}
	return a
}

// niceTicks returns 0, step, 2·step, … up to the first tick at or above
// hi, with a step of 1, 2 or 5 × 10^k giving about n intervals.
func niceTicks(hi float64, n int) []float64 {
	if hi <= 0 {
		hi = 1
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	var out []float64
	for i := 0; ; i++ {
		v := float64(i) * step
		out = append(out, v)
		if v >= hi-1e-9 {
			return out
		}
	}
}

// integerTicks keeps pod-count ticks whole: a step below 1 becomes 1.
func integerTicks(t []float64) []float64 {
	if len(t) < 2 || t[1] >= 1 {
		return t
	}
	hi := t[len(t)-1]
	var out []float64
	for v := 0.0; ; v++ {
		out = append(out, v)
		if v >= hi {
			return out
		}
	}
}

func fmtTick(v float64) string {
	if math.Abs(v) >= 10000 && v == math.Trunc(v) && math.Mod(v, 1000) == 0 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// canvas draws on an RGBA image, clipping to its bounds.
type canvas struct {
	img *image.RGBA
}

func (c *canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

func (c *canvas) fillRect(x0, y0, x1, y1 int, col color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1+1), &image.Uniform{col}, image.Point{}, draw.Over)
}

// line draws a segment of the given width (a square brush).
func (c *canvas) line(x0, y0, x1, y1, width int, col color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	lo, hi := -(width-1)/2, width/2
	e := dx + dy
	for {
		for i := lo; i <= hi; i++ {
			for j := lo; j <= hi; j++ {
				c.set(x0+i, y0+j, col)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// polyline joins the value of every second.
func (c *canvas) polyline(p *panel, tl []Second, v func(*Second) float64, col color.RGBA, width int) {
	for i := range tl {
		x, y := p.x(float64(tl[i].T)+0.5), p.y(v(&tl[i]))
		if i == 0 {
			c.line(p.x(0), y, x, y, width, col)
			continue
		}
		c.line(p.x(float64(tl[i-1].T)+0.5), p.y(v(&tl[i-1])), x, y, width, col)
	}
}

// steps draws a value that holds for each whole second.
func (c *canvas) steps(p *panel, tl []Second, v func(*Second) float64, col color.RGBA, width int) {
	for i := range tl {
		y := p.y(v(&tl[i]))
		xa, xb := p.x(float64(tl[i].T)), p.x(float64(tl[i].T+1))
		c.line(xa, y, xb, y, width, col)
		if i > 0 {
			if yp := p.y(v(&tl[i-1])); yp != y {
				c.line(xa, yp, xa, y, width, col)
			}
		}
	}
}

// grid draws the panel's frame, grid lines and y labels.
func (c *canvas) grid(p *panel, xa axis) {
	for _, v := range p.yTicks {
		y := p.y(v)
		c.line(p.x0, y, p.x1, y, 1, colGrid)
		label := fmtTick(v)
		c.text(p.x0-10-c.width(label), y-glyphH*textScale/2, label, colText)
	}
	for _, t := range xa.ticks {
		x := p.x(t)
		c.line(x, p.y0, x, p.y1, 1, colGrid)
		c.line(x, p.y1, x, p.y1+5, 1, colAxis)
	}
	c.line(p.x0, p.y0, p.x0, p.y1, 1, colAxis)
	c.line(p.x0, p.y1, p.x1, p.y1, 1, colAxis)
}

type legendEntry struct {
	label string
	col   color.RGBA
	width int
}

// legend writes the panel's name and its key on one line above it, so
// that nothing covers the data.
func (c *canvas) legend(p *panel, name string, entries []legendEntry) {
	y := p.y0 - lineHeight - 8
	c.text(12, y, name, colText)
	x := p.x0
	for _, e := range entries {
		mid := y + glyphH*textScale/2
		c.line(x, mid, x+28, mid, e.width, e.col)
		c.text(x+36, y, e.label, colText)
		x += 36 + c.width(e.label) + 28
	}
}

// width is the width of s in pixels.
func (c *canvas) width(s string) int { return len([]rune(s)) * charAdvance }

// text draws s with its top-left corner at (x, y).
func (c *canvas) text(x, y int, s string, col color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g := glyph(r)
		for row := 0; row < glyphH; row++ {
			for bit := 0; bit < glyphW; bit++ {
				if g[row]&(1<<(glyphW-1-bit)) == 0 {
					continue
				}
				for i := 0; i < textScale; i++ {
					for j := 0; j < textScale; j++ {
						c.set(x+bit*textScale+i, y+row*textScale+j, col)
					}
				}
			}
		}
		x += charAdvance
	}
}
