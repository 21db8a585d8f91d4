package chart

import (
	"bytes"
	"image/color"
	"image/png"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNiceTicks(t *testing.T) {
	assert.Equal(t, []float64{0, 500, 1000, 1500, 2000}, NiceTicks(1800, 4))
	assert.Equal(t, []float64{0, 0.5, 1}, NiceTicks(1, 2))
	assert.Equal(t, []float64{0, 1, 2, 3}, IntegerTicks(NiceTicks(2.5, 5)))
	assert.Equal(t, []float64{0.8, 1, 1.2, 1.4}, roundAll(NiceTicksFrom(0.85, 1.3, 3)))
}

func roundAll(v []float64) []float64 {
	for i := range v {
		v[i] = float64(int(v[i]*1000+0.5)) / 1000
	}
	return v
}

func TestFormatTick(t *testing.T) {
	assert.Equal(t, "20k", FormatTick(20000))
	assert.Equal(t, "1500", FormatTick(1500))
	assert.Equal(t, "0.125", FormatTick(0.125))
}

func TestPanelMapsTheDataRange(t *testing.T) {
	p := Panel{X0: 100, X1: 300, Y0: 50, Y1: 150, XMin: 10, XMax: 20, YMin: 0, YMax: 4}
	assert.Equal(t, 100, p.X(10))
	assert.Equal(t, 200, p.X(15))
	assert.Equal(t, 300, p.X(20))
	assert.Equal(t, 150, p.Y(0), "up is smaller rows")
	assert.Equal(t, 50, p.Y(4))
}

func TestCanvasDrawsAndEncodes(t *testing.T) {
	c := New(40, 20)
	red := color.RGBA{200, 0, 0, 255}
	c.Line(0, 10, 39, 10, 1, red)
	c.Marker(5, 5, 3, red)
	c.Text(20, 2, "a1", TextColor)
	c.Set(-1, 500, red) // clipped, no panic
	var b bytes.Buffer
	require.NoError(t, c.Encode(&b))
	img, err := png.Decode(&b)
	require.NoError(t, err)
	assert.Equal(t, color.RGBAModel.Convert(red), color.RGBAModel.Convert(img.At(39, 10)))
	assert.Equal(t, color.RGBAModel.Convert(red), color.RGBAModel.Convert(img.At(6, 6)))
	assert.Equal(t, color.RGBAModel.Convert(Background), color.RGBAModel.Convert(img.At(0, 0)))
	assert.Equal(t, 2*CharAdvance, c.Width("a1"))
}
