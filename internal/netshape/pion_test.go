package netshape

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/peertest"
)

// newPeer makes a Pion peer on a loopback socket, shaped when shape is
// active: the way to put a Pion peer behind a weak link (package doc).
func newPeer(t *testing.T, shape LinkShape) (*webrtc.PeerConnection, *Conn) {
	t.Helper()
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conn net.PacketConn = sock
	var shaped *Conn
	if shape.Active() {
		shaped = New(sock, shape, nil, nil, 1)
		conn = shaped
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	mux := webrtc.NewICEUDPMux(nil, conn)
	se.SetICEUDPMux(mux)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pc.Close()
		_ = mux.Close()
		_ = conn.Close()
	})
	return pc, shaped
}

// A Pion subscriber whose socket is shaped to 300 kbit/s receives about
// 300 kbit/s of a 1 Mbit/s stream, through ICE, DTLS and SRTP.
func TestPionPeerBehindShapedLink(t *testing.T) {
	pub, _ := newPeer(t, LinkShape{})
	sub, shaped := newPeer(t, LinkShape{RateKbps: 300, Queue: 100 * time.Millisecond})

	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			got.Add(int64(n))
		}
	})
	connected := make(chan struct{})
	var once atomic.Bool
	sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected && once.CompareAndSwap(false, true) {
			close(connected)
		}
	})
	peertest.Negotiate(t, pub, sub)
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("the shaped peer did not connect")
	}

	// 1 Mbit/s: a 1000-byte payload every 8 ms, for 1.5 s. Count from the
	// first delivered byte to ignore the connection setup.
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: make([]byte, 1000)}
	start := time.Now()
	var before int64
	for i := 0; i < 190; i++ {
		pkt.SequenceNumber++
		pkt.Timestamp += 720
		if err := track.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		if i == 62 { // 0.5 s in: the buffer is full, the link runs at its rate
			before, start = got.Load(), time.Now()
		}
		time.Sleep(8 * time.Millisecond)
	}
	kbps := float64(got.Load()-before) * 8 / time.Since(start).Seconds() / 1000
	t.Logf("received %.0f kbit/s of RTP payload, link %+v", kbps, shaped.Stats())
	if kbps < 200 || kbps > 400 {
		t.Errorf("the shaped peer received %.0f kbit/s of RTP payload; the link carries 300", kbps)
	}
	if s := shaped.Stats(); s.QueueDrops == 0 || s.Delivered == 0 {
		t.Errorf("link stats %+v: want deliveries and tail drops", s)
	}
}
