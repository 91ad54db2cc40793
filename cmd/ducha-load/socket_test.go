package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/arrival"
	"github.com/ducha-dev/ducha/internal/peertest"
	"github.com/ducha-dev/ducha/signaling"
	"github.com/ducha-dev/ducha/signaling/client"
)

// Only RTP is timed: STUN, DTLS and RTCP datagrams pass untouched.
func TestObserverTimesRTPOnly(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	f := newTWCCFeedback(t0)
	f.id.Store(5)
	o := &socketObserver{now: func() time.Time { return t0 }, arrivals: newArrivals(), twcc: f}
	stun := []byte{0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0}
	dtls := append([]byte{22, 0xfe, 0xfd}, make([]byte, 20)...)
	rtcpRR := []byte{0x80, 201, 0, 1, 0, 0, 0xab, 0xcd}
	rtcpRR = append(rtcpRR, make([]byte, 8)...)
	for _, b := range [][]byte{stun, dtls, rtcpRR} {
		o.observe(b, t0)
	}
	if n := f.Recorded(); n != 0 || len(o.arrivals.m) != 0 {
		t.Fatalf("non-RTP datagrams timed: %d recorded, %d rings", n, len(o.arrivals.m))
	}
	o.observe(peertest.ExtPacket(t, 77, false, map[uint8][]byte{5: {0, 9}}), t0)
	if n := f.Recorded(); n != 1 {
		t.Errorf("%d packets recorded for feedback, want 1", n)
	}
	if d, ok := o.arrivals.ring(0xabcd).Since(77, t0.Add(3*time.Millisecond)); !ok || d != 3*time.Millisecond {
		t.Errorf("arrival of 77: %v ago %v, want 3ms", d, ok)
	}
	// Without the id known, the arrival is still timed for the delay.
	f.id.Store(0)
	o.observe(peertest.ExtPacket(t, 78, false, map[uint8][]byte{5: {0, 10}}), t0)
	if _, ok := o.arrivals.ring(0xabcd).Since(78, t0); !ok || f.Recorded() != 1 {
		t.Errorf("78: timed %v, %d recorded for feedback (want 1: no id yet)", ok, f.Recorded())
	}
}

// A track's delay is taken to the socket's arrival, and to the read as
// well; without the socket's time, to the read, counted as untimed.
func TestDelayToSocketArrival(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var h, stack delayHist
	var ring arrival.Ring
	rt := newRecvTrack("T", false, &h, &stack, &ring, func() time.Time { return now })
	sent := now.Add(-10 * time.Millisecond)
	ring.Put(1, now.Add(-7*time.Millisecond).UnixNano()) // 3 ms to the socket, 7 more to the read
	rt.onPacket(rtpPacket(1, true, trailed(sent, 1, 80), 0, -1, 0), now)
	rt.onPacket(rtpPacket(2, true, trailed(sent, 2, 80), 0, -1, 0), now) // no socket time
	var s, ss histSnap
	h.snapshot(&s)
	stack.snapshot(&ss)
	if s.count() != 2 || ss.count() != 2 {
		t.Fatalf("samples %d / %d, want 2 / 2", s.count(), ss.count())
	}
	if lo, hi := s.percentile(1), s.percentile(100); lo != 3*time.Millisecond+histFineWidth*time.Microsecond ||
		hi != 10*time.Millisecond+histMidWidth*time.Microsecond {
		t.Errorf("socket delays %v .. %v, want the 3 ms and 10 ms buckets", lo, hi)
	}
	if n := rt.untimed.Load(); n != 1 {
		t.Errorf("untimed %d, want 1", n)
	}
}

func TestExtmapID(t *testing.T) {
	desc := strings.Join([]string{"v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
		"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
		"a=extmap:3/sendrecv " + sdp.TransportCCURI, "m=video 9 UDP/TLS/RTP/SAVPF 96",
		"a=extmap:3 " + sdp.TransportCCURI, "a=extmap:", "a=extmap:x " + sdp.TransportCCURI, ""}, "\r\n")
	if id := extmapID(desc, sdp.TransportCCURI); id != 3 {
		t.Errorf("id %d, want 3", id)
	}
	if id := extmapID("v=0\r\na=extmap:2 urn:other\r\n", sdp.TransportCCURI); id != 0 {
		t.Errorf("id %d for a description without it", id)
	}
	f := newTWCCFeedback(time.Now())
	f.learnID(signaling.TypeJoined, json.RawMessage(`{}`))
	f.learnID(signaling.TypeOffer, json.RawMessage(`{"sdp":`))
	if f.id.Load() != 0 {
		t.Fatal("an id learnt from no description")
	}
	data, _ := json.Marshal(signaling.SDP{SDP: desc})
	f.learnID(signaling.TypeOffer, data)
	if f.id.Load() != 3 {
		t.Errorf("learnt %d, want 3", f.id.Load())
	}
}

// With real Pion peers over loopback: a sender stamping transport-wide
// sequence numbers gets feedback on every packet it sent, built from the
// load tool's socket timing, and the receiver's track finds each packet's
// socket arrival.
func TestTWCCFeedbackPionLoopback(t *testing.T) {
	sendAPI := func() *webrtc.API {
		me := &webrtc.MediaEngine{}
		if err := me.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
		ir := &interceptor.Registry{}
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
			t.Fatal(err)
		}
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, webrtc.RTPCodecTypeVideo)
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	}()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fb := newTWCCFeedback(time.Now())
	arr := newArrivals()
	lf := pionLoggers(false)
	mux := webrtc.NewICEUDPMux(lf.NewLogger("ice"), wrapSocket(conn, &socketObserver{now: time.Now, arrivals: arr, twcc: fb}))
	defer mux.Close()
	recvAPI, err := newAPI(mux, lf)
	if err != nil {
		t.Fatal(err)
	}
	send, err := sendAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	recv, err := recvAPI.NewPeerConnection(client.BrowserConfiguration())
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		"video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := send.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	read := make(chan uint16, n*2)
	untimed := make(chan uint16, n*2)
	recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		ring := arr.ring(uint32(tr.SSRC()))
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if _, ok := ring.Since(p.SequenceNumber, time.Now()); !ok {
				untimed <- p.SequenceNumber
			}
			read <- p.SequenceNumber
		}
	})
	connected := make(chan struct{}, 1)
	send.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	peertest.Negotiate(t, send, recv)
	// As an agent learns it from the server's description; media starts
	// only after the handshake below.
	data, _ := json.Marshal(signaling.SDP{SDP: send.LocalDescription().SDP})
	fb.learnID(signaling.TypeOffer, data)
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("the peers did not connect")
	}
	if fb.id.Load() == 0 {
		t.Fatal("no transport-cc id learnt from the offer")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fb.run(ctx, recv.WriteRTCP)

	reported := make(chan int, 64)
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if cc, ok := p.(*rtcp.TransportLayerCC); ok {
					reported <- len(cc.RecvDeltas)
				}
			}
		}
	}()
	for i := 0; i < n; i++ {
		if err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(1000 + i),
			Timestamp: uint32(i * 3000), Marker: true}, Payload: []byte{0x10, 0, 0, 0, 0, 0, 0, 0}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, deadline := 0, time.After(20*time.Second)
	for got < n {
		select {
		case k := <-reported:
			got += k
		case <-deadline:
			t.Fatalf("feedback on %d of %d packets (%d timed)", got, n, fb.Recorded())
		}
	}
	if got != n {
		t.Errorf("feedback reports %d packets received, %d were sent", got, n)
	}
	seen := 0
	for seen < n {
		select {
		case <-read:
			seen++
		case <-time.After(20 * time.Second):
			t.Fatalf("the receiver read %d of %d packets", seen, n)
		}
	}
	if len(untimed) > 0 {
		t.Errorf("%d packets read without a socket arrival", len(untimed))
	}
}
