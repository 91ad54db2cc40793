// Package rtprecv is the SFU's own receive side of a publisher's RTP
// stream: the bookkeeping behind the RTCP reception report blocks it sends
// back (RFC 3550 section 6.4.1, appendix A.1, A.3 and A.8) and the sequence
// numbers it asks to have retransmitted (RFC 4585 generic NACK).
//
// Pion's report.ReceiverInterceptor and nack.GeneratorInterceptor did this
// while Pion decrypted the publishers' packets; now that the SFU receives
// and decrypts them itself, no interceptor sees them, so the SFU calls a
// Stream from its ingest path instead. A Stream takes plain values (no
// rtp.Header, no time.Time) and allocates nothing per packet, because it
// runs once for every packet the SFU receives.
package rtprecv

import (
	"fmt"
	"math"

	"github.com/pion/rtcp"
)

const (
	// RFC 3550 A.1: a jump forward up to maxDropout is loss, not a new
	// numbering; a packet fewer than maxMisorder behind is late, not a
	// restart.
	maxDropout  = 3000
	maxMisorder = 100
	// noBadSeq is outside the 16-bit range, so no packet matches it
	// (the RFC's RTP_SEQ_MOD + 1).
	noBadSeq = 1<<16 + 1

	second = int64(1e9)
)

// Stream is the receive side of one RTP stream. Not safe for concurrent use: the caller serialises (the SFU calls it under the layer's ingest lock, and from a ticker under the same lock).
type Stream struct {
	ssrc      uint32
	clockRate int64

	started bool
	// Sequence numbers are widened to int64 ("extended") so that loss
	// arithmetic needs no modular care; the report truncates to 32 bits.
	maxSeq uint16
	cycles int64
	base   int64 // extended number of the first packet since (re)start
	badSeq uint32

	// received counts distinct packets where the NACK log can tell, every
	// packet otherwise (see Received).
	received      int64
	expectedPrior int64
	receivedPrior int64

	// Jitter as in the RFC's integer variant, scaled by 16 so that it
	// rounds instead of drifting down by truncation.
	firstArrival int64
	transit      uint32
	jitter       int64

	lsr       uint32
	srArrival int64
	haveSR    bool

	nack nackLog
}

// New: clockRate in Hz (48000 audio, 90000 video); nackWindow is how many recent sequence numbers are remembered for NACKs: a power of two between 64 and 32768, or 0 for a stream that is never NACKed (audio).
//
// It panics on any other nackWindow: the window is a constant of the
// caller, so a bad one is a programming error to catch in its tests. A
// clockRate of 0 is tolerated (reported jitter stays 0) since it comes
// from the remote description.
func New(ssrc, clockRate uint32, nackWindow int) *Stream {
	if nackWindow != 0 && (nackWindow < 64 || nackWindow > 1<<15 || nackWindow&(nackWindow-1) != 0) {
		panic(fmt.Sprintf("rtprecv: nackWindow %d is not 0 or a power of two in [64, 32768]", nackWindow))
	}
	s := &Stream{ssrc: ssrc, clockRate: int64(clockRate), badSeq: noBadSeq}
	s.nack.init(nackWindow)
	return s
}

func (s *Stream) highest() int64 { return s.cycles<<16 | int64(s.maxSeq) }

// Received records one packet that arrived (duplicates may also be passed: they must not be counted twice in the NACK log, and must not corrupt the counters). arrival is unix nanoseconds. MUST allocate nothing: it runs for every packet the SFU receives (TestAllocs checks it with testing.AllocsPerRun).
//
// A duplicate of the highest number is never counted. Other duplicates are
// recognised through the NACK log only, so a stream made with nackWindow 0
// counts them as received, as RFC 3550 A.1 does (as does a 64-number
// window for a duplicate 64 to 99 behind): that hides at most as much
// loss as there were duplicates, and the total never goes below 0.
//
// A packet late by more than maxMisorder but still inside the NACK window,
// not received before, is taken as late (typically a retransmission
// answering a NACK after a long round trip) rather than as the start of a
// new numbering: under the RFC's rule two such consecutive retransmissions
// would restart the stream, and the restart would NACK them all again.
func (s *Stream) Received(seq uint16, rtpTS uint32, arrival int64) {
	if !s.started {
		s.started = true
		s.firstArrival = arrival
		s.restart(seq, rtpTS, arrival)
		return
	}
	hi := s.highest()
	delta := seq - s.maxSeq
	if delta == 0 {
		return
	}
	if delta < maxDropout {
		if seq < s.maxSeq {
			s.cycles++
		}
		s.maxSeq = seq
		s.received++
		s.badSeq = noBadSeq
		s.nack.advance(hi, hi+int64(delta))
		s.updateJitter(rtpTS, arrival)
		return
	}
	behind := int64(s.maxSeq - seq)
	ext := hi - behind
	if behind < int64(s.nack.size()) {
		// Whatever this packet is, the next one is not the second of a
		// restart.
		s.badSeq = noBadSeq
		if !s.nack.late(ext) {
			return // duplicate
		}
		s.lateCounted(ext)
		return
	}
	if behind < maxMisorder {
		s.badSeq = noBadSeq
		s.lateCounted(ext)
		return
	}
	// A large jump: a new numbering if the next packet follows it (the
	// sender restarted), else a stray packet, not counted.
	if uint32(seq) == s.badSeq {
		s.restart(seq, rtpTS, arrival)
		return
	}
	s.badSeq = uint32(seq + 1)
}

// lateCounted counts a late packet; one older than the first packet
// widens the range expected, else it would hide a loss forever.
func (s *Stream) lateCounted(ext int64) {
	s.received++
	if ext < s.base {
		s.base = ext
	}
}

// restart begins a new numbering at seq (RFC 3550 A.1 init_seq). The
// jitter is kept, but this packet only seeds the transit time: its
// timestamp may have jumped with its number.
func (s *Stream) restart(seq uint16, rtpTS uint32, arrival int64) {
	s.maxSeq = seq
	s.cycles = 0
	s.base = int64(seq)
	s.badSeq = noBadSeq
	s.received = 1
	s.expectedPrior = 0
	s.receivedPrior = 0
	s.nack.reset(int64(seq))
	s.transit = s.transitOf(rtpTS, arrival)
}

// transitOf is the relative transit time of RFC 3550 A.8, in RTP units
// modulo 2^32 (only differences of it matter). The arrival is taken
// relative to the first packet and converted in whole seconds plus the
// rest, so the product stays far inside int64 whatever the uptime.
func (s *Stream) transitOf(rtpTS uint32, arrival int64) uint32 {
	el := arrival - s.firstArrival
	units := el/second*s.clockRate + el%second*s.clockRate/second
	return uint32(units) - rtpTS
}

// updateJitter runs only for packets that advance the highest number, as
// libwebrtc does: a reordered packet's transit would count its delay in
// the queue as jitter twice.
func (s *Stream) updateJitter(rtpTS uint32, arrival int64) {
	if s.clockRate == 0 {
		return
	}
	t := s.transitOf(rtpTS, arrival)
	d := int64(int32(t - s.transit))
	s.transit = t
	if d < 0 {
		d = -d
	}
	s.jitter += d - (s.jitter+8)>>4
}

// SenderReport records the middle 32 bits of an SR's NTP timestamp (for LSR) and when it arrived (for DLSR), unix nanoseconds.
func (s *Stream) SenderReport(ntp uint64, arrival int64) {
	s.lsr = uint32(ntp >> 16)
	s.srArrival = arrival
	s.haveSR = true
}

// Report returns the reception report block as of now (unix ns) and starts the next interval (fraction lost is for the interval since the previous Report). ok is false before the first packet.
func (s *Stream) Report(now int64) (rr rtcp.ReceptionReport, ok bool) {
	if !s.started {
		return rr, false
	}
	hi := s.highest()
	expected := hi - s.base + 1
	expInterval := expected - s.expectedPrior
	lostInterval := expInterval - (s.received - s.receivedPrior)
	s.expectedPrior, s.receivedPrior = expected, s.received

	rr.SSRC = s.ssrc
	rr.LastSequenceNumber = uint32(hi)
	// Late packets can make the loss negative; a 24-bit signed field
	// could carry it, but receivers (Pion, libwebrtc) expect 0 at worst.
	rr.TotalLost = uint32(min(max(expected-s.received, 0), 0x7FFFFF))
	if expInterval > 0 && lostInterval > 0 {
		rr.FractionLost = uint8(min(lostInterval<<8/expInterval, 255))
	}
	rr.Jitter = uint32(min(s.jitter>>4, math.MaxUint32))
	if s.haveSR {
		rr.LastSenderReport = s.lsr
		if el := now - s.srArrival; el > 0 {
			// In 1/65536 s, split like transitOf so days do not overflow.
			rr.Delay = uint32(min(el/second<<16+el%second<<16/second, math.MaxUint32))
		}
	}
	return rr, true
}
