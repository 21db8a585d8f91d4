// Package shadow compares the decisions Spinscale would make for an app
// with what the app's live autoscaler (an HPA, a KEDA ScaledObject, or a
// person) does, without writing anything: the trial run before a migration.
//
// A Tracker is fed, at each of Spinscale's decisions, the live replica count
// and the count Spinscale would have set. It counts how often the two agree,
// by how much Spinscale would have been higher or lower, and, each time the
// live count moves, whether Spinscale had asked for that move earlier
// (sooner, by how long) or asks for it only after the live autoscaler made
// it (later, by how long).
package shadow

import (
	"time"
)

// Direction of a change of the replica count.
type Direction int

const (
	None Direction = 0
	Up   Direction = 1
	Down Direction = -1
)

func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "none"
}

func sign(n int32) Direction {
	switch {
	case n > 0:
		return Up
	case n < 0:
		return Down
	}
	return None
}

// Lead is one move of the live count and how Spinscale's decisions stood to
// it: Sooner when Spinscale had asked for the move before it happened (by
// how long), otherwise later (by how long after the move Spinscale asked
// for it). A move Spinscale never asks for before the next move is Missed.
type Lead struct {
	At        time.Time
	Direction Direction
	Sooner    bool
	By        time.Duration
	Missed    bool
}

// Summary is what a Tracker has seen.
type Summary struct {
	// Decisions counts the decisions compared; Agree those whose count was
	// the live one, Higher and Lower those above and below it.
	Decisions, Agree, Higher, Lower int
	// SumHigher and SumLower add up by how many replicas.
	SumHigher, SumLower int64
	// Sooner and Later count the live moves Spinscale asked for before and
	// after they happened; SoonerBy and LaterBy add up the times; Missed
	// counts the moves it never asked for.
	Sooner, Later, Missed int
	SoonerBy, LaterBy     time.Duration
	// Last is the latest comparison: the live count and Spinscale's.
	LastLive, LastShadow int32
	LastAt               time.Time
}

// AgreementRate is the share of decisions that agreed with the live count,
// 0 before any.
func (s Summary) AgreementRate() float64 {
	if s.Decisions == 0 {
		return 0
	}
	return float64(s.Agree) / float64(s.Decisions)
}

// Tracker follows one app. The zero value is ready.
type Tracker struct {
	sum Summary
	// seen is true once a first comparison set prevLive.
	seen     bool
	prevLive int32
	// asked is the direction Spinscale has asked for, away from the live
	// count, and since when; None when it agrees.
	asked      Direction
	askedSince time.Time
	// moved is a live move Spinscale has not asked for yet, and when.
	moved   Direction
	movedAt time.Time
}

// Observe records one of Spinscale's decisions at now: live is the app's
// replica count, shadow the count Spinscale would have set. It returns the
// lead of a live move this observation settles, if any.
func (t *Tracker) Observe(now time.Time, live, shadow int32) (Lead, bool) {
	var lead Lead
	settled := false
	if t.seen && live != t.prevLive {
		dir := sign(live - t.prevLive)
		switch {
		case t.asked == dir:
			// Spinscale asked for this move before it happened.
			lead = Lead{At: now, Direction: dir, Sooner: true, By: now.Sub(t.askedSince)}
			t.sum.Sooner++
			t.sum.SoonerBy += lead.By
			settled = true
			if t.moved != None {
				// The previous live move was never asked for.
				t.sum.Missed++
			}
			t.moved = None
		default:
			if t.moved != None {
				// The previous live move was never asked for.
				t.sum.Missed++
			}
			t.moved, t.movedAt = dir, now
		}
		t.asked = None
	}

	want := sign(shadow - live)
	if t.moved != None && (want == t.moved || want == None) {
		// Spinscale now asks for the move the live autoscaler made (or
		// agrees with its result): later by the time since.
		lead = Lead{At: now, Direction: t.moved, By: now.Sub(t.movedAt)}
		t.sum.Later++
		t.sum.LaterBy += lead.By
		settled = true
		t.moved = None
	}
	if want != t.asked {
		t.asked, t.askedSince = want, now
	}

	t.sum.Decisions++
	switch {
	case shadow == live:
		t.sum.Agree++
	case shadow > live:
		t.sum.Higher++
		t.sum.SumHigher += int64(shadow - live)
	default:
		t.sum.Lower++
		t.sum.SumLower += int64(live - shadow)
	}
	t.sum.LastLive, t.sum.LastShadow, t.sum.LastAt = live, shadow, now
	t.seen, t.prevLive = true, live
	return lead, settled
}

// Summary returns what the tracker has seen so far.
func (t *Tracker) Summary() Summary { return t.sum }
