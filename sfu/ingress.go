package sfu

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The ingress is the SFU's own SRTP receiver (docs/media.md, "Our own SRTP
// on the way in"). Through Pion, every packet a publisher sends is handed
// from goroutine to goroutine four times before our track reader sees it:
// the UDP mux's reader, the ICE candidate's, the DTLS/SRTP mux's, the SRTP
// session's, each with a copy into a buffer of its own. The ingress takes a
// publisher's RTP on the UDP mux's reader itself, the moment the socket
// returns it: it finds the connection by the sender's address (the selected
// candidate pair's remote end), the published layer by SSRC, decrypts with
// the connection's remote SRTP key and ingests the packet there.
//
// The connection's SRTCP is taken the same way (takeRTCP). Pion still sees
// everything else: ICE, DTLS, ICE-TCP, and the first packets of a stream
// until its track is published (it finds tracks and simulcast layers). A
// packet the ingress cannot decrypt goes to Pion as it came, and a layer
// whose packets keep failing is left to Pion. Both paths end in
// upLayer.ingestAt, which serialises them, and in the same RTCP handlers.

// ingressTable is the SFU-wide demultiplexer: connections by sender
// address. Read by the UDP mux's one reader goroutine per datagram.
type ingressTable struct {
	mu     sync.RWMutex
	byAddr map[netip.AddrPort]*inbound
}

func newIngressTable() *ingressTable {
	return &ingressTable{byAddr: map[netip.AddrPort]*inbound{}}
}

// take is the UDP mux's Taker (arrival.WrapTaking): it reports whether it
// handled the datagram. b is the mux's buffer, valid during the call.
func (t *ingressTable) take(b []byte, from netip.AddrPort, at time.Time) bool {
	// RTP and RTCP (types 192-223 share the first byte, RFC 5761); STUN
	// and DTLS stay with Pion.
	if len(b) < 8 || b[0]>>6 != 2 {
		return false
	}
	t.mu.RLock()
	in := t.byAddr[unmapped(from)]
	t.mu.RUnlock()
	if in == nil {
		return false
	}
	var taken bool
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		taken = in.takeRTCP(b)
	} else {
		taken = len(b) >= 12 && in.take(b, at)
	}
	if taken {
		in.tickIfDue(at.UnixNano())
	}
	return taken
}

// readerBehind is how many datagrams left in the reader's burst (of at
// most 32) mean that it lags the socket.
const readerBehind = 16

// takeDatagram is what the UDP mux's reader does with each datagram before
// Pion may see it (arrival.Taker): the ingress takes what it can, and
// Pion's path is timed for the rest.
//
// The reader writes small fan-outs itself (fanWriter.tryInline), so it
// holds the send batch while it handles a burst of datagrams (what one
// recvmmsg returned) and writes the burst's copies with one system call
// at its end, or before it hands a datagram to Pion, which may take a
// while. Waking the sender goroutine for them would cost a hand-off
// between threads per burst, more than the call.
//
// The inline writes are the reader's only while it keeps up: with
// readerBehind datagrams or more still waiting in its burst, the server is
// busy enough for writers on other cores to pay, and small fan-outs go to
// them until the reader has caught up.
func (s *SFU) takeDatagram(b []byte, from netip.AddrPort, at time.Time) bool {
	if s.batch != nil && !s.corked {
		s.batch.Cork()
		s.corked = true
		behind := s.batch.Buffered() >= readerBehind
		s.behind.Store(behind)
		s.ctr.readerBursts.Add(1)
		if behind {
			s.ctr.readerBehind.Add(1)
		}
	}
	taken := s.ingress.take(b, from, at)
	if !taken {
		s.socket.observe(b, at)
	}
	if s.corked && (!taken || s.batch.Buffered() == 0) {
		s.corked = false
		s.batch.UncorkWrite()
	}
	return taken
}

// unmapped gives an IPv4 sender the same key whether a dual-stack socket
// read it (as ::ffff:a.b.c.d) or the candidate named it.
func unmapped(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}

// move registers in under addr (ok false: under none), in place of its
// previous address.
func (t *ingressTable) move(in *inbound, addr netip.AddrPort, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if in.hasAddr && t.byAddr[in.addr] == in {
		delete(t.byAddr, in.addr)
	}
	in.addr, in.hasAddr = addr, ok
	if ok {
		t.byAddr[addr] = in
	}
}

// ingressFailLimit is how many packets of one layer in a row may fail to
// decrypt before the layer is left to Pion: its SRTP state differs from
// ours (a rollover counter Pion learnt before the ingress took over).
const ingressFailLimit = 16

// ingressLayer is a published layer as the ingress knows it.
type ingressLayer struct {
	l     *upLayer
	fails int
	pion  bool // its packets keep failing: left to Pion's path
}

// ingressState is an inbound's decryption state, set when the connection
// is up with keys the ingress could read; used under inbound.mu.
type ingressState struct {
	ctx   *srtp.Context
	hdr   rtp.Header
	rtcpH rtcp.Header
	buf   []byte
}

// startIngress gives in the remote SRTP key; from then on its layers'
// packets from the selected pair's address are taken.
func (in *inbound) startIngress(k *srtpKeys) error {
	var opts []srtp.ContextOption
	if k.remoteCryptex == srtp.CryptexModeEnabled || k.remoteCryptex == srtp.CryptexModeRequired {
		opts = append(opts, srtp.Cryptex(k.remoteCryptex))
	}
	// No replay window: a replayed packet is a duplicate in the packet
	// cache, or older than it (refused), or, past half the sequence
	// space, fails authentication under the rollover counter guessed.
	ctx, err := srtp.CreateContext(k.cfg.Keys.RemoteMasterKey, k.cfg.Keys.RemoteMasterSalt, k.cfg.Profile, opts...)
	if err != nil {
		return fmt.Errorf("%w: SRTP context: %w", errNoOwnSRTP, err)
	}
	in.mu.Lock()
	in.ing = &ingressState{ctx: ctx, buf: make([]byte, slotSize+64)}
	in.mu.Unlock()
	return nil
}

// setPair follows the ICE agent's choice of candidate pair (the egress's
// rule: a UDP host pair is on the SFU's socket).
func (in *inbound) setPair(p *webrtc.ICECandidatePair) {
	addr, ok := udpPairRemote(p)
	in.table.move(in, unmapped(addr), ok)
}

// take decrypts and ingests one packet of a layer the ingress knows, on
// the UDP mux's reader.
func (in *inbound) take(b []byte, at time.Time) bool {
	ssrc := binary.BigEndian.Uint32(b[8:12])
	in.mu.Lock()
	defer in.mu.Unlock()
	il := in.layers[ssrc]
	if il == nil || il.pion || in.ing == nil || in.closed {
		return false
	}
	g := in.ing
	// Into a buffer of our own: on a failed check AES-GCM clears what it
	// wrote, and the packet must reach Pion as it came.
	out, err := g.ctx.DecryptRTP(g.buf, b, &g.hdr)
	if err != nil {
		in.ctr.ingressFailures.Add(1)
		if il.fails++; il.fails >= ingressFailLimit {
			il.pion = true
			in.ctr.ingressFallbacks.Add(1)
			in.log.Warn("layer's packets fail our SRTP check: left to Pion's path", "ssrc", ssrc, "err", err)
		}
		return false
	}
	il.fails = 0
	in.ctr.ingressPackets.Add(1)
	il.l.ingestAt(out, at)
	return true
}

// rtcpSink is what reads a subscriber's RTCP about one stream the SFU
// sends it (a downTrack).
type rtcpSink interface {
	handleRTCP(pkt rtcp.Packet, now time.Time)
}

// addSink routes RTCP about the SFU's stream ssrc to s; removeSink stops.
func (in *inbound) addSink(ssrc uint32, s rtcpSink) {
	in.mu.Lock()
	in.sinks[ssrc] = s
	in.mu.Unlock()
}

func (in *inbound) removeSink(ssrc uint32, s rtcpSink) {
	in.mu.Lock()
	if in.sinks[ssrc] == s {
		delete(in.sinks, ssrc)
	}
	in.mu.Unlock()
}

// rtcpTarget is one parsed RTCP packet and who handles it.
type rtcpTarget struct {
	pkt   rtcp.Packet
	sink  rtcpSink // a subscriber's report, NACK or keyframe request
	layer *upLayer // a publisher's sender report
}

// takeRTCP decrypts a compound RTCP packet and hands each part to what
// reads it: the publisher's layers their sender reports, the connection's
// estimator the transport-wide feedback, each downTrack the reports,
// NACKs and keyframe requests about its stream (as Pion's RTCP reads did,
// by the packet's destination SSRCs). All of a connection's RTCP readers
// are ours, so a compound the ingress decrypted is handled in full.
func (in *inbound) takeRTCP(b []byte) bool {
	in.mu.Lock()
	if in.ing == nil || in.closed {
		in.mu.Unlock()
		return false
	}
	g := in.ing
	out, err := g.ctx.DecryptRTCP(g.buf, b, &g.rtcpH)
	if err != nil {
		in.mu.Unlock()
		in.ctr.ingressFailures.Add(1)
		return false
	}
	pkts, err := rtcp.Unmarshal(out)
	if err != nil {
		in.mu.Unlock()
		in.ctr.rtcpMalformed.Add(1)
		return true // authentic, and unreadable by Pion as well
	}
	var buf [8]rtcpTarget
	targets := buf[:0]
	for _, pkt := range pkts {
		switch p := pkt.(type) {
		case *rtcp.SenderReport:
			il := in.layers[p.SSRC]
			if il == nil {
				// A stream whose track is not published yet: its
				// receiver's reader takes the report, through Pion
				// (a browser's audio reports come every 5 s).
				in.mu.Unlock()
				return false
			}
			targets = append(targets, rtcpTarget{pkt: p, layer: il.l})
		case *rtcp.TransportLayerCC:
			targets = append(targets, rtcpTarget{pkt: p})
		default:
			for _, ssrc := range pkt.DestinationSSRC() {
				if s := in.sinks[ssrc]; s != nil {
					targets = append(targets, rtcpTarget{pkt: pkt, sink: s})
				}
			}
		}
	}
	in.mu.Unlock()
	// Handled outside the lock: a NACK is answered from here (retransmit).
	in.ctr.ingressRTCP.Add(1)
	now := in.clock.Now()
	for _, t := range targets {
		switch {
		case t.layer != nil:
			sr := t.pkt.(*rtcp.SenderReport)
			t.layer.setSenderReport(sr.NTPTime, sr.RTPTime)
		case t.sink != nil:
			t.sink.handleRTCP(t.pkt, now)
		default:
			if in.estimator != nil {
				in.estimator.Feedback(t.pkt.(*rtcp.TransportLayerCC), now)
			}
		}
	}
	return true
}
