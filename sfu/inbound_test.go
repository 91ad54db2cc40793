package sfu

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/ducha-dev/ducha/internal/twccfb"
)

// A publisher's media over a real connection comes in through the own
// ingress, not Pion's receive chain: all but a stream's first packets are
// taken off the socket, none fails its check, and the subscriber gets
// audio and video; the subscriber's RTCP is taken as well. The publisher
// gets its transport-wide feedback and receiver reports for both streams
// from the SFU's own receive side, the reports carrying its sender
// reports' time (LSR). The plain Pion peers negotiate cryptex, so the
// ingress decrypts encrypted header extensions. (The call: TestOwnSRTP.)
func checkOwnIngress(t *testing.T, s *SFU, pub, sub *testClient) {
	var video, audio *recvTrack
	eventually(t, 30*time.Second, "subscriber receives the publisher's audio and video", func() bool {
		video = sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		audio = sub.track(publishedBy(s, "r", pub.part.info.ID, "audio"))
		return video != nil && audio != nil && video.packets.Load() > 300 && audio.packets.Load() > 100
	})
	eventually(t, 30*time.Second, "feedback on 300 of the publisher's packets", func() bool {
		return pub.twccAcked.Load() >= 300
	})
	st := s.Stats()
	if st.IngressPackets == 0 || st.IngressPackets < st.PacketsIn*3/4 {
		t.Errorf("the ingress took %d of %d packets in, want nearly all", st.IngressPackets, st.PacketsIn)
	}
	if st.IngressFailures != 0 || st.IngressFallbacks != 0 {
		t.Errorf("ingress failures %d, fallbacks %d; want none", st.IngressFailures, st.IngressFallbacks)
	}
	// The subscriber's RTCP comes in through the ingress too: its receiver
	// reports give the video's downTrack its round trip.
	if st.IngressRTCP == 0 {
		t.Error("no RTCP taken by the ingress")
	}
	// and the RTCP the publisher gets leaves through the own SRTCP sender.
	if pub.part.in.out.Load() == nil || pub.part.in.ownSent.Load() == 0 {
		t.Error("the publisher's feedback did not go through the own SRTCP sender")
	}
	up := s.Room("r").track(publishedBy(s, "r", pub.part.info.ID, "video"))
	eventually(t, 30*time.Second, "the subscriber's round trip measured from its receiver reports", func() bool {
		sub.part.mu.Lock()
		defer sub.part.mu.Unlock()
		e := sub.part.downs[up]
		return e != nil && e.dt.rttMicros.Load() > 0
	})
	for _, tr := range pub.sendTracks {
		ssrc := publishedSSRC(t, s, pub, tr.Kind().String())
		eventually(t, 30*time.Second, "a receiver report with LSR for the publisher's "+tr.Kind().String(), func() bool {
			v, ok := pub.reports.Load(ssrc)
			if !ok {
				return false
			}
			r := v.(rtcp.ReceptionReport)
			return r.LastSenderReport != 0 && r.LastSequenceNumber > 100
		})
		v, _ := pub.reports.Load(ssrc)
		if r := v.(rtcp.ReceptionReport); r.TotalLost != 0 || r.FractionLost != 0 {
			t.Errorf("%s: report says %d lost (fraction %d) on a lossless link", tr.Kind(), r.TotalLost, r.FractionLost)
		}
	}
}

// publishedSSRC is the SSRC the server receives a publisher's track of
// kind on.
func publishedSSRC(t *testing.T, s *SFU, c *testClient, kind string) uint32 {
	t.Helper()
	up := s.Room("r").track(publishedBy(s, "r", c.part.info.ID, kind))
	if up == nil {
		t.Fatalf("no %s track published", kind)
	}
	return up.base().ssrc
}

// A publisher that loses packets on its uplink is asked for them (the
// SFU's own NACKs), and its receiver reports count what never came.
func TestPublisherLossNACKedAndReported(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, lossy := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{dropOut: 10})
	defer pub.close()
	pub.publish("audio")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	// Audio is not NACKed: every tenth packet stays lost, and the reports
	// say so (about 10 %: 25 of 256).
	var ssrc uint32
	eventually(t, 30*time.Second, "audio published", func() bool {
		return publishedBy(s, "r", pub.part.info.ID, "audio") != ""
	})
	ssrc = publishedSSRC(t, s, pub, "audio")
	eventually(t, 30*time.Second, "a receiver report counting the lost audio", func() bool {
		v, ok := pub.reports.Load(ssrc)
		if !ok {
			return false
		}
		r := v.(rtcp.ReceptionReport)
		return r.TotalLost >= 5 && r.FractionLost >= 15 && r.FractionLost <= 40
	})
	if lossy.dropped.Load() == 0 {
		t.Fatal("the lossy link dropped nothing")
	}
	if n := pub.nacked.Load(); n != 0 {
		t.Errorf("%d audio packets NACKed, want none", n)
	}
	if s.Stats().NACKsOut != 0 {
		t.Errorf("NACKs counted for audio")
	}
}

// ingressFixture is an inbound with a known remote key, registered under
// an address, and a publisher's SRTP context with the same key.
type ingressFixture struct {
	table *ingressTable
	in    *inbound
	l     *upLayer
	from  netip.AddrPort
	send  *srtp.Context
	ctr   counters
	est   *bwe.Estimator
}

func newIngressFixture(t *testing.T) *ingressFixture {
	t.Helper()
	f := &ingressFixture{table: newIngressTable(), from: netip.MustParseAddrPort("192.0.2.9:5000")}
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	var err error
	if f.send, err = srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm); err != nil {
		t.Fatal(err)
	}
	f.est = bwe.New(bwe.Config{Initial: initialEstimate, Min: minEstimate, Max: maxEstimate}, time.Now())
	f.in = newInbound(f.table, &f.ctr, discardLogger(), SystemClock{}, f.est, func([]rtcp.Packet) error { return nil })
	k := &srtpKeys{cfg: srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}}
	k.cfg.Keys.RemoteMasterKey, k.cfg.Keys.RemoteMasterSalt = key, salt
	if err := f.in.startIngress(k); err != nil {
		t.Fatal(err)
	}
	f.table.move(f.in, f.from, true)
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 0x5eed, vp8Params(), 64, SystemClock{},
		discardLogger(), &f.ctr, fanoutOptions{queueLen: 8, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond},
		func(uint32) {})
	f.l = u.layers[0]
	f.in.add(f.l)
	t.Cleanup(f.in.close)
	return f
}

func (f *ingressFixture) packet(t *testing.T, ssrc uint32, seq uint16) []byte {
	t.Helper()
	plain, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 3000,
		SSRC: ssrc}, Payload: vp8Packet(seq, false)[12:]}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := f.send.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// The ingress takes only what it can handle: RTP of a known layer from the
// selected pair's address, that decrypts. Everything else reaches Pion as
// it came; a layer whose packets keep failing is left to Pion.
func TestIngressTakes(t *testing.T) {
	f := newIngressFixture(t)
	at := time.Now()
	if !f.table.take(f.packet(t, 0x5eed, 1), f.from, at) {
		t.Fatal("a known layer's packet was not taken")
	}
	if f.l.cache.get(1, make([]byte, slotSize)) == 0 {
		t.Fatal("the taken packet is not in the layer's cache")
	}
	if d, ok := f.l.arrived.Since(1, at); !ok || d != 0 {
		t.Errorf("arrival %v %v, want the socket's time", d, ok)
	}
	// Not taken: another sender, an unknown SSRC, RTCP, a non-RTP datagram.
	other := netip.MustParseAddrPort("192.0.2.10:5000")
	if f.table.take(f.packet(t, 0x5eed, 2), other, at) {
		t.Error("a packet from another address was taken")
	}
	if f.table.take(f.packet(t, 0xbeef, 1), f.from, at) {
		t.Error("an unknown SSRC's packet was taken")
	}
	rr, _ := (&rtcp.ReceiverReport{SSRC: 0x5eed}).Marshal()
	if f.table.take(rr, f.from, at) {
		t.Error("RTCP that is not SRTCP was taken")
	}
	if f.table.take([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, f.from, at) {
		t.Error("STUN was taken")
	}
	// An IPv4 sender read by a dual-stack socket is the same sender.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(f.from.Addr().As16()), f.from.Port())
	if !f.table.take(f.packet(t, 0x5eed, 3), mapped, at) {
		t.Error("the sender's packet read as ::ffff:192.0.2.9 was not taken")
	}
	// A packet that fails its check goes to Pion unchanged.
	for i := range ingressFailLimit {
		bad := f.packet(t, 0x5eed, uint16(10+i))
		bad[len(bad)-1] ^= 0xff
		orig := append([]byte(nil), bad...)
		if f.table.take(bad, f.from, at) {
			t.Fatal("a packet that fails authentication was taken")
		}
		if !bytes.Equal(bad, orig) {
			t.Fatal("a refused packet was changed")
		}
	}
	// The plain RTCP above failed too.
	if f.ctr.ingressFailures.Load() != ingressFailLimit+1 || f.ctr.ingressFallbacks.Load() != 1 {
		t.Errorf("failures %d, fallbacks %d; want %d and 1", f.ctr.ingressFailures.Load(),
			f.ctr.ingressFallbacks.Load(), ingressFailLimit+1)
	}
	if f.table.take(f.packet(t, 0x5eed, 40), f.from, at) {
		t.Error("a layer left to Pion is still taken")
	}
	// A closed connection takes nothing.
	f.in.close()
	if len(f.table.byAddr) != 0 {
		t.Error("a closed connection is still registered")
	}
}

// rtcpRecorder is a downTrack's RTCP reader as the ingress sees it.
type rtcpRecorder struct {
	mu   sync.Mutex
	pkts []rtcp.Packet
}

func (r *rtcpRecorder) handleRTCP(pkt rtcp.Packet, _ time.Time) {
	r.mu.Lock()
	r.pkts = append(r.pkts, pkt)
	r.mu.Unlock()
}

// The ingress takes a connection's SRTCP and hands each packet of the
// compound to what reads it: the publisher's sender report to its layer,
// transport-wide feedback to the connection's estimator, reports and
// NACKs to the downTrack whose stream they are about (nothing to one that
// was removed). RTCP that fails its check goes to Pion.
func TestIngressTakesRTCP(t *testing.T) {
	f := newIngressFixture(t)
	down, gone := &rtcpRecorder{}, &rtcpRecorder{}
	f.in.addSink(0xd0, down)
	f.in.addSink(0xd1, gone)
	f.in.removeSink(0xd1, gone)
	// The estimator sent three packets; the subscriber's feedback says
	// they arrived.
	now := time.Now()
	fb := twccfb.New(now)
	for range 3 {
		fb.Record(0xd0, f.est.Sent(now, 1000), now.Add(10*time.Millisecond))
	}
	compound := []rtcp.Packet{
		&rtcp.SenderReport{SSRC: 0x5eed, NTPTime: 0x1122334455667788, RTPTime: 90000},
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 0xd0, FractionLost: 12},
			{SSRC: 0xd1}, {SSRC: 0xee}}},
		&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 0xd0, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{7})},
		&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 0xd1},
	}
	compound = append(compound, fb.Build()...)
	plain, err := rtcp.Marshal(compound)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := f.send.EncryptRTCP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.table.take(enc, f.from, now) {
		t.Fatal("the connection's SRTCP was not taken")
	}
	if sr := f.l.sr.Load(); sr == nil || sr.NTPTime != 0x1122334455667788 || sr.RTPTime != 90000 {
		t.Errorf("the layer's sender report is %+v", sr)
	}
	if st := f.est.Stats(); st.Received != 3 {
		t.Errorf("the estimator heard of %d packets received, want 3", st.Received)
	}
	if len(down.pkts) != 2 {
		t.Fatalf("the downTrack read %d packets, want the report and the NACK", len(down.pkts))
	}
	if _, ok := down.pkts[0].(*rtcp.ReceiverReport); !ok {
		t.Errorf("first packet %T, want the receiver report", down.pkts[0])
	}
	if n, ok := down.pkts[1].(*rtcp.TransportLayerNack); !ok || n.Nacks[0].PacketID != 7 {
		t.Errorf("second packet %+v, want the NACK of 7", down.pkts[1])
	}
	if len(gone.pkts) != 0 {
		t.Errorf("a removed downTrack read %d packets", len(gone.pkts))
	}
	// A sender report of a stream not published yet goes to Pion, whose
	// receiver reads it, with the rest of its compound.
	early, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0xabc}})
	if encEarly, err := f.send.EncryptRTCP(nil, early, nil); err != nil || f.table.take(encEarly, f.from, now) {
		t.Errorf("a sender report of an unknown stream was taken (%v)", err)
	}
	// Authentic RTCP that does not parse (a length beyond the packet) is
	// dropped and counted: Pion could not read it either.
	bad := []byte{0x80, 201, 0x00, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	if encBad, err := f.send.EncryptRTCP(nil, bad, nil); err != nil || !f.table.take(encBad, f.from, now) {
		t.Errorf("authentic, malformed RTCP not taken (%v)", err)
	}
	if f.ctr.rtcpMalformed.Load() != 1 {
		t.Errorf("malformed RTCP counted %d times, want 1", f.ctr.rtcpMalformed.Load())
	}
	enc[len(enc)-5] ^= 0xff // inside the authentication tag
	if f.table.take(enc, f.from, now) {
		t.Error("SRTCP that fails its check was taken")
	}
	if f.ctr.ingressRTCP.Load() != 1 || f.ctr.ingressFailures.Load() != 1 {
		t.Errorf("RTCP taken %d, failures %d; want 1 and 1", f.ctr.ingressRTCP.Load(), f.ctr.ingressFailures.Load())
	}
}

// writeCapture is an ICE connection that keeps what is written.
type writeCapture struct {
	mu  sync.Mutex
	got [][]byte
}

func (w *writeCapture) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.got = append(w.got, append([]byte(nil), b...))
	w.mu.Unlock()
	return len(b), nil
}

// The own SRTCP sender encrypts a compound that starts with a report from
// its own SSRC, which the other end decrypts; it refuses any other, since
// an SSRC Pion also sends from could reuse a nonce.
func TestSRTCPOut(t *testing.T) {
	key, salt := bytes.Repeat([]byte{3}, 16), bytes.Repeat([]byte{5}, 12)
	k := &srtpKeys{cfg: srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}}
	k.cfg.Keys.LocalMasterKey, k.cfg.Keys.LocalMasterSalt = key, salt
	conn := &writeCapture{}
	out, err := newSRTCPOut(k, &egress{conn: conn}, 0x5e1f)
	if err != nil {
		t.Fatal(err)
	}
	nack := &rtcp.TransportLayerNack{SenderSSRC: 0x5e1f, MediaSSRC: 9, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{4})}
	if err := out.write([]rtcp.Packet{nack}); err == nil {
		t.Error("a compound that does not start with the sender's report was sent")
	}
	if err := out.write([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x5e1f}, nack}); err != nil {
		t.Fatal(err)
	}
	if len(conn.got) != 1 {
		t.Fatalf("%d packets written, want 1", len(conn.got))
	}
	rx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rx.DecryptRTCP(nil, conn.got[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil || len(pkts) != 2 {
		t.Fatalf("decrypted %d packets (%v), want 2", len(pkts), err)
	}
	if n, ok := pkts[1].(*rtcp.TransportLayerNack); !ok || n.Nacks[0].PacketID != 4 {
		t.Errorf("second packet %+v, want the NACK", pkts[1])
	}
}

// The receive side's loop sends the publisher NACKs for what is missing,
// receiver reports, and transport-wide feedback; both of a layer's paths
// (Pion's reader and the ingress) feed it, and close stops it.
func TestInboundLoop(t *testing.T) {
	var mu sync.Mutex
	var sent []rtcp.Packet
	var ctr counters
	in := newInbound(newIngressTable(), &ctr, discardLogger(), SystemClock{}, nil, func(p []rtcp.Packet) error {
		mu.Lock()
		sent = append(sent, p...)
		mu.Unlock()
		return nil
	})
	l := feedbackLayer(in, &ctr)
	for seq := uint16(1); seq <= 10; seq++ {
		if seq == 5 {
			continue
		}
		p := twccPacket(t, 0x5eed, seq, seq)
		if seq%2 == 0 {
			l.ingest(p) // Pion's path
		} else {
			l.ingestAt(p, time.Now()) // the ingress
		}
	}
	var nack *rtcp.TransportLayerNack
	var rr *rtcp.ReceiverReport
	var cc *rtcp.TransportLayerCC
	eventually(t, 10*time.Second, "a NACK, a receiver report and transport-wide feedback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range sent {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				nack = p
			case *rtcp.ReceiverReport:
				rr = p
			case *rtcp.TransportLayerCC:
				cc = p
			}
		}
		return nack != nil && rr != nil && cc != nil
	})
	if nack.MediaSSRC != 0x5eed || len(nack.Nacks) != 1 || nack.Nacks[0].PacketID != 5 || nack.Nacks[0].LostPackets != 0 {
		t.Errorf("NACK %+v, want packet 5 of 0x5eed", nack)
	}
	if len(rr.Reports) != 1 || rr.Reports[0].SSRC != 0x5eed || rr.Reports[0].TotalLost != 1 ||
		rr.Reports[0].LastSequenceNumber != 10 {
		t.Errorf("receiver report %+v, want 1 of 10 lost for 0x5eed", rr.Reports)
	}
	if cc.BaseSequenceNumber != 1 || cc.PacketStatusCount != 10 {
		t.Errorf("feedback %+v, want packets 1-10 (5 missing)", cc)
	}
	done := make(chan struct{})
	go func() {
		in.close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return: the loop did not stop")
	}
}

// feedbackLayer is a video layer (SSRC 0x5eed, transport-wide sequence
// numbers in extension 4) registered with in.
func feedbackLayer(in *inbound, ctr *counters) *upLayer {
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 0x5eed, vp8Params(), 64, SystemClock{},
		discardLogger(), ctr, fanoutOptions{queueLen: 8, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond},
		func(uint32) {})
	l := u.layers[0]
	l.twccID = 4
	in.add(l)
	return l
}

func twccPacket(t *testing.T, ssrc uint32, seq, tseq uint16) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: ssrc}, Payload: []byte{1}}
	if err := p.SetExtension(4, []byte{byte(tseq >> 8), byte(tseq)}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Once the connection's RTCP is its own, the ingress's reader runs the
// receive side's tick when a datagram finds it due, on its own goroutine,
// and pushes the loop's timer back; the loop ticks again when the reader
// stops.
func TestInboundTickOnReader(t *testing.T) {
	var ctr counters
	in := newInbound(newIngressTable(), &ctr, discardLogger(), SystemClock{}, nil, func([]rtcp.Packet) error {
		t.Error("RTCP sent through Pion with the own SRTCP up")
		return nil
	})
	k := &srtpKeys{cfg: srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}}
	k.cfg.Keys.LocalMasterKey, k.cfg.Keys.LocalMasterSalt = bytes.Repeat([]byte{3}, 16), bytes.Repeat([]byte{5}, 12)
	conn := &writeCapture{}
	if err := in.startOwnRTCP(k, &egress{conn: conn}); err != nil {
		t.Fatal(err)
	}
	l := feedbackLayer(in, &ctr)
	defer in.close()
	now := time.Now().UnixNano()
	step := int64(twccfb.Interval)
	for i, at := range []int64{now, now + step/2, now + step, now + 2*step} {
		l.ingestAt(twccPacket(t, 0x5eed, uint16(i+1), uint16(i+1)), time.Unix(0, at))
		in.tickIfDue(at)
	}
	// Due at now, now+step and now+2*step: three ticks, made by this
	// goroutine before each call returned.
	if n := in.ownSent.Load(); n != 3 {
		t.Fatalf("%d compounds sent by the reader's ticks, want 3", n)
	}
	time.Sleep(idleTick / 4)
	if n := in.ownSent.Load(); n != 3 {
		t.Fatalf("%d compounds sent: the loop ticked while the reader was ticking", n)
	}
	eventually(t, 10*time.Second, "the loop's own tick once the reader stopped", func() bool {
		return in.ownSent.Load() > 3
	})
}
