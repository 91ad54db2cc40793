package sfu

import "time"

// munger rewrites a forwarded stream's sequence numbers and timestamps so
// that a subscriber sees one continuous stream even when the SFU skips
// packets (queue overflow, later: simulcast layer switches and pauses).
//
// Packets are grouped in epochs. Within an epoch, out = in + offset, so
// reordered and retransmitted packets keep their place. A resync starts a new
// epoch at a keyframe: its first packet continues right after the last
// packet sent, and packets from before the resync point are refused.
type munger struct {
	started   bool
	resync    bool
	seqOffset uint16
	tsOffset  uint32
	epochIn   uint16 // first input seq of the current epoch
	epochOut  uint16 // its output seq
	// settled: the epoch is old enough (half the sequence space away from
	// wrapping into ambiguity) that its start no longer needs checking.
	settled    bool
	lastOutSeq uint16
	lastOutTS  uint32
	lastAt     time.Time
	// A known timestamp offset for the next epoch (from sender reports),
	// used instead of the wall-clock estimate.
	hint   uint32
	hintOK bool
}

// hintTSOffset gives the offset the next epoch's timestamps should get.
func (m *munger) hintTSOffset(off uint32) { m.hint, m.hintOK = off, true }

// requestResync makes the next accepted packet start a new epoch.
func (m *munger) requestResync() { m.resync = true }

// rewrite maps an incoming packet to its outgoing sequence number and
// timestamp. ok is false when the packet belongs to an older epoch and must
// not be sent. clockRate is the codec's RTP clock rate, used to advance the
// timestamp across a gap by the wall time that passed.
func (m *munger) rewrite(seq uint16, ts uint32, now time.Time, clockRate uint32) (outSeq uint16, outTS uint32, ok bool) {
	switch {
	case !m.started:
		m.started, m.resync = true, false
		m.seqOffset, m.tsOffset = 0, 0
		if m.hintOK {
			m.tsOffset, m.hintOK = m.hint, false
		}
		m.epochIn, m.epochOut, m.settled = seq, seq, false
		m.lastOutSeq, m.lastOutTS, m.lastAt = seq, ts+m.tsOffset, now
		return seq, ts + m.tsOffset, true
	case m.resync:
		m.resync = false
		nextSeq := m.lastOutSeq + 1
		step := uint32(1)
		if elapsed := now.Sub(m.lastAt); elapsed > 0 && clockRate > 0 {
			if s := uint32(elapsed.Seconds() * float64(clockRate)); s > step {
				step = s
			}
		}
		nextTS := m.lastOutTS + step
		if m.hintOK {
			nextTS, m.hintOK = ts+m.hint, false
		}
		m.seqOffset, m.tsOffset = nextSeq-seq, nextTS-ts
		m.epochIn, m.epochOut, m.settled = seq, nextSeq, false
		m.lastOutSeq, m.lastOutTS, m.lastAt = nextSeq, nextTS, now
		return nextSeq, nextTS, true
	}
	if !m.settled && int16(seq-m.epochIn) < 0 {
		return 0, 0, false // from before the resync point
	}
	outSeq, outTS = seq+m.seqOffset, ts+m.tsOffset
	if int16(outSeq-m.lastOutSeq) > 0 {
		m.lastOutSeq, m.lastOutTS, m.lastAt = outSeq, outTS, now
		if !m.settled && outSeq-m.epochOut >= 1<<14 {
			m.settled = true
		}
	}
	return outSeq, outTS, true
}

// unmap turns a sequence number the subscriber knows (from a NACK) back into
// the publisher's. ok is false for packets of an earlier epoch or not yet sent.
func (m *munger) unmap(outSeq uint16) (seq uint16, ok bool) {
	if !m.started || (!m.settled && int16(outSeq-m.epochOut) < 0) || int16(outSeq-m.lastOutSeq) > 0 {
		return 0, false
	}
	return outSeq - m.seqOffset, true
}

// outTimestamp maps a publisher timestamp into the current epoch.
func (m *munger) outTimestamp(ts uint32) uint32 { return ts + m.tsOffset }
