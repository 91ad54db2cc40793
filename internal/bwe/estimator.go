// Package bwe estimates the bandwidth toward one subscriber connection from
// the transport-wide congestion control feedback (TWCC) its browser sends.
//
// It follows Google congestion control (draft-ietf-rmcat-gcc): a
// delay-based estimate (a trendline over the one-way delay variation of
// packet groups, an adaptive overuse threshold, additive/multiplicative
// increase and a cut to 85 % of the delivered rate on overuse), bounded by
// a loss-based one. pion/interceptor's GCC does the same, and ducha used it
// until it showed as 12-17 % of the SFU's CPU: a map entry and a list
// element per packet sent, and allocations per feedback. This one keeps the
// packets sent in a ring indexed by sequence number and allocates nothing
// per packet or per feedback.
//
// The SFU stamps the transport-wide sequence number itself (Sent), so no
// interceptor runs per packet. An Estimator is safe for concurrent use;
// times come from the caller, so tests drive it with a simulated clock.
package bwe

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Config bounds the estimate, in bits per second.
type Config struct {
	Initial int // before any feedback
	Min     int
	Max     int
}

// Estimator is the send-side bandwidth estimate toward one connection.
type Estimator struct {
	cfg  Config
	base time.Time // sent times are kept as nanoseconds since base

	mu   sync.Mutex
	next uint16 // transport-wide sequence number of the next packet
	hist []sentPacket
	refs refClock
	rate ackedRate
	tl   trendline
	aimd aimd
	loss lossControl

	target atomic.Int64
	stats  Stats
}

// Stats counts what the feedback reported, per packet, each packet once.
type Stats struct {
	Received int64
	Lost     int64 // reported missing (and not reported received later)
}

// Stats returns the counts so far.
func (e *Estimator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// sentPacket is one entry of the history ring.
type sentPacket struct {
	at    int64 // send time, ns since base
	size  uint16
	seq   uint16
	state uint8
}

const (
	slotEmpty    = iota
	slotSent     // waiting for feedback
	slotLost     // reported lost; a later report may still see it arrive
	slotReported // reported received
)

// Ring size: it starts small and doubles while packets still in flight
// would be overwritten (a subscriber of 117 videos has thousands in flight
// for a few hundred milliseconds), up to what 16-bit sequence numbers can
// tell apart.
const (
	histStart   = 512
	histMax     = 32768
	inFlightMax = 2 * time.Second // older unreported packets are given up
)

// New makes an estimator whose clock starts at now.
func New(cfg Config, now time.Time) *Estimator {
	if cfg.Min <= 0 {
		cfg.Min = 30_000
	}
	if cfg.Max < cfg.Min {
		cfg.Max = max(cfg.Min, 100_000_000)
	}
	cfg.Initial = min(max(cfg.Initial, cfg.Min), cfg.Max)
	e := &Estimator{cfg: cfg, base: now, hist: make([]sentPacket, histStart)}
	e.tl.init()
	e.aimd.init(float64(cfg.Initial))
	e.loss.init(float64(cfg.Initial), float64(cfg.Min))
	e.target.Store(int64(cfg.Initial))
	return e
}

// GetTargetBitrate is the current estimate in bits per second.
func (e *Estimator) GetTargetBitrate() int { return int(e.target.Load()) }

// Sent records a packet of size bytes (as it leaves: header, payload and
// SRTP tag) sent at now, and returns the transport-wide sequence number to
// stamp on it.
func (e *Estimator) Sent(now time.Time, size int) uint16 {
	at := int64(now.Sub(e.base))
	e.mu.Lock()
	seq := e.next
	e.next++
	i := int(seq) & (len(e.hist) - 1)
	if old := &e.hist[i]; old.state == slotSent && at-old.at < int64(inFlightMax) && len(e.hist) < histMax {
		e.grow()
		i = int(seq) & (len(e.hist) - 1)
	}
	e.hist[i] = sentPacket{at: at, size: uint16(min(size, 0xffff)), seq: seq, state: slotSent}
	e.mu.Unlock()
	return seq
}

func (e *Estimator) grow() {
	h := make([]sentPacket, 2*len(e.hist))
	for _, p := range e.hist {
		if p.state != slotEmpty {
			h[int(p.seq)&(len(h)-1)] = p
		}
	}
	e.hist = h
}

// Feedback takes one TWCC feedback packet received at now.
func (e *Estimator) Feedback(fb *rtcp.TransportLayerCC, now time.Time) {
	nowNs := int64(now.Sub(e.base))
	e.mu.Lock()
	defer e.mu.Unlock()
	arrival := e.refs.unwrap(fb.ReferenceTime) // µs, receiver clock
	seq := fb.BaseSequenceNumber
	left := int(fb.PacketStatusCount)
	deltas := fb.RecvDeltas
	var lost, total int
	status := func(sym uint16) {
		switch sym {
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			if len(deltas) > 0 {
				if deltas[0] != nil {
					arrival += deltas[0].Delta
				}
				deltas = deltas[1:]
			}
			total++
			e.received(seq, arrival)
		case rtcp.TypeTCCPacketNotReceived:
			if e.reportLost(seq) {
				total++
				lost++
			}
		}
		seq++
		left--
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for n := int(c.RunLength); n > 0 && left > 0; n-- {
				status(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if left == 0 {
					break
				}
				status(sym)
			}
		}
	}
	e.update(nowNs, lost, total)
}

// received handles one packet the feedback reports arrived at arrival (µs).
func (e *Estimator) received(seq uint16, arrival int64) {
	p := &e.hist[int(seq)&(len(e.hist)-1)]
	if p.seq != seq || (p.state != slotSent && p.state != slotLost) {
		return // not ours, forgotten, or reported before
	}
	late := p.state == slotLost
	p.state = slotReported
	e.stats.Received++
	if late {
		e.stats.Lost--
	}
	e.rate.add(arrival, int(p.size))
	if !late { // a packet that arrived after being reported lost says nothing of order
		e.tl.add(p.at, arrival)
	}
}

// reportLost marks a packet reported missing; false when it was reported
// before (feedback windows overlap) or is unknown.
func (e *Estimator) reportLost(seq uint16) bool {
	p := &e.hist[int(seq)&(len(e.hist)-1)]
	if p.seq != seq || p.state != slotSent {
		return false
	}
	p.state = slotLost
	e.stats.Lost++
	return true
}

// update runs the controllers after a feedback and publishes the estimate.
func (e *Estimator) update(nowNs int64, lost, total int) {
	acked := e.rate.bps()
	delayBased := e.aimd.update(e.tl.state, acked, nowNs)
	lossBased := e.loss.update(lost, total, delayBased, nowNs)
	t := int64(min(delayBased, lossBased))
	t = min(max(t, int64(e.cfg.Min)), int64(e.cfg.Max))
	e.aimd.clamp(float64(e.cfg.Min), float64(e.cfg.Max))
	e.target.Store(t)
}

// refClock unwraps the 24-bit feedback reference time (64 ms units) into
// microseconds on a line that does not jump back.
type refClock struct {
	last   uint32
	offset int64 // whole wraps seen, in 64 ms units
	seen   bool
}

func (r *refClock) unwrap(ref uint32) int64 {
	const wrap = 1 << 24
	ref &= wrap - 1
	if r.seen {
		if ref < r.last && r.last-ref > wrap/2 {
			r.offset += wrap
		} else if ref > r.last && ref-r.last > wrap/2 {
			r.offset -= wrap // a reordered feedback from before the wrap
		}
	}
	if !r.seen || ref > r.last || r.last-ref > wrap/2 {
		r.last = ref
	}
	r.seen = true
	return (r.offset + int64(ref)) * 64_000
}

// ackedRate is the rate the receiver reports delivered, over windows of
// arrival time.
type ackedRate struct {
	start, last int64 // µs, receiver clock
	bytes       int
	rate        float64 // bits per second; 0 until the first window closes
	started     bool
}

const rateWindow = 500_000 // µs

func (a *ackedRate) add(arrival int64, size int) {
	if !a.started || arrival < a.start || arrival-a.last > 2*rateWindow {
		// First packet, or a gap long enough that the window would measure
		// silence rather than the link.
		a.start, a.last, a.bytes, a.started = arrival, arrival, size, true
		return
	}
	a.bytes += size
	a.last = max(a.last, arrival)
	if span := a.last - a.start; span >= rateWindow {
		r := float64(a.bytes) * 8 * 1e6 / float64(span)
		if a.rate == 0 {
			a.rate = r
		} else {
			a.rate = 0.5*a.rate + 0.5*r
		}
		a.start, a.bytes = a.last, 0
	}
}

func (a *ackedRate) bps() float64 { return a.rate }
