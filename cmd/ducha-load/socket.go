package main

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/internal/arrival"
)

// A browser takes a packet's arrival time on its network thread, as the
// datagram leaves the kernel: that is the time its TWCC feedback reports
// and the time the packet is there to be decoded. A Pion client learns of
// a packet only after its own chain of goroutines (ICE mux, DTLS/SRTP
// demux, decrypt, interceptors, track buffer), and on this shared box 118
// simulated clients queue for the CPU along that chain. Timed there, the
// clients' own CPU queue reads as the SFU's delay and, in the feedback, as
// congestion on the link. So the agent's socket is wrapped
// (internal/arrival): every RTP datagram is timed by the kernel as it
// reaches the socket (SO_TIMESTAMPNS), so not even the wait of Pion's ICE
// mux reader for a CPU moves it; on a shaped downlink, when the shaper
// (which plays the network) releases it. The RTP header and its
// extensions travel in the clear in SRTP without cryptex (RFC 9335),
// which browsers do not offer and the client does not either
// (client.BrowserConfiguration), so the sequence numbers are readable
// there.

// socketObserver is what the socket tells of each RTP datagram read.
type socketObserver struct {
	now      func() time.Time
	arrivals *arrivals
	twcc     *twccFeedback // nil: the agent sends no feedback of its own
}

// wrapSocket returns conn with arrivals observed on every read: timed by
// the kernel on a plain socket, and at the read from a shaped one (the
// shaper plays the network and releases each packet at its time).
func wrapSocket(conn net.PacketConn, obs *socketObserver) net.PacketConn {
	if udp, ok := conn.(*net.UDPConn); ok {
		return arrival.WrapUDP(udp, obs.now, obs.observe)
	}
	return arrival.Wrap(conn, obs.now, obs.observe)
}

// observe times one datagram if it is RTP (not STUN, DTLS or RTCP).
func (o *socketObserver) observe(b []byte, at time.Time) {
	ssrc, seq, ok := arrival.RTP(b)
	if !ok {
		return
	}
	o.arrivals.ring(ssrc).Put(seq, at.UnixNano())
	if o.twcc == nil {
		return
	}
	if id := o.twcc.id.Load(); id != 0 {
		if tseq, ok := headerExtension16(b, uint8(id)); ok {
			o.twcc.record(ssrc, tseq, at)
		}
	}
}

// headerExtension16 reads the 16-bit value of RTP header extension id (one-
// or two-byte form, RFC 8285) without allocating: the transport-wide
// sequence number.
func headerExtension16(b []byte, id uint8) (uint16, bool) {
	if b[0]&0x10 == 0 {
		return 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if len(b) < off+4 {
		return 0, false
	}
	profile := binary.BigEndian.Uint16(b[off : off+2])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	if end > len(b) {
		return 0, false
	}
	oneByte := profile == 0xbede
	if !oneByte && profile&0xfff0 != 0x1000 {
		return 0, false
	}
	for i := off + 4; i < end; {
		var eid uint8
		var n int
		if oneByte {
			if b[i] == 0 { // padding
				i++
				continue
			}
			eid, n = b[i]>>4, int(b[i]&0x0f)+1
			if eid == 15 { // reserved: stop
				return 0, false
			}
			i++
		} else {
			if b[i] == 0 {
				i++
				continue
			}
			if i+1 >= end {
				return 0, false
			}
			eid, n = b[i], int(b[i+1])
			i += 2
		}
		if i+n > end {
			return 0, false
		}
		if eid == id {
			if n < 2 {
				return 0, false
			}
			return binary.BigEndian.Uint16(b[i : i+2]), true
		}
		i += n
	}
	return 0, false
}

// arrivals holds one ring per SSRC the agent receives. The socket's
// reader creates them; a track's reader looks its own up once.
type arrivals struct {
	mu sync.RWMutex
	m  map[uint32]*arrival.Ring
}

func newArrivals() *arrivals { return &arrivals{m: map[uint32]*arrival.Ring{}} }

func (a *arrivals) ring(ssrc uint32) *arrival.Ring {
	a.mu.RLock()
	r := a.m[ssrc]
	a.mu.RUnlock()
	if r != nil {
		return r
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r = a.m[ssrc]; r == nil {
		r = &arrival.Ring{}
		a.m[ssrc] = r
	}
	return r
}
