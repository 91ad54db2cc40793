package mux

import (
	"time"

	"github.com/ducha-dev/ducha/internal/ntp"
)

// maxSkew is how far a frame's computed time may stray from its arrival
// before the mapping is considered broken (a sender restart, a timestamp
// jump) and re-anchored on arrival.
const maxSkew = 10 * time.Second

// trackClock maps one track's RTP timestamps to the server clock: by the
// sender's NTP<->RTP mapping when a sender report was given, else by the
// arrival of the track's first packet.
type trackClock struct {
	rate int64

	started bool
	lastTS  uint32
	ext     int64 // unwrapped timestamp of the last frame

	anchorExt  int64
	anchorTime time.Time

	haveSR bool
	srNTP  time.Time
	srTS   uint32
}

// srHysteresis is how far a new sender report may disagree with the
// current mapping and still be ignored: reports carry a few milliseconds of
// noise, and following it would make frame times jitter (and be clamped).
// A real change (clock drift, a sender restart) is bigger and is followed.
const srHysteresis = 15 * time.Millisecond

func (c *trackClock) setSenderReport(ntpTS uint64, rtpTS uint32) {
	at := ntp.Time(ntpTS)
	if c.haveSR {
		predicted := c.srNTP.Add(c.ticks(int64(int32(rtpTS - c.srTS))))
		if d := at.Sub(predicted); d < srHysteresis && d > -srHysteresis {
			// Same mapping; move the anchor so timestamp differences stay
			// small in long sessions.
			at = predicted
		}
	}
	c.haveSR = true
	c.srNTP = at
	c.srTS = rtpTS
}

func (c *trackClock) ticks(d int64) time.Duration {
	return time.Duration(d * int64(time.Second) / c.rate)
}

// timeline holds what the tracks of one recorder share: the offset from the
// sender's NTP clock to the server clock, fixed once, so that audio and
// video placed by sender reports keep their relative sync.
type timeline struct {
	haveOffset bool
	offset     time.Duration
}

// frameTime returns the server time of a frame with RTP timestamp ts whose
// first packet arrived at arrival.
func (tl *timeline) frameTime(c *trackClock, ts uint32, arrival time.Time) time.Time {
	if !c.started {
		c.started = true
		c.lastTS = ts
		c.ext = int64(ts)
		c.anchorExt, c.anchorTime = c.ext, arrival
	} else {
		c.ext += int64(int32(ts - c.lastTS))
		c.lastTS = ts
	}
	t := c.anchorTime.Add(c.ticks(c.ext - c.anchorExt))
	if c.haveSR {
		byNTP := c.srNTP.Add(c.ticks(int64(int32(ts - c.srTS))))
		if !tl.haveOffset {
			// The first track to get a sender report keeps its timing; the
			// others follow it through the sender's clock.
			tl.haveOffset = true
			tl.offset = t.Sub(byNTP)
		}
		t = byNTP.Add(tl.offset)
	}
	if skew := t.Sub(arrival); skew > maxSkew || skew < -maxSkew {
		c.anchorExt, c.anchorTime = c.ext, arrival
		c.haveSR = false
		tl.haveOffset = false
		t = arrival
	}
	return t
}
