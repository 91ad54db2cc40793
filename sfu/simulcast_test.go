package sfu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/netshape"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simulcastLayer is one layer a test publisher sends.
type simulcastLayer struct {
	rid           string
	kbps          int
	width, height int
}

var testLayers = []simulcastLayer{
	{"q", 120, 320, 180},
	{"h", 400, 640, 360},
	{"f", 1000, 1280, 720},
}

// publishSimulcast sends camera video as three simulcast layers the way a
// browser does: one transceiver, rids q/h/f, every packet stamped with the
// mid and rid header extensions (a Pion sender does not stamp them), VP8
// keyframes carrying each layer's size, a keyframe on every PLI. It runs
// until stop is closed.
func (c *testClient) publishSimulcast(stop <-chan struct{}) {
	c.t.Helper()
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	tracks := make([]*webrtc.TrackLocalStaticRTP, len(testLayers))
	for i, l := range testLayers {
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, c.name+"-cam", c.name+"-stream", webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			c.t.Fatal(err)
		}
		tracks[i] = tr
	}
	ready := make(chan *webrtc.RTPTransceiver, 1)
	c.post(func() {
		tr, err := c.pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			c.t.Error(err)
			close(ready)
			return
		}
		for _, t := range tracks[1:] {
			if err := tr.Sender().AddEncoding(t); err != nil {
				c.t.Error(err)
			}
		}
		c.sources[tracks[0].ID()] = SourceCamera
		go c.countPLIs(tr.Sender())
		c.makeOffer()
		ready <- tr
	})
	tr := <-ready
	if tr == nil {
		return
	}
	// The extension ids are known once negotiated.
	var midID, ridID uint8
	eventually(c.t, 20*time.Second, c.name+" negotiates simulcast", func() bool {
		for _, e := range tr.Sender().GetParameters().HeaderExtensions {
			switch e.URI {
			case sdp.SDESMidURI:
				midID = uint8(e.ID)
			case sdp.SDESRTPStreamIDURI:
				ridID = uint8(e.ID)
			}
		}
		return midID != 0 && ridID != 0 && tr.Mid() != ""
	})
	mid := tr.Mid()
	for i, l := range testLayers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.sendLayer(tracks[i], l, mid, midID, ridID, stop)
		}()
	}
}

func (c *testClient) sendLayer(tr *webrtc.TrackLocalStaticRTP, l simulcastLayer, mid string, midID, ridID uint8,
	stop <-chan struct{}) {
	tick := time.NewTicker(33 * time.Millisecond)
	defer tick.Stop()
	frameBytes := l.kbps * 1000 / 8 / 30
	payload := make([]byte, 1000)
	var seq uint16
	var ts uint32
	lastPLI := int64(-1)
	for frame := 0; ; frame++ {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-tick.C:
		}
		ts += 3000
		key := frame%90 == 0
		if p := c.pliCount.Load(); p != lastPLI {
			lastPLI, key = p, true
		}
		size := frameBytes
		if key {
			size *= 3
		}
		for off := 0; off < size; off += 900 {
			n := min(900, size-off)
			n = max(n, 12)
			seq++
			clear(payload[:12])
			if off == 0 {
				payload[0] = 0x10 // S bit, partition 0
				if key {
					payload[1] = 0x00 // frame tag: key frame
					payload[4], payload[5], payload[6] = 0x9d, 0x01, 0x2a
					binary.LittleEndian.PutUint16(payload[7:], uint16(l.width))
					binary.LittleEndian.PutUint16(payload[9:], uint16(l.height))
				} else {
					payload[1] = 0x01
				}
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts,
				Marker: off+n >= size}, Payload: payload[:n]}
			_ = pkt.SetExtension(midID, []byte(mid))
			_ = pkt.SetExtension(ridID, []byte(l.rid))
			_ = tr.WriteRTP(pkt)
		}
	}
}

// subscription returns the layer switch of sub's subscription to the
// simulcast track published by pub (nil until there is one).
func subscription(sub *testClient, pubID string) *layerSwitch {
	p := sub.part
	p.mu.Lock()
	defer p.mu.Unlock()
	for up, e := range p.downs {
		if up.info.ParticipantID == pubID && up.simulcast {
			return e.dt.sw
		}
	}
	return nil
}

func receivedVideo(c *testClient) *recvTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range c.received {
		if rt.remote.Kind() == webrtc.RTPCodecTypeVideo {
			return rt
		}
	}
	return nil
}

// keepsReceiving checks that a subscriber's video packets keep arriving.
func keepsReceiving(t *testing.T, c *testClient, what string) {
	t.Helper()
	rt := receivedVideo(c)
	if rt == nil {
		t.Fatalf("%s: no video track", what)
	}
	before := rt.packets.Load()
	eventually(t, 10*time.Second, what, func() bool { return rt.packets.Load() > before+20 })
}

// A subscriber whose link is capped to 300 kbit/s is moved to the low
// layer and keeps receiving video; a subscriber on a good link keeps the
// full layer; when the cap lifts, the capped one climbs back up.
func TestSimulcastFollowsBandwidth(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "sim", "sup", RoleSupervisor, clientOpts{})
	good, _ := newTestClient(t, s, "sim", "good", RoleCounty, clientOpts{})
	weak, _ := newTestClient(t, s, "sim", "weak", RoleCounty,
		clientOpts{shape: &netshape.LinkShape{RateKbps: 300, Queue: 300 * time.Millisecond}})
	defer func() {
		for _, c := range []*testClient{pub, good, weak} {
			c.close()
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	pub.publishSimulcast(stop)

	eventually(t, 20*time.Second, "three layers received", func() bool { return s.Stats().SimulcastLayers == 3 })
	eventually(t, 20*time.Second, "both subscribed", func() bool {
		return subscription(good, pub.part.info.ID) != nil && subscription(weak, pub.part.info.ID) != nil
	})
	goodSw, weakSw := subscription(good, pub.part.info.ID), subscription(weak, pub.part.info.ID)
	// Both start on whatever layer arrived first and are raised to the full
	// one on the first ticks (the initial estimate covers it); the weak
	// link must then be moved down by what its link does.
	eventually(t, 20*time.Second, "the weak link starts on a higher layer", func() bool { return weakSw.current() >= 1 })
	eventually(t, 30*time.Second, "the weak link moves to the low layer", func() bool {
		return weakSw.current() == 0 && receivedVideo(weak) != nil
	})
	keepsReceiving(t, weak, "the weak link keeps receiving video")
	if goodSw.current() != 2 {
		t.Fatalf("good link on layer %d, want 2", goodSw.current())
	}
	keepsReceiving(t, good, "the good link keeps receiving video")

	weak.shaped.SetRate(0)
	eventually(t, 90*time.Second, "the weak link climbs back up", func() bool { return weakSw.current() >= 1 })
	keepsReceiving(t, weak, "video flows after climbing")
}

// The tile size the page reports picks the layer; 0x0 stops the video; the
// publisher is told which layers are watched.
func TestSimulcastVideoSize(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "size", "sup", RoleSupervisor, clientOpts{})
	sub, _ := newTestClient(t, s, "size", "county", RoleCounty, clientOpts{})
	defer pub.close()
	defer sub.close()
	stop := make(chan struct{})
	defer close(stop)
	pub.publishSimulcast(stop)
	eventually(t, 20*time.Second, "subscribed", func() bool { return subscription(sub, pub.part.info.ID) != nil })
	sw := subscription(sub, pub.part.info.ID)
	eventually(t, 20*time.Second, "full layer by default", func() bool { return sw.current() == 2 })
	trackID := sw.u.info.ID

	if err := sub.part.SetVideoSize(trackID, 320, 180); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a thumbnail gets the low layer", func() bool { return sw.current() == 0 })
	keepsReceiving(t, sub, "video flows on the low layer")
	// Only q is watched now: the publisher hears so.
	eventually(t, 10*time.Second, "publisher told to keep only q", func() bool {
		pub.mu.Lock()
		defer pub.mu.Unlock()
		n := len(pub.layers)
		return n > 0 && pub.layers[n-1].track == trackID && len(pub.layers[n-1].active) == 1 &&
			pub.layers[n-1].active[0] == "q"
	})

	if err := sub.part.SetVideoSize(trackID, 0, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a hidden tile gets nothing", func() bool { return sw.wanted() == -1 })
	rt := receivedVideo(sub)
	time.Sleep(300 * time.Millisecond)
	before := rt.packets.Load()
	time.Sleep(time.Second)
	if after := rt.packets.Load(); after > before+2 {
		t.Fatalf("hidden tile still received %d packets", after-before)
	}

	if err := sub.part.SetVideoSize(trackID, 1280, 720); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a large tile gets the full layer again", func() bool { return sw.current() == 2 })
	keepsReceiving(t, sub, "video flows again")
	if err := sub.part.SetVideoSize("T-unknown", 10, 10); err != nil {
		t.Fatalf("size for an unknown track: %v", err)
	}
}
