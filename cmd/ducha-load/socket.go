package main

import (
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
		o.twcc.RecordPacket(b, uint8(id), at)
	}
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
