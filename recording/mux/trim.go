package mux

import "time"

// trimPeriod paces the trimming of the jitter buffers and frame queues: what
// a burst made them grow to is given back once two whole periods in a row
// did not need it.
type trimPeriod struct{ at time.Time }

// due reports whether a period has passed since the last one ended (the
// first call starts the first period).
func (p *trimPeriod) due(now time.Time) bool {
	if p.at.IsZero() {
		p.at = now
	}
	if now.Sub(p.at) < trimEvery {
		return false
	}
	p.at = now
	return true
}

// trimSpares keeps at most keep spare buffers, and copies the list into a
// smaller one when its capacity is far beyond what is kept (floor: the
// capacity that is never worth shrinking below).
func trimSpares(spare [][]byte, keep, floor int) [][]byte {
	if len(spare) <= keep {
		return spare
	}
	clear(spare[keep:])
	spare = spare[:keep]
	if cap(spare) > 2*max(keep, floor) {
		spare = append(make([][]byte, 0, keep), spare...)
	}
	return spare
}
