package bwe

import "math"

// Rate control constants (GCC).
const (
	beta            = 0.85 // on overuse: this share of the delivered rate
	multIncrease    = 1.08 // per second, far from the last known capacity
	responseTimeMs  = 200  // one round trip plus the feedback interval, assumed
	minAddIncrease  = 4000 // bits per second per second
	ackedHeadroom   = 1.5  // never raise the estimate above 1.5x what was delivered ...
	ackedHeadroomBp = 10_000
	capacitySmooth  = 0.05
	lossHigh        = 0.10 // more loss than this cuts the loss-based estimate
	lossLow         = 0.02 // less than this lets it grow again
	lossMinPackets  = 20   // fewer packets than this say nothing of loss
	lossCutEveryNs  = 300_000_000
	cutEveryNs      = 200_000_000 // overuse cuts at most this often (about a round trip) ...
	cutAnywayOver   = 2.0         // ... unless the estimate is still this far above delivery
)

type rateState uint8

const (
	rateHold rateState = iota
	rateIncrease
	rateDecrease
)

// aimd is the delay-based rate controller: it climbs while the path shows
// normal usage, holds while queues drain, and cuts on overuse.
type aimd struct {
	target float64
	state  rateState
	last   int64 // ns, last update
	cutAt  int64 // ns, last cut (-1: none)
	// The delivered rate at past overuses (kbit/s): the link's capacity as
	// far as it is known. Near it, the climb is additive, not exponential.
	capAvg, capVar float64
	capKnown       bool
}

func (a *aimd) init(initial float64) { a.target = initial; a.last, a.cutAt = -1, -1; a.capVar = 0.4 }

// update takes the detector's signal and the delivered rate (0: unknown)
// and returns the delay-based estimate.
func (a *aimd) update(u usage, acked float64, nowNs int64) float64 {
	dtMs := 0.0
	if a.last >= 0 {
		dtMs = math.Min(float64(nowNs-a.last)/1e6, 1000)
	}
	a.last = nowNs
	switch u {
	case usageNormal:
		if a.state == rateHold {
			a.state = rateIncrease
		}
	case usageOver:
		// The signal stays "over" until queues drain; one cut per round
		// trip is what the path can show the effect of.
		if a.cutAt < 0 || nowNs-a.cutAt >= cutEveryNs || (acked > 0 && a.target > cutAnywayOver*acked) {
			a.state = rateDecrease
		}
	case usageUnder:
		a.state = rateHold
	}
	switch a.state {
	case rateIncrease:
		if a.capKnown && acked > 0 && acked/1000 > a.capAvg+3*a.capStd() {
			a.capKnown = false // delivering more than the old capacity: it grew
		}
		next := a.target
		if a.capKnown {
			next += a.additive(dtMs)
		} else {
			next += math.Max(a.target*(math.Pow(multIncrease, dtMs/1000)-1), 1000*dtMs/1000)
		}
		if acked > 0 {
			if limit := ackedHeadroom*acked + ackedHeadroomBp; next > limit {
				next = math.Max(a.target, limit) // the cap stops a climb, it never cuts
			}
		}
		a.target = next
	case rateDecrease:
		if acked > 0 {
			if a.capKnown && acked/1000 < a.capAvg-3*a.capStd() {
				a.capKnown = false // far below the old capacity: it shrank
			}
			if cut := beta * acked; cut < a.target {
				a.target = cut
			}
			a.noteCapacity(acked / 1000)
		} else {
			a.target *= beta
		}
		a.cutAt = nowNs
		a.state = rateHold
	}
	return a.target
}

// additive is one average packet per response time, per second of dt.
func (a *aimd) additive(dtMs float64) float64 {
	const fps = 30.0
	bitsPerFrame := a.target / fps
	packets := math.Ceil(bitsPerFrame / (1200 * 8))
	avgPacketBits := bitsPerFrame / math.Max(packets, 1)
	perSecond := math.Max(minAddIncrease, avgPacketBits*1000/responseTimeMs)
	return perSecond * dtMs / 1000
}

func (a *aimd) noteCapacity(kbps float64) {
	if !a.capKnown {
		a.capAvg, a.capKnown = kbps, true
	} else {
		a.capAvg = (1-capacitySmooth)*a.capAvg + capacitySmooth*kbps
	}
	norm := math.Max(a.capAvg, 1)
	d := a.capAvg - kbps
	a.capVar = (1-capacitySmooth)*a.capVar + capacitySmooth*d*d/norm
	a.capVar = math.Min(math.Max(a.capVar, 0.4), 2.5)
}

func (a *aimd) capStd() float64 { return math.Sqrt(a.capVar * a.capAvg) }

func (a *aimd) clamp(lo, hi float64) { a.target = math.Min(math.Max(a.target, lo), hi) }

// lossControl is the loss-based bound: it cuts in proportion to loss above
// 10 %, holds between 2 and 10 %, and follows the delay-based estimate back
// up (8 % per second) below 2 %.
type lossControl struct {
	target       float64
	floor        float64 // the configured minimum: a cut to 0 could never grow back
	lost, total  int     // accumulated until lossMinPackets
	lastCut      int64
	lastIncrease int64
}

func (l *lossControl) init(initial, floor float64) {
	l.target, l.floor = initial, floor
	l.lastCut, l.lastIncrease = -1, -1
}

func (l *lossControl) update(lost, total int, delayBased float64, nowNs int64) float64 {
	l.lost += lost
	l.total += total
	if l.total >= lossMinPackets {
		frac := float64(l.lost) / float64(l.total)
		l.lost, l.total = 0, 0
		switch {
		case frac > lossHigh:
			if l.lastCut < 0 || nowNs-l.lastCut >= lossCutEveryNs {
				l.target = math.Min(l.target, delayBased) * (1 - 0.5*frac)
				l.lastCut = nowNs
			}
		case frac < lossLow:
			if l.lastIncrease >= 0 {
				dt := math.Min(float64(nowNs-l.lastIncrease)/1e9, 1)
				l.target *= math.Pow(multIncrease, dt)
			}
			l.lastIncrease = nowNs
		default:
			l.lastIncrease = nowNs
		}
	}
	l.target = math.Max(math.Min(l.target, delayBased), l.floor)
	return l.target
}
