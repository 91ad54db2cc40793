package sfu

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/netshape"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// testClient is a Pion peer that talks to a Participant the way a browser
// talks to signaling: asynchronously, as the polite side of perfect
// negotiation. Notifier calls are queued and handled on the client's own
// goroutine, like messages arriving on a websocket.
type testClient struct {
	t    *testing.T
	name string
	pc   *webrtc.PeerConnection
	part *Participant
	ev   chan func()
	mux  interface{ Close() error }
	conn net.PacketConn
	// shaped is the client's slow downlink, when clientOpts.shape asked for one.
	shaped *netshape.Conn
	done   chan struct{}
	wg     sync.WaitGroup

	mu         sync.Mutex
	wantOffer  bool
	sources    map[string]string
	remoteSet  bool
	candQueue  []webrtc.ICECandidateInit
	received   map[string]*recvTrack // by stream id (server track id)
	published  map[string]bool       // track-published ids seen
	removed    map[string]bool       // track-removed ids seen
	left       map[string]string     // participant-left id -> reason
	updates    []ParticipantState
	closedWhy  string
	speakers   []string
	layers     []layersMsg
	pliCount   atomic.Int64
	twccAcked  atomic.Int64  // packets the server's transport-wide feedback reported received
	reports    sync.Map      // media SSRC -> the newest rtcp.ReceptionReport the server sent
	nacked     atomic.Int64  // sequence numbers the server asked to be resent
	audioLevel atomic.Uint32 // RFC 6464 level stamped on audio (0 loudest, 127 silence); set before publishing
	levelIDs   sync.Map      // track -> negotiated audio-level extension id
	closing    atomic.Bool
	sendTracks []*webrtc.TrackLocalStaticRTP
}

type layersMsg struct {
	track  string
	active []string
}

type recvTrack struct {
	remote  *webrtc.TrackRemote
	packets atomic.Int64
	ended   atomic.Bool
	mu      sync.Mutex
	seqs    map[uint16]int
	// The newest sender report, and the newest packet's RTP time with its
	// arrival, to check the report's time mapping against.
	lastSR     *rtcp.SenderReport
	srAt       time.Time
	lastTS     uint32
	lastTSAt   time.Time
	tsReceived bool
}

// lossyConn drops every nth RTP packet in one direction (never STUN, DTLS
// or RTCP), to make NACK repair observable.
type lossyConn struct {
	net.PacketConn
	dropIn, dropOut int
	dropDTLSOut     bool // no DTLS record leaves: a handshake that never completes
	inCount, outCnt atomic.Int64
	dropped         atomic.Int64
	// firstHandshake is the type of the first DTLS handshake message the
	// client received (0: none yet).
	firstHandshake atomic.Int32
}

// dtlsHandshakeType is the message type of a DTLS handshake record (RFC
// 6347: content type 22, then a 13-byte record header), or 0. Only
// unencrypted records (epoch 0) are read.
func dtlsHandshakeType(b []byte) int32 {
	if len(b) < 14 || b[0] != 22 || b[3] != 0 || b[4] != 0 {
		return 0
	}
	return int32(b[13])
}

func isRTP(b []byte) bool {
	if len(b) < 12 || b[0] < 128 || b[0] > 191 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err == nil {
			if t := dtlsHandshakeType(b[:n]); t != 0 {
				c.firstHandshake.CompareAndSwap(0, t)
			}
		}
		if err == nil && c.dropIn > 0 && isRTP(b[:n]) && c.inCount.Add(1)%int64(c.dropIn) == 0 {
			c.dropped.Add(1)
			continue
		}
		return n, a, err
	}
}

func (c *lossyConn) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.dropDTLSOut && len(b) > 0 && b[0] >= 20 && b[0] <= 63 {
		return len(b), nil
	}
	if c.dropOut > 0 && isRTP(b) && c.outCnt.Add(1)%int64(c.dropOut) == 0 {
		c.dropped.Add(1)
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}

type clientOpts struct {
	dropIn, dropOut int
	dropDTLSOut     bool
	tcpOnly         bool // ICE over TCP only, as behind a firewall that blocks UDP
	// shape makes the client's downlink a slow link (a county office line).
	shape *netshape.LinkShape
	// hideCandidates keeps the client's ICE candidates from the server, as
	// a county behind NAT whose private addresses are of no use: the
	// server learns its address from its checks (peer-reflexive).
	hideCandidates bool
	// onICEState hears the client's ICE connection states from the start.
	onICEState func(webrtc.ICEConnectionState)
	// stampTWCC numbers the client's outgoing packets for transport-wide
	// feedback, as browsers do.
	stampTWCC bool
}

func newTestClient(t *testing.T, s *SFU, room, name, role string, o clientOpts) (*testClient, *lossyConn) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var shaped *netshape.Conn
	if o.shape != nil {
		shaped = netshape.New(conn, *o.shape, nil, nil, 1)
		conn = shaped
	}
	lc := &lossyConn{PacketConn: conn, dropIn: o.dropIn, dropOut: o.dropOut, dropDTLSOut: o.dropDTLSOut}
	se := webrtc.SettingEngine{}
	mux := webrtc.NewICEUDPMux(nil, lc)
	se.SetIncludeLoopbackCandidate(true)
	if o.tcpOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetICEUDPMux(mux)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	// Like browsers, stamp audio with its level (RFC 6464).
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	if o.stampTWCC {
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
			t.Fatal(err)
		}
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{
		t: t, name: name, pc: pc, ev: make(chan func(), 4096), done: make(chan struct{}),
		sources: map[string]string{}, received: map[string]*recvTrack{}, published: map[string]bool{},
		removed: map[string]bool{}, left: map[string]string{}, mux: mux, conn: conn, shaped: shaped,
	}
	c.audioLevel.Store(127) // silent unless a test makes it speak
	if o.onICEState != nil {
		pc.OnICEConnectionStateChange(o.onICEState)
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil && !o.hideCandidates {
			init := cand.ToJSON()
			c.post(func() { _ = c.part.AddCandidate(init) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		rt := &recvTrack{remote: tr, seqs: map[uint16]int{}}
		// Drain RTCP like a browser does, so sender reports reach Pion's
		// receiver-report interceptor (without it, LSR stays 0).
		go func() {
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(tr.SSRC()) {
						rt.mu.Lock()
						rt.lastSR, rt.srAt = sr, time.Now()
						rt.mu.Unlock()
					}
				}
			}
		}()
		c.mu.Lock()
		c.received[tr.StreamID()] = rt
		c.mu.Unlock()
		buf := make([]byte, 1600)
		var pkt rtp.Packet
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				rt.ended.Store(true)
				return
			}
			if pkt.Unmarshal(buf[:n]) == nil {
				rt.packets.Add(1)
				rt.mu.Lock()
				rt.seqs[pkt.SequenceNumber]++
				if !rt.tsReceived || int32(pkt.Timestamp-rt.lastTS) > 0 {
					rt.lastTS, rt.lastTSAt, rt.tsReceived = pkt.Timestamp, time.Now(), true
				}
				rt.mu.Unlock()
			}
		}
	})
	part, _, err := s.Join(room, ParticipantInfo{ID: "P-" + name, Identity: name, Name: name, Role: role}, (*clientNotifier)(c))
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.part = part
	c.mu.Unlock()
	// The event loop starts once part is set: the server's first offer
	// can be queued during Join, in a room with tracks already.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case f := <-c.ev:
				f()
			case <-c.done:
				return
			}
		}
	}()
	return c, lc
}

func (c *testClient) post(f func()) {
	select {
	case c.ev <- f:
	case <-c.done:
	}
}

// publish adds a track that sends synthetic VP8 (or Opus-sized audio) and
// answers PLIs with a keyframe.
func (c *testClient) publish(kind string) *webrtc.TrackLocalStaticRTP {
	c.t.Helper()
	if kind == "audio" {
		return c.publishCodec(kind, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	}
	return c.publishCodec(kind, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
}

// publishCodec publishes a track of the given codec.
func (c *testClient) publishCodec(kind string, codec webrtc.RTPCodecCapability) *webrtc.TrackLocalStaticRTP {
	c.t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(codec, c.name+"-"+kind, c.name+"-stream")
	if err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	c.post(func() {
		defer close(done)
		sender, err := c.pc.AddTrack(tr)
		if err != nil {
			c.t.Error(err)
			return
		}
		c.sendTracks = append(c.sendTracks, tr)
		if kind == "video" {
			c.sources[tr.ID()] = SourceCamera
		} else {
			c.sources[tr.ID()] = SourceMicrophone
		}
		go c.countPLIs(sender)
		c.makeOffer()
	})
	<-done
	return tr
}

// countPLIs reads a sender's RTCP until it closes and counts the keyframe
// requests (the synthetic senders answer each with a keyframe) and the
// packets transport-wide feedback acknowledged.
func (c *testClient) countPLIs(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication:
				c.pliCount.Add(1)
			case *rtcp.TransportLayerCC:
				c.twccAcked.Add(int64(len(p.RecvDeltas)))
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					c.reports.Store(r.SSRC, r)
				}
			case *rtcp.TransportLayerNack:
				for _, n := range p.Nacks {
					c.nacked.Add(int64(len(n.PacketList())))
				}
			}
		}
	}
}

// makeOffer runs on the client goroutine.
func (c *testClient) makeOffer() {
	if c.pc.SignalingState() != webrtc.SignalingStateStable {
		c.wantOffer = true
		return
	}
	c.wantOffer = false
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.errorf("%s: create offer: %v", c.name, err)
		return
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.errorf("%s: set local: %v", c.name, err)
		return
	}
	src := map[string]string{}
	for k, v := range c.sources {
		src[k] = v
	}
	if err := c.part.HandleOffer(offer.SDP, src); err != nil {
		c.errorf("%s: HandleOffer: %v", c.name, err)
	}
}

// clientNotifier is the test client's view of the SFU's Notifier.
type clientNotifier testClient

func (n *clientNotifier) c() *testClient { return (*testClient)(n) }

func (n *clientNotifier) Offer(sdp string) {
	c := n.c()
	c.post(func() {
		if c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			// Polite: roll back ours, answer theirs, offer again later.
			if err := c.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
				c.errorf("%s: rollback: %v", c.name, err)
				return
			}
			c.wantOffer = true
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			c.errorf("%s: set remote offer: %v", c.name, err)
			return
		}
		c.flushCandidates()
		ans, err := c.pc.CreateAnswer(nil)
		if err == nil {
			err = c.pc.SetLocalDescription(ans)
		}
		if err != nil {
			c.errorf("%s: answer: %v", c.name, err)
			return
		}
		if err := c.part.HandleAnswer(ans.SDP); err != nil {
			c.errorf("%s: HandleAnswer: %v", c.name, err)
		}
		if c.wantOffer {
			c.makeOffer()
		}
	})
}

func (n *clientNotifier) Answer(sdp string) {
	c := n.c()
	c.post(func() {
		if c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			return
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
			c.errorf("%s: set remote answer: %v", c.name, err)
			return
		}
		c.flushCandidates()
		if c.wantOffer {
			c.makeOffer()
		}
	})
}

func (c *testClient) flushCandidates() {
	for _, cand := range c.candQueue {
		_ = c.pc.AddICECandidate(cand)
	}
	c.candQueue = nil
}

func (n *clientNotifier) Candidate(cand webrtc.ICECandidateInit) {
	c := n.c()
	c.post(func() {
		if c.pc.RemoteDescription() == nil {
			c.candQueue = append(c.candQueue, cand)
			return
		}
		_ = c.pc.AddICECandidate(cand)
	})
}

func (n *clientNotifier) ParticipantJoined(ParticipantState) {}

func (n *clientNotifier) ParticipantLeft(id, reason string) {
	c := n.c()
	c.mu.Lock()
	c.left[id] = reason
	c.mu.Unlock()
}

func (n *clientNotifier) ParticipantUpdated(p ParticipantState) {
	c := n.c()
	c.mu.Lock()
	c.updates = append(c.updates, p)
	c.mu.Unlock()
}

func (n *clientNotifier) TrackPublished(t TrackInfo) {
	c := n.c()
	c.mu.Lock()
	c.published[t.ID] = true
	c.mu.Unlock()
}

func (n *clientNotifier) TrackRemoved(t TrackInfo) {
	c := n.c()
	c.mu.Lock()
	c.removed[t.ID] = true
	c.mu.Unlock()
}

func (n *clientNotifier) ActiveSpeakers(ids []string) {
	c := n.c()
	c.mu.Lock()
	c.speakers = append([]string(nil), ids...)
	c.mu.Unlock()
}

func (n *clientNotifier) Layers(track, _ string, active []string) {
	c := n.c()
	c.mu.Lock()
	c.layers = append(c.layers, layersMsg{track: track, active: append([]string(nil), active...)})
	c.mu.Unlock()
}

func (n *clientNotifier) Closed(reason string) {
	c := n.c()
	c.mu.Lock()
	c.closedWhy = reason
	c.mu.Unlock()
}

// sendMedia writes synthetic media on every published track until stop is
// closed: 30 fps VP8 with a keyframe when asked, 50 pps audio.
func (c *testClient) sendMedia(stop <-chan struct{}) {
	c.mu.Lock()
	tracks := append([]*webrtc.TrackLocalStaticRTP(nil), c.sendTracks...)
	c.mu.Unlock()
	for _, tr := range tracks {
		tr := tr
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			video := tr.Kind() == webrtc.RTPCodecTypeVideo
			period := 20 * time.Millisecond
			if video {
				period = 33 * time.Millisecond
			}
			tick := time.NewTicker(period)
			defer tick.Stop()
			var seq uint16
			var ts uint32
			lastPLI := int64(-1)
			payload := make([]byte, 1000)
			for frame := 0; ; frame++ {
				select {
				case <-stop:
					return
				case <-c.done:
					return
				case <-tick.C:
				}
				if !video {
					ts += 960
					seq++
					pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts,
						Marker: true}, Payload: payload[:80]}
					if id := c.levelExtID(tr); id != 0 {
						_ = pkt.SetExtension(id, []byte{byte(c.audioLevel.Load())})
					}
					_ = tr.WriteRTP(pkt)
					continue
				}
				ts += 3000
				key := frame%100 == 0
				if p := c.pliCount.Load(); p != lastPLI {
					lastPLI, key = p, true
				}
				for i := 0; i < 3; i++ {
					seq++
					desc := byte(0)
					if i == 0 {
						desc = 0x10 // S bit, partition 0
					}
					switch codecOf(tr.Codec().MimeType) {
					case codecVP9:
						payload[0] = 0x00
						if i == 0 {
							payload[0] = 0x08 // B: start of frame
						}
						if !key {
							payload[0] |= 0x40 // P: inter-predicted
						}
						payload[1] = 0
					case codecH264:
						payload[0], payload[1] = 0x7c, 0x01 // FU-A, non-IDR
						if key {
							payload[1] = 0x05
						}
						if i == 0 {
							payload[1] |= 0x80 // start
						}
					default:
						payload[0] = desc
						if key {
							payload[1] = 0x00 // P=0: keyframe
						} else {
							payload[1] = 0x01
						}
					}
					_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts,
						Marker: i == 2}, Payload: payload[:900]})
				}
			}
		}()
	}
}

// errorf reports a client-side failure unless the client is shutting down
// (events still queued then fail against a closed connection, legitimately).
func (c *testClient) errorf(format string, args ...any) {
	if c.closing.Load() {
		return
	}
	c.t.Errorf(format, args...)
}

// sendingSupervisor joins room as a supervisor who publishes video and
// sends it until the test ends (registered with t.Cleanup, so a caller
// that closes the server with t.Cleanup too sees it close last); it
// returns once the track is published.
func sendingSupervisor(t *testing.T, s *SFU, room string) *testClient {
	t.Helper()
	pub, _ := newTestClient(t, s, room, "pub", RoleSupervisor, clientOpts{})
	t.Cleanup(pub.close)
	pub.publish("video")
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // before pub.close: it waits for the senders
	pub.sendMedia(stop)
	eventually(t, 30*time.Second, "the supervisor's video is published", func() bool {
		return publishedBy(s, room, pub.part.info.ID, "video") != ""
	})
	return pub
}

func (c *testClient) close() {
	c.closing.Store(true)
	c.part.Leave("left")
	close(c.done)
	_ = c.pc.Close()
	c.wg.Wait()
	_ = c.mux.Close()
	_ = c.conn.Close()
}

func (c *testClient) track(streamID string) *recvTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received[streamID]
}

func (c *testClient) String() string { return fmt.Sprintf("client(%s)", c.name) }

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// levelExtID is the audio-level extension id negotiated for tr's sender.
func (c *testClient) levelExtID(tr *webrtc.TrackLocalStaticRTP) uint8 {
	if v, ok := c.levelIDs.Load(tr); ok {
		return v.(uint8)
	}
	for _, s := range c.pc.GetSenders() {
		if s.Track() != tr {
			continue
		}
		for _, e := range s.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				c.levelIDs.Store(tr, uint8(e.ID))
				return uint8(e.ID)
			}
		}
	}
	return 0
}
