package sfu

import "time"

// rtxLimiter keeps NACK answers to a subscriber proportionate. A subscriber
// on a capped link loses many packets and NACKs them, sometimes repeatedly;
// answering every NACK at once can multiply its traffic and worsen the very
// congestion that caused the loss. Two rules:
//   - the same packet is resent at most once per interval (about a round
//     trip: a second NACK sooner is a duplicate, not a new loss);
//   - retransmissions in a one-second window stay below half of the packets
//     forwarded in the previous window (plus a small floor for low-rate
//     streams).
//
// Not safe for concurrent use: the downTrack's mutex guards it.
type rtxLimiter struct {
	// recent remembers the last resend per seq modulo 256; made at the
	// first NACK (audio and clean links never need its 2.5 KB).
	recent   *[256]rtxEntry
	winStart int64
	fwdPrev  int
	fwdCur   int
	rtxCur   int
}

type rtxEntry struct {
	seq uint16
	at  int64 // unix nanoseconds; 0 = never
}

const (
	rtxWindow = int64(time.Second)
	rtxFloor  = 10
)

func (l *rtxLimiter) roll(now int64) {
	if now-l.winStart >= rtxWindow {
		if now-l.winStart >= 2*rtxWindow {
			l.fwdPrev = 0 // nothing forwarded in the window that ended
		} else {
			l.fwdPrev = l.fwdCur
		}
		l.fwdCur, l.rtxCur, l.winStart = 0, 0, now
	}
}

// forwarded counts a packet sent normally.
func (l *rtxLimiter) forwarded(now int64) {
	l.roll(now)
	l.fwdCur++
}

// allow reports whether seq may be resent now; minGap is the shortest time
// between two resends of the same packet.
func (l *rtxLimiter) allow(seq uint16, now int64, minGap time.Duration) bool {
	l.roll(now)
	if l.recent == nil {
		l.recent = new([256]rtxEntry)
	}
	e := &l.recent[seq&0xff]
	if e.at != 0 && e.seq == seq && now-e.at < int64(minGap) {
		return false
	}
	if l.rtxCur >= l.fwdPrev/2+rtxFloor {
		return false
	}
	e.seq, e.at = seq, now
	l.rtxCur++
	return true
}
