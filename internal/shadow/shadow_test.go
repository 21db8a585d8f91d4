package shadow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// Spinscale asks for 4 at 0s; the live autoscaler gets there at 30s:
// sooner by 30s.
func TestSooner(t *testing.T) {
	var tr Tracker
	tr.Observe(at(0), 2, 4)
	tr.Observe(at(15), 2, 4)
	lead, ok := tr.Observe(at(30), 4, 4)
	assert.True(t, ok)
	assert.Equal(t, Lead{At: at(30), Direction: Up, Sooner: true, By: 30 * time.Second}, lead)
	s := tr.Summary()
	assert.Equal(t, 1, s.Sooner)
	assert.Equal(t, 30*time.Second, s.SoonerBy)
	assert.Equal(t, Summary{Decisions: 3, Agree: 1, Higher: 2, SumHigher: 4, Sooner: 1, SoonerBy: 30 * time.Second,
		LastLive: 4, LastShadow: 4, LastAt: at(30)}, s)
	assert.InDelta(t, 1.0/3, s.AgreementRate(), 1e-9)
}

// The live autoscaler scales down at 15s; Spinscale asks for it at 45s:
// later by 30s.
func TestLater(t *testing.T) {
	var tr Tracker
	tr.Observe(at(0), 6, 6)
	_, ok := tr.Observe(at(15), 3, 6)
	assert.False(t, ok, "Spinscale holds at 6 while the live count went to 3")
	tr.Observe(at(30), 3, 6)
	lead, ok := tr.Observe(at(45), 3, 3)
	assert.True(t, ok)
	assert.Equal(t, Lead{At: at(45), Direction: Down, By: 30 * time.Second}, lead)
	s := tr.Summary()
	assert.Equal(t, 1, s.Later)
	assert.Equal(t, 30*time.Second, s.LaterBy)
	assert.Equal(t, 2, s.Higher)
	assert.Equal(t, int64(6), s.SumHigher)
}

// A live move Spinscale never asks for before the next live move is
// missed.
func TestMissed(t *testing.T) {
	var tr Tracker
	tr.Observe(at(0), 2, 2)
	tr.Observe(at(15), 4, 2) // live up, Spinscale wants down from 4
	tr.Observe(at(30), 2, 2) // live back down: Spinscale had asked for it
	s := tr.Summary()
	assert.Equal(t, 1, s.Missed, "the move up was never asked for")
	assert.Equal(t, 1, s.Sooner, "the move down was asked for at 15s")
	assert.Equal(t, 15*time.Second, s.SoonerBy)
}

// Agreement throughout: no lead at all.
func TestAgreement(t *testing.T) {
	var tr Tracker
	for i := 0; i < 4; i++ {
		_, ok := tr.Observe(at(15*i), 3, 3)
		assert.False(t, ok)
	}
	s := tr.Summary()
	assert.Equal(t, 4, s.Agree)
	assert.Equal(t, 1.0, s.AgreementRate())
	assert.Zero(t, s.Sooner+s.Later+s.Missed)
}

// Spinscale asking lower than the live count is counted with its size.
func TestLower(t *testing.T) {
	var tr Tracker
	tr.Observe(at(0), 5, 3)
	s := tr.Summary()
	assert.Equal(t, 1, s.Lower)
	assert.Equal(t, int64(2), s.SumLower)
	assert.Equal(t, "down", Down.String())
}
