// Package chart draws the PNG charts of `autoscaler simulate --plot` and of
// the benches with nothing beyond the standard library: a canvas with lines,
// filled rectangles and a built-in pixel font, and panels that map data to
// pixels with tidy tick marks. It knows nothing of autoscaling.
package chart

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

// Text geometry, in pixels.
const (
	TextScale   = 2
	CharAdvance = (glyphW + 1) * TextScale
	LineHeight  = (glyphH + 4) * TextScale
	// TextHeight is the height of a line of text's glyphs.
	TextHeight = glyphH * TextScale
)

// Colours shared by the charts.
var (
	Background = color.RGBA{255, 255, 255, 255}
	AxisColor  = color.RGBA{60, 60, 60, 255}
	GridColor  = color.RGBA{228, 228, 228, 255}
	TextColor  = color.RGBA{30, 30, 30, 255}
)

// Canvas draws on an RGBA image, clipping to its bounds.
type Canvas struct {
	Img *image.RGBA
}

// New returns a w × h canvas filled with the background colour.
func New(w, h int) *Canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{Background}, image.Point{}, draw.Src)
	return &Canvas{Img: img}
}

// Encode writes the canvas as a PNG.
func (c *Canvas) Encode(w io.Writer) error {
	if err := png.Encode(w, c.Img); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// Set colours one pixel.
func (c *Canvas) Set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.Img.Rect) {
		c.Img.SetRGBA(x, y, col)
	}
}

// FillRect fills columns x0 up to x1 (not included) and rows y0 to y1
// (included): a bar that ends where the next begins, between two values.
func (c *Canvas) FillRect(x0, y0, x1, y1 int, col color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	draw.Draw(c.Img, image.Rect(x0, y0, x1, y1+1), &image.Uniform{col}, image.Point{}, draw.Over)
}

// Line draws a segment of the given width (a square brush).
func (c *Canvas) Line(x0, y0, x1, y1, width int, col color.RGBA) {
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
				c.Set(x0+i, y0+j, col)
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

// Marker draws a filled square of side size centred on (x, y).
func (c *Canvas) Marker(x, y, size int, col color.RGBA) {
	x0, y0 := x-size/2, y-size/2
	c.FillRect(x0, y0, x0+size, y0+size-1, col)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Width is the width of s in pixels.
func (c *Canvas) Width(s string) int { return len([]rune(s)) * CharAdvance }

// Text draws s with its top-left corner at (x, y).
func (c *Canvas) Text(x, y int, s string, col color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g := glyph(r)
		for row := 0; row < glyphH; row++ {
			for bit := 0; bit < glyphW; bit++ {
				if g[row]&(1<<(glyphW-1-bit)) == 0 {
					continue
				}
				for i := 0; i < TextScale; i++ {
					for j := 0; j < TextScale; j++ {
						c.Set(x+bit*TextScale+i, y+row*TextScale+j, col)
					}
				}
			}
		}
		x += CharAdvance
	}
}

// Panel is one chart area: the pixel box [X0, X1] × [Y0, Y1] shows the data
// range [XMin, XMax] across and [YMin, YMax] up.
type Panel struct {
	X0, Y0, X1, Y1         int
	XMin, XMax, YMin, YMax float64
	// XTicks and YTicks are where grid lines go, in data units.
	XTicks, YTicks []float64
}

// X maps a data value to a pixel column.
func (p *Panel) X(v float64) int {
	return p.X0 + int(math.Round((v-p.XMin)/span(p.XMin, p.XMax)*float64(p.X1-p.X0)))
}

// Y maps a data value to a pixel row.
func (p *Panel) Y(v float64) int {
	return p.Y1 - int(math.Round((v-p.YMin)/span(p.YMin, p.YMax)*float64(p.Y1-p.Y0)))
}

func span(lo, hi float64) float64 {
	if hi > lo {
		return hi - lo
	}
	return 1
}

// Grid draws the panel's frame, its grid lines and the y labels; xLabel
// names each x tick under the frame (nil: no labels).
func (c *Canvas) Grid(p *Panel, xLabel func(float64) string) {
	for _, v := range p.YTicks {
		y := p.Y(v)
		c.Line(p.X0, y, p.X1, y, 1, GridColor)
		label := FormatTick(v)
		c.Text(p.X0-10-c.Width(label), y-TextHeight/2, label, TextColor)
	}
	for _, t := range p.XTicks {
		x := p.X(t)
		c.Line(x, p.Y0, x, p.Y1, 1, GridColor)
		c.Line(x, p.Y1, x, p.Y1+5, 1, AxisColor)
		if xLabel != nil {
			label := xLabel(t)
			c.Text(x-c.Width(label)/2, p.Y1+8, label, TextColor)
		}
	}
	c.Line(p.X0, p.Y0, p.X0, p.Y1, 1, AxisColor)
	c.Line(p.X0, p.Y1, p.X1, p.Y1, 1, AxisColor)
}

// LegendEntry is one key of a legend: a line of a colour and width.
type LegendEntry struct {
	Label string
	Color color.RGBA
	Width int
}

// Legend writes name at the left edge and the keys on one line above the
// panel, so that nothing covers the data.
func (c *Canvas) Legend(p *Panel, name string, entries []LegendEntry) {
	y := p.Y0 - LineHeight - 8
	c.Text(12, y, name, TextColor)
	x := p.X0
	for _, e := range entries {
		mid := y + TextHeight/2
		c.Line(x, mid, x+28, mid, e.Width, e.Color)
		c.Text(x+36, y, e.Label, TextColor)
		x += 36 + c.Width(e.Label) + 28
	}
}

// NiceTicks returns 0, step, 2·step, … up to the first tick at or above
// hi, with a step of 1, 2 or 5 × 10^k giving about n intervals.
func NiceTicks(hi float64, n int) []float64 {
	return NiceTicksFrom(0, hi, n)
}

// NiceTicksFrom is NiceTicks from the last tick at or below lo.
func NiceTicksFrom(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	var out []float64
	for i := math.Floor(lo/step + 1e-9); ; i++ {
		v := i * step
		out = append(out, v)
		if v >= hi-1e-9 {
			return out
		}
	}
}

// IntegerTicks keeps count ticks whole: a step below 1 becomes 1.
func IntegerTicks(t []float64) []float64 {
	if len(t) < 2 || t[1]-t[0] >= 1 {
		return t
	}
	hi := t[len(t)-1]
	var out []float64
	for v := math.Floor(t[0]); ; v++ {
		out = append(out, v)
		if v >= hi {
			return out
		}
	}
}

// FormatTick labels a tick: thousands as "k" when round, else up to three
// decimals.
func FormatTick(v float64) string {
	if math.Abs(v) >= 10000 && v == math.Trunc(v) && math.Mod(v, 1000) == 0 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
