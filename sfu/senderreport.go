package sfu

import (
	"time"

	"github.com/ducha-dev/ducha/internal/ntp"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Sender reports (RFC 3550 6.4.1) for what the SFU forwards. Pion's
// report.SenderInterceptor counted every packet on its write chain; the
// own SRTP egress (egress.go) bypasses that chain, so each rtpOut keeps its
// own count and the room sends every subscriber's reports once a second
// (Room.tickReports). Browsers need them: they map RTP time to wall-clock
// time with them to keep a speaker's lips and voice together, and they echo
// them in receiver reports, from which downTrack measures the round trip.

// senderReportInterval is Pion's and libwebrtc's default.
const senderReportInterval = time.Second

// srBatch caps the sender reports in one compound RTCP packet: 28 bytes
// each, so 32 stay well under any path's MTU with SRTCP's overhead.
const srBatch = 32

// srStats is what a sender report says of one outgoing stream. It is kept
// under the lock of the rtpOut's owner.
type srStats struct {
	clockRate uint32
	packets   uint32
	octets    uint32
	lastSeq   uint16
	lastTS    uint32    // RTP timestamp of the newest frame sent
	lastAt    time.Time // when its first packet was sent
}

// sent counts one packet, as Pion's senderStream.processRTP did: the time
// mapping moves on only with in-order packets and only at a new frame, so a
// retransmission or a frame's later packets do not skew it.
func (s *srStats) sent(h *rtp.Header, payload int, now time.Time) {
	if diff := h.SequenceNumber - s.lastSeq; s.packets == 0 || (diff > 0 && diff < 1<<15) {
		s.lastSeq = h.SequenceNumber
		if s.packets == 0 || h.Timestamp != s.lastTS {
			s.lastTS, s.lastAt = h.Timestamp, now
		}
	}
	s.packets++
	s.octets += uint32(payload) //nolint:gosec // RTP's octet count wraps by definition
}

// report is the stream's sender report at now; false before its first
// packet (RFC 3550 6.4: a source that has sent nothing sends no SR).
func (s *srStats) report(ssrc uint32, now time.Time) (rtcp.SenderReport, bool) {
	if s.packets == 0 || s.clockRate == 0 {
		return rtcp.SenderReport{}, false
	}
	elapsed := now.Sub(s.lastAt)
	return rtcp.SenderReport{
		SSRC:        ssrc,
		NTPTime:     ntp.From(now),
		RTPTime:     s.lastTS + uint32(elapsed.Seconds()*float64(s.clockRate)), //nolint:gosec // wraps as RTP time does
		PacketCount: s.packets,
		OctetCount:  s.octets,
	}, true
}

// reporter is a stream the participant receives: a downTrack or a speaker
// slot, which lock their rtpOut.
type reporter interface {
	senderReport(now time.Time) (rtcp.SenderReport, bool)
}

func (d *downTrack) senderReport(now time.Time) (rtcp.SenderReport, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound || d.closed {
		return rtcp.SenderReport{}, false
	}
	return d.sr.report(d.ssrc, now)
}

func (s *speakerSlot) senderReport(now time.Time) (rtcp.SenderReport, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bound || s.closed {
		return rtcp.SenderReport{}, false
	}
	return s.sr.report(s.ssrc, now)
}

// sendReports writes the sender reports of everything p receives.
func (p *Participant) sendReports(now time.Time) {
	if !p.ready.Load() {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	outs := make([]reporter, 0, len(p.downs)+len(p.slots))
	for _, e := range p.downs {
		outs = append(outs, e.dt)
	}
	for _, s := range p.slots {
		outs = append(outs, s)
	}
	p.mu.Unlock()

	var pkts []rtcp.Packet
	flush := func() {
		if len(pkts) == 0 {
			return
		}
		if err := p.pc.WriteRTCP(pkts); err != nil {
			p.log.Debug("sender reports", "err", err)
		}
		pkts = nil // Pion's RTCP chain may keep what it was given
	}
	for _, o := range outs {
		if sr, ok := o.senderReport(now); ok {
			pkts = append(pkts, &sr)
			if len(pkts) == srBatch {
				flush()
			}
		}
	}
	flush()
}

// tickReports sends every participant's sender reports.
func (r *Room) tickReports() {
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		return
	}
	parts := r.othersLocked(nil)
	r.mu.Unlock()
	now := r.sfu.cfg.Clock.Now()
	for _, p := range parts {
		p.sendReports(now)
	}
	r.mu.Lock()
	if !r.dead {
		r.reportTimer = r.sfu.cfg.Clock.AfterFunc(senderReportInterval, r.tickReports)
	}
	r.mu.Unlock()
}
