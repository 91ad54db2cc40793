package sfu

import (
	"errors"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/ntp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// One call over real connections, a publisher's audio and video to a
// subscriber, checked on both sides of the SFU's own SRTP: the egress
// toward the subscriber, the ingress from both.
func TestOwnSRTP(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{stampTWCC: true})
	sub, _ := newTestClient(t, s, "r", "sub", RoleCounty, clientOpts{})
	defer sub.close()
	defer pub.close()
	pub.publish("video")
	pub.publish("audio")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	t.Run("egress", func(t *testing.T) { checkOwnEgress(t, s, pub, sub) })
	t.Run("ingress", func(t *testing.T) { checkOwnIngress(t, s, pub, sub) })
}

// Media to a subscriber leaves through its connection's own SRTP egress,
// and the subscriber's Pion stack decrypts it (retransmissions take the
// same path: TestSubscriberLossRepairedByNACK). Sender reports, which the
// egress makes the SFU send itself, count the packets and map RTP time to
// the wall clock as a browser needs for lip sync.
func checkOwnEgress(t *testing.T, s *SFU, pub, sub *testClient) {
	rates := map[string]uint32{"video": 90000, "audio": 48000}
	tracks := map[string]*recvTrack{}
	for kind := range rates {
		eventually(t, 30*time.Second, "subscriber receives "+kind, func() bool {
			tr := sub.track(publishedBy(s, "r", pub.part.info.ID, kind))
			tracks[kind] = tr
			return tr != nil && tr.packets.Load() > 100
		})
	}
	e := sub.part.egress.Load()
	if e == nil {
		t.Fatal("the subscriber's connection did not take the own SRTP egress")
	}
	if n := s.Stats().EgressFallbacks; n != 0 {
		t.Fatalf("%d connections fell back to Pion's SRTP path", n)
	}
	// Straight to the SFU's socket, addressed to the subscriber's.
	if d := e.dst.Load(); d == nil || d.Addr().String() != "127.0.0.1" {
		t.Fatalf("the egress writes to %v, not straight to the subscriber's UDP address", d)
	}
	sub.part.mu.Lock()
	for up, e := range sub.part.downs {
		e.dt.mu.Lock()
		fast := e.dt.fast != nil
		e.dt.mu.Unlock()
		if !fast {
			t.Errorf("track %s went through Pion's path", up.info.ID)
		}
	}
	sub.part.mu.Unlock()

	for kind, rate := range rates {
		tr := tracks[kind]
		eventually(t, 10*time.Second, "a sender report for "+kind, func() bool {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			return tr.lastSR != nil && tr.lastSR.PacketCount > 20
		})
		tr.mu.Lock()
		sr, srAt, ts, tsAt := *tr.lastSR, tr.srAt, tr.lastTS, tr.lastTSAt
		tr.mu.Unlock()
		if sr.OctetCount < sr.PacketCount*80 {
			t.Errorf("%s: sender report counts %d octets in %d packets", kind, sr.OctetCount, sr.PacketCount)
		}
		// What the newest packet says RTP time was at the report's arrival.
		want := ts + uint32(srAt.Sub(tsAt).Seconds()*float64(rate))
		if off := int32(sr.RTPTime - want); off > int32(rate/5) || off < -int32(rate/5) {
			t.Errorf("%s: sender report's RTP time is %d ticks (%v) off the stream's", kind, off,
				time.Duration(off)*time.Second/time.Duration(rate))
		}
		// Its wall clock is this machine's (the SFU's clock is the system's here).
		if d := time.Since(ntp.Time(sr.NTPTime)); d < -time.Second || d > 3*time.Second {
			t.Errorf("%s: sender report's NTP time is %v away from now", kind, d)
		}
	}
}

// The sender report's time mapping moves on only with new frames sent in
// order, as Pion's did: a retransmission does not drag it back.
func TestSenderReportStats(t *testing.T) {
	var s srStats
	t0 := time.Unix(1000, 0)
	if _, ok := s.report(1, t0); ok {
		t.Fatal("a report before any packet")
	}
	s.clockRate = 90000
	s.sent(&rtp.Header{SequenceNumber: 10, Timestamp: 9000}, 100, t0)
	s.sent(&rtp.Header{SequenceNumber: 11, Timestamp: 9000}, 100, t0.Add(5*time.Millisecond))
	s.sent(&rtp.Header{SequenceNumber: 12, Timestamp: 12000}, 100, t0.Add(33*time.Millisecond))
	s.sent(&rtp.Header{SequenceNumber: 10, Timestamp: 9000}, 100, t0.Add(40*time.Millisecond)) // retransmitted
	sr, ok := s.report(7, t0.Add(133*time.Millisecond))
	if !ok || sr.SSRC != 7 || sr.PacketCount != 4 || sr.OctetCount != 400 {
		t.Fatalf("report %+v %v", sr, ok)
	}
	if sr.RTPTime != 12000+9000 { // 100 ms after the newest frame
		t.Fatalf("RTP time %d, want %d", sr.RTPTime, 21000)
	}
}

func TestWeAreDTLSClient(t *testing.T) {
	desc := func(session, media string) *sdp.SessionDescription {
		d := &sdp.SessionDescription{}
		if session != "" {
			d.Attributes = append(d.Attributes, sdp.Attribute{Key: "setup", Value: session})
		}
		m := &sdp.MediaDescription{}
		if media != "" {
			m.Attributes = append(m.Attributes, sdp.Attribute{Key: "setup", Value: media})
		}
		d.MediaDescriptions = append(d.MediaDescriptions, m)
		return d
	}
	for _, c := range []struct {
		session, media string
		client         bool
	}{
		{"", "active", false},  // the remote is the client
		{"", "passive", true},  // the remote is the server
		{"", "actpass", false}, // the remote offered: ducha answers as the server
		{"passive", "", true},  // at session level
		{"", "", false},        // nothing said: the answering role
	} {
		if got := weAreDTLSClient(desc(c.session, c.media)); got != c.client {
			t.Errorf("setup %q/%q: client %v, want %v", c.session, c.media, got, c.client)
		}
	}
}

// field refuses a field Pion no longer has, or one of another type, so an
// upgrade falls back to Pion's path instead of reading the wrong memory.
func TestFieldRefusesChangedPion(t *testing.T) {
	type transport struct {
		conn *int
		n    int
	}
	v := &transport{n: 3}
	if p, err := field[int](v, "n"); err != nil || *p != 3 {
		t.Fatalf("field n: %v %v", p, err)
	}
	if _, err := field[int](v, "gone"); !errors.Is(err, errNoOwnSRTP) {
		t.Fatalf("missing field: %v", err)
	}
	if _, err := field[string](v, "conn"); !errors.Is(err, errNoOwnSRTP) {
		t.Fatalf("field of another type: %v", err)
	}
	if _, err := field[int](3, "n"); !errors.Is(err, errNoOwnSRTP) {
		t.Fatalf("not a pointer: %v", err)
	}
	// Without the transport's lock, not read at all.
	if _, err := lockedField[int](v, "n"); !errors.Is(err, errNoOwnSRTP) {
		t.Fatalf("a struct without a lock: %v", err)
	}
	type locked struct {
		lock sync.RWMutex
		n    int
	}
	if n, err := lockedField[int](&locked{n: 5}, "n"); err != nil || n != 5 {
		t.Fatalf("lockedField: %v %v", n, err)
	}
}

// BenchmarkFastOutWrite is the own egress's part of one forwarded copy:
// marshal, SRTP (AES-GCM, no cryptex, as with browsers) and the hand-off
// to the connection (here one that discards). It must not allocate.
func BenchmarkFastOutWrite(b *testing.B) {
	e := &egress{profile: srtp.ProtectionProfileAeadAes128Gcm, key: make([]byte, 16), salt: make([]byte, 12),
		conn: io.Discard}
	f, err := e.newOut()
	if err != nil {
		b.Fatal(err)
	}
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1234, Timestamp: 90000}
	twcc := []byte{0, 0}
	if err := h.SetExtension(3, twcc); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1100)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.SequenceNumber = uint16(i)
		if _, err := f.write(&h, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// setPair writes straight to the socket only over a UDP host pair with an
// address it can use; otherwise through Pion's ICE connection.
func TestEgressFollowsCandidatePair(t *testing.T) {
	e := &egress{sock: discardSock{}}
	pair := func(proto webrtc.ICEProtocol, typ webrtc.ICECandidateType, remote string) *webrtc.ICECandidatePair {
		return &webrtc.ICECandidatePair{
			Local:  &webrtc.ICECandidate{Protocol: proto, Typ: typ, Address: "10.0.0.1", Port: 50000},
			Remote: &webrtc.ICECandidate{Protocol: proto, Typ: webrtc.ICECandidateTypePrflx, Address: remote, Port: 40000},
		}
	}
	e.setPair(pair(webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost, "192.0.2.7"))
	if d := e.dst.Load(); d == nil || d.String() != "192.0.2.7:40000" {
		t.Fatalf("UDP host pair: %v", d)
	}
	for name, p := range map[string]*webrtc.ICECandidatePair{
		"ICE-TCP":        pair(webrtc.ICEProtocolTCP, webrtc.ICECandidateTypeHost, "192.0.2.7"),
		"not our socket": pair(webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeRelay, "192.0.2.7"),
		"a name":         pair(webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost, "abc.local"),
		"no pair":        nil,
	} {
		e.setPair(pair(webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost, "192.0.2.7"))
		e.setPair(p)
		if d := e.dst.Load(); d != nil {
			t.Errorf("%s: writes straight to %v", name, d)
		}
	}
	none := &egress{}
	none.setPair(pair(webrtc.ICEProtocolUDP, webrtc.ICECandidateTypeHost, "192.0.2.7"))
	if none.dst.Load() != nil {
		t.Error("no socket, yet writes straight to it")
	}
}

type discardSock struct{}

func (discardSock) WriteToAddrPort(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }
