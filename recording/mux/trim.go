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
