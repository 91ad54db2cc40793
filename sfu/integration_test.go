package sfu

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/udpbatch"
)

func newTestSFU(t *testing.T) *SFU {
	t.Helper()
	return newTestSFUConfig(t, Config{})
}

// newTestSFUConfig is newTestSFU with cfg's settings (listen address and
// loopback candidates are the test's).
func newTestSFUConfig(t *testing.T, cfg Config) *SFU {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("DUCHA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	cfg.ListenIP, cfg.IncludeLoopback = "127.0.0.1", true
	s, err := New(cfg,
		slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trackOf finds the server track id a client published, from another
// client's track-published notifications.
func publishedBy(s *SFU, room, participant, kind string) string {
	r := s.Room(room)
	if r == nil {
		return ""
	}
	for _, tr := range r.Tracks() {
		if tr.info.ParticipantID == participant && tr.info.Kind == kind {
			return tr.info.ID
		}
	}
	return ""
}

func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var n int
	for time.Now().Before(deadline) {
		runtime.GC()
		n = runtime.NumGoroutine()
		if n <= base+2 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Errorf("goroutines leaked: %d now, %d before\n%s", n, base, buf)
}

// Three participants publish audio and video at once (so negotiations
// collide); each receives the other two; one leaves and its tracks stop at
// the others; nothing leaks.
func TestThreePartyCall(t *testing.T) {
	base := runtime.NumGoroutine()
	s := newTestSFU(t)
	names := []string{"sup", "countyA", "countyB"}
	roles := []string{RoleSupervisor, RoleCounty, RoleCounty}
	clients := make([]*testClient, 3)
	for i := range names {
		clients[i], _ = newTestClient(t, s, "room1", names[i], roles[i], clientOpts{})
	}
	for _, c := range clients {
		c.publish("video")
		c.publish("audio")
	}
	stop := make(chan struct{})
	for _, c := range clients {
		c.sendMedia(stop)
	}

	for _, rx := range clients {
		for _, tx := range clients {
			if rx == tx {
				continue
			}
			for _, kind := range []string{"video", "audio"} {
				rx, tx, kind := rx, tx, kind
				eventually(t, 30*time.Second, rx.name+" receives "+tx.name+" "+kind, func() bool {
					id := publishedBy(s, "room1", tx.part.info.ID, kind)
					tr := rx.track(id)
					return id != "" && tr != nil && tr.packets.Load() > 20
				})
			}
		}
	}

	// countyB leaves: its tracks are removed at the others and end.
	gone := clients[2]
	vid := publishedBy(s, "room1", gone.part.info.ID, "video")
	aud := publishedBy(s, "room1", gone.part.info.ID, "audio")
	gone.close()
	for _, c := range clients[:2] {
		c := c
		eventually(t, 20*time.Second, c.name+" sees countyB leave", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.left[gone.part.info.ID] == "left" && c.removed[vid] && c.removed[aud]
		})
		eventually(t, 20*time.Second, c.name+" stops receiving countyB", func() bool {
			v, a := c.track(vid), c.track(aud)
			return v != nil && v.ended.Load() && a != nil && a.ended.Load()
		})
	}
	// The remaining two still exchange media.
	v := clients[0].track(publishedBy(s, "room1", clients[1].part.info.ID, "video"))
	before := v.packets.Load()
	eventually(t, 10*time.Second, "media still flows between the remaining two", func() bool {
		return v.packets.Load() > before+30
	})

	close(stop)
	for _, c := range clients[:2] {
		c.close()
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if st := s.Stats(); st.Participants != 0 || st.Rooms != 0 {
		t.Errorf("rooms/participants left after close: %+v", st)
	}
	checkGoroutines(t, base)
}

// Loss between the SFU and a subscriber is repaired from the SFU's cache:
// the subscriber NACKs, the SFU retransmits, every packet arrives.
func TestSubscriberLossRepairedByNACK(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
	sub, lossy := newTestClient(t, s, "r", "sub", RoleCounty, clientOpts{dropIn: 10})
	defer sub.close()
	defer pub.close()
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)

	var tr *recvTrack
	eventually(t, 30*time.Second, "subscriber receives video", func() bool {
		tr = sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return tr != nil && tr.packets.Load() > 300
	})
	if lossy.dropped.Load() == 0 {
		t.Fatal("the lossy link dropped nothing: the test proves nothing")
	}
	eventually(t, 20*time.Second, "retransmissions fill every gap", func() bool {
		return contiguousRun(tr, 200)
	})
	st := s.Stats()
	if st.Retransmits == 0 || st.NACKsIn == 0 {
		t.Fatalf("no NACK/retransmission counted: %+v", st)
	}
	// By default every datagram leaves through the batching sender.
	if st.UDPBatched < st.PacketsOut || st.UDPBatches == 0 || st.UDPBatches > st.UDPBatched || st.UDPSendErrors != 0 {
		t.Fatalf("batched sends: %+v", st)
	}
	// Every forwarded packet went through a fan-out writer, which timed it
	// from its arrival at the socket (a writer more than 256 packets
	// behind would skip its sample and count it unmeasured).
	var timed uint64
	for _, c := range st.ForwardDelayCounts {
		timed += c
	}
	if len(st.ForwardDelayCounts) != len(ForwardDelayBounds())+1 || timed == 0 ||
		timed+st.ForwardDelayUnmeasured > st.PacketsOut || st.ForwardDelaySum <= 0 {
		t.Fatalf("forwarding delay: %d timed (%d unmeasured) of %d out, sum %v s, counts %v", timed,
			st.ForwardDelayUnmeasured, st.PacketsOut, st.ForwardDelaySum, st.ForwardDelayCounts)
	}
	var waited uint64
	for _, c := range st.SendWaitCounts {
		waited += c
	}
	// Media still flows: a batch may be counted as sent and not yet as
	// waited, or the other way round, when the snapshot is taken.
	if waited+udpbatch.MaxBatch < st.UDPBatched || waited > st.UDPBatched+udpbatch.MaxBatch || st.SendWaitSum < 0 {
		t.Fatalf("send wait counted %d packets, %d were batched", waited, st.UDPBatched)
	}
	s.socket.mu.RLock()
	registered := len(s.socket.rings)
	s.socket.mu.RUnlock()
	if registered == 0 {
		t.Fatal("no stream registered with the socket's arrival times")
	}
}

// Loss between a publisher and the SFU: the SFU NACKs the publisher, which
// resends; the late packets are forwarded, so the subscriber gets them all.
func TestPublisherLossRepairedByNACK(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, lossy := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{dropOut: 10})
	sub, _ := newTestClient(t, s, "r", "sub", RoleCounty, clientOpts{})
	defer sub.close()
	defer pub.close()
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)

	var tr *recvTrack
	eventually(t, 30*time.Second, "subscriber receives video", func() bool {
		tr = sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return tr != nil && tr.packets.Load() > 300
	})
	if lossy.dropped.Load() == 0 {
		t.Fatal("the lossy link dropped nothing")
	}
	eventually(t, 20*time.Second, "publisher retransmissions reach the subscriber", func() bool {
		return contiguousRun(tr, 200)
	})
}

// contiguousRun reports whether the track received n consecutive sequence
// numbers somewhere after its start (the first packets may precede the
// first keyframe and are legitimately not forwarded).
// track finds a published track by id.
func (r *Room) track(id string) *UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tracks[id]
}

func contiguousRun(tr *recvTrack, n int) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for start := range tr.seqs {
		ok := true
		for i := 0; i < n; i++ {
			if tr.seqs[start+uint16(i)] == 0 {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// A subscriber's PLI reaches the publisher.
func TestPLIForwardedToPublisher(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
	sub, _ := newTestClient(t, s, "r", "sub", RoleCounty, clientOpts{})
	defer sub.close()
	defer pub.close()
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)

	var tr *recvTrack
	eventually(t, 30*time.Second, "subscriber receives video", func() bool {
		tr = sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return tr != nil && tr.packets.Load() > 30
	})
	// The subscription itself asked for a keyframe.
	if pub.pliCount.Load() == 0 {
		t.Fatal("a new subscriber did not trigger a keyframe request")
	}
	time.Sleep(500 * time.Millisecond) // past the throttle window
	before := pub.pliCount.Load()
	ssrc := uint32(tr.remote.SSRC())
	if err := sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "PLI reaches the publisher", func() bool {
		return pub.pliCount.Load() > before
	})
}

// An observer may receive but not send.
func TestObserverCannotPublish(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
	defer pub.close()
	obs, _ := newTestClient(t, s, "r", "obs", RoleObserver, clientOpts{})
	defer obs.close()

	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	obs.post(func() {
		if _, err := obs.pc.AddTrack(tr); err != nil {
			errc <- err
			return
		}
		offer, err := obs.pc.CreateOffer(nil)
		if err != nil {
			errc <- err
			return
		}
		errc <- obs.part.HandleOffer(offer.SDP, nil)
	})
	if err := <-errc; err == nil || !isForbidden(err) {
		t.Fatalf("observer offer to send: got %v, want ErrForbidden", err)
	}

	// It still receives.
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	eventually(t, 30*time.Second, "observer receives video", func() bool {
		r := obs.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return r != nil && r.packets.Load() > 30
	})
}

// A second join with the same identity replaces the first.
func TestSameIdentityReplaces(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	a, _ := newTestClient(t, s, "r", "dup", RoleCounty, clientOpts{})
	defer a.close()
	b, _ := newTestClient(t, s, "r", "dup", RoleCounty, clientOpts{})
	defer b.close()
	a.mu.Lock()
	why := a.closedWhy
	a.mu.Unlock()
	if why != "replaced" {
		t.Fatalf("old connection closed with %q, want replaced", why)
	}
	if st := s.Stats(); st.Participants != 1 {
		t.Fatalf("participants = %d, want 1", st.Participants)
	}
}

// A county office whose firewall blocks UDP reaches the SFU over ICE-TCP.
func TestICETCP(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
	defer pub.close()
	sub, _ := newTestClient(t, s, "r", "tcpsub", RoleCounty, clientOpts{tcpOnly: true})
	defer sub.close()
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	eventually(t, 30*time.Second, "the TCP-only subscriber receives video", func() bool {
		r := sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return r != nil && r.packets.Load() > 30
	})
	pair, err := sub.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair: %v", err)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair is %s, want tcp", pair.Local.Protocol)
	}
}

// VP8, VP9 and H.264 video all pass through, each with its own codec at the
// subscriber and keyframe detection that lets a new subscriber start.
func TestVideoCodecs(t *testing.T) {
	for _, codec := range []webrtc.RTPCodecCapability{
		{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"},
		{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
	} {
		t.Run(codec.MimeType, func(t *testing.T) {
			s := newTestSFU(t)
			defer s.Close()
			pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
			defer pub.close()
			sub, _ := newTestClient(t, s, "r", "sub", RoleCounty, clientOpts{})
			defer sub.close()
			pub.publishCodec("video", codec)
			stop := make(chan struct{})
			defer close(stop)
			pub.sendMedia(stop)
			var r *recvTrack
			eventually(t, 30*time.Second, "video arrives", func() bool {
				r = sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
				return r != nil && r.packets.Load() > 30
			})
			if got := r.remote.Codec().MimeType; !strings.EqualFold(got, codec.MimeType) {
				t.Fatalf("subscriber codec %s, want %s", got, codec.MimeType)
			}
		})
	}
}

// The supervisor's mute stops a participant's audio at the SFU; receiver
// reports give each participant a round-trip time and loss.
func TestModMuteAndQuality(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "county", RoleCounty, clientOpts{})
	defer pub.close()
	sub, _ := newTestClient(t, s, "r", "sup", RoleSupervisor, clientOpts{})
	defer sub.close()
	pub.publish("audio")
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	var a *recvTrack
	eventually(t, 30*time.Second, "audio arrives", func() bool {
		a = sub.track(publishedBy(s, "r", pub.part.info.ID, "audio"))
		return a != nil && a.packets.Load() > 20
	})
	pub.part.SetModMuted(true)
	eventually(t, 10*time.Second, "the subscriber is told", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		for _, u := range sub.updates {
			if u.ID == pub.part.info.ID && u.ModMuted {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond)
	n := a.packets.Load()
	time.Sleep(time.Second)
	if got := a.packets.Load(); got > n+2 {
		t.Fatalf("audio still forwarded while muted by the supervisor: %d -> %d", n, got)
	}
	if s.Stats().ModeratedDrops == 0 {
		t.Fatal("moderated drops not counted")
	}
	pub.part.SetModMuted(false)
	eventually(t, 10*time.Second, "audio flows again", func() bool { return a.packets.Load() > n+20 })

	eventually(t, 20*time.Second, "receiver reports give the subscriber a quality", func() bool {
		q := sub.part.Quality()
		return q.Known && q.RTT > 0 && q.RTT < time.Second
	})
}

// nopNotifier records what the SFU tells a client that never answers.
type nopNotifier struct {
	mu     sync.Mutex
	offers int
	closed string
}

func (n *nopNotifier) Offer(string)                        { n.mu.Lock(); n.offers++; n.mu.Unlock() }
func (n *nopNotifier) Answer(string)                       {}
func (n *nopNotifier) Candidate(webrtc.ICECandidateInit)   {}
func (n *nopNotifier) ParticipantJoined(ParticipantState)  {}
func (n *nopNotifier) ParticipantLeft(string, string)      {}
func (n *nopNotifier) ParticipantUpdated(ParticipantState) {}
func (n *nopNotifier) TrackPublished(TrackInfo)            {}
func (n *nopNotifier) TrackRemoved(TrackInfo)              {}
func (n *nopNotifier) ActiveSpeakers([]string)             {}
func (n *nopNotifier) Layers(string, string, []string)     {}
func (n *nopNotifier) Closed(r string)                     { n.mu.Lock(); n.closed = r; n.mu.Unlock() }

// An unusable answer to the server's offer ends that participant (Pion
// cannot roll its offer back), with a reason, and nobody else.
func TestBadAnswerEndsOnlyThatParticipant(t *testing.T) {
	s := newTestSFU(t)
	t.Cleanup(func() { s.Close() })
	sendingSupervisor(t, s, "r")
	n := &nopNotifier{}
	p, _, err := s.Join("r", ParticipantInfo{ID: "Pbad", Identity: "bad", Name: "bad", Role: RoleCounty}, n)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the server offers the subscription", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.offers > 0
	})
	if err := p.HandleAnswer("v=0\r\nnot an answer"); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("bad answer: %v, want ErrBadSDP", err)
	}
	n.mu.Lock()
	why := n.closed
	n.mu.Unlock()
	if why != "negotiation_failed" {
		t.Fatalf("closed with %q", why)
	}
	if st := s.Stats(); st.Participants != 1 {
		t.Fatalf("participants = %d, want the publisher only", st.Participants)
	}
}

// Who speaks is announced to everyone; in a large room only the loudest
// speakers' audio is forwarded: to a participant who joined while the room
// was small, through its own subscriptions (the others' held back); to one
// who joined a large room, on its speaker slots.
func TestLoudestSpeakers(t *testing.T) {
	s, err := New(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, MaxSpeakers: 1, LargeRoom: 2},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	loud, _ := newTestClient(t, s, "big", "loud", RoleCounty, clientOpts{})
	defer loud.close()
	quiet, _ := newTestClient(t, s, "big", "quiet", RoleCounty, clientOpts{})
	defer quiet.close()
	ear, _ := newTestClient(t, s, "big", "ear", RoleSupervisor, clientOpts{}) // third: the room is large
	defer ear.close()
	if !ear.part.slotMode() || loud.part.slotMode() {
		t.Fatalf("slot mode: ear %v, loud %v", ear.part.slotMode(), loud.part.slotMode())
	}
	loud.audioLevel.Store(25) // -25 dBov: speech
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range []*testClient{loud, quiet} {
		c.publish("audio")
		c.sendMedia(stop)
	}
	eventually(t, 20*time.Second, "everyone is told who speaks", func() bool {
		for _, c := range []*testClient{loud, quiet, ear} {
			c.mu.Lock()
			ok := slices.Equal(c.speakers, []string{loud.part.info.ID})
			c.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	loudTrack := s.Room("big").track(publishedBy(s, "big", loud.part.info.ID, "audio"))
	quietTrack := s.Room("big").track(publishedBy(s, "big", quiet.part.info.ID, "audio"))
	var slot *recvTrack
	eventually(t, 20*time.Second, "the loud speaker's audio arrives on the slot", func() bool {
		slot = ear.track(SlotPrefix + "0")
		return slot != nil && slot.packets.Load() > 50 && ear.part.slots[0].source() == loudTrack
	})
	if ear.track(quietTrack.info.ID) != nil || ear.track(loudTrack.info.ID) != nil {
		t.Fatalf("a slot-mode participant subscribed to audio tracks itself")
	}
	// loud joined while the room was small: it has its own subscription
	// to quiet's audio, held back while quiet is silent.
	var q *recvTrack
	eventually(t, 20*time.Second, "loud is subscribed to quiet's audio", func() bool {
		q = loud.track(quietTrack.info.ID)
		return q != nil
	})
	qn := q.packets.Load()
	time.Sleep(time.Second)
	if q.packets.Load() > qn+5 {
		t.Fatalf("the silent participant's audio is still forwarded in a large room: %d -> %d", qn, q.packets.Load())
	}
	// The quiet one starts speaking, louder: it takes over.
	quiet.audioLevel.Store(10)
	eventually(t, 20*time.Second, "the new speaker is announced", func() bool {
		ear.mu.Lock()
		defer ear.mu.Unlock()
		return slices.Equal(ear.speakers, []string{quiet.part.info.ID})
	})
	eventually(t, 20*time.Second, "its audio flows to loud", func() bool { return q.packets.Load() > qn+30 })
	sn := slot.packets.Load()
	eventually(t, 20*time.Second, "and on ear's slot", func() bool {
		return ear.part.slots[0].source() == quietTrack && slot.packets.Load() > sn+30
	})
	// Continuous numbering across the speaker change: the browser sees one
	// stream without a gap.
	slot.mu.Lock()
	lo, hi := uint16(0xffff), uint16(0)
	for seq := range slot.seqs {
		lo, hi = min(lo, seq), max(hi, seq)
	}
	distinct := len(slot.seqs)
	slot.mu.Unlock()
	if int(hi-lo)+1 != distinct {
		t.Fatalf("slot sequence numbers %d..%d have gaps (%d distinct)", lo, hi, distinct)
	}
}

// Batched sends are the default; the direct path (a sendto per packet, for
// comparison runs) must still carry media and repair losses.
func TestDirectSend(t *testing.T) {
	s, err := New(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, DirectSend: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
	defer pub.close()
	sub, _ := newTestClient(t, s, "r", "sub", RoleCounty, clientOpts{dropIn: 15})
	defer sub.close()
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	var tr *recvTrack
	eventually(t, 30*time.Second, "video through direct sends", func() bool {
		tr = sub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return tr != nil && tr.packets.Load() > 200
	})
	eventually(t, 20*time.Second, "retransmissions fill the gaps", func() bool { return contiguousRun(tr, 150) })
	if st := s.Stats(); st.UDPBatched != 0 || st.UDPBatches != 0 {
		t.Fatalf("direct sends went through the batcher: %+v", st)
	}
}

// In a large room a county receives the supervisor's video, not the other
// counties'; the supervisor receives everyone's.
func TestLargeRoomSubscriptionPolicy(t *testing.T) {
	s, err := New(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, LargeRoom: 2},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sup, _ := newTestClient(t, s, "prov", "sup", RoleSupervisor, clientOpts{})
	defer sup.close()
	a, _ := newTestClient(t, s, "prov", "countyA", RoleCounty, clientOpts{})
	defer a.close()
	b, _ := newTestClient(t, s, "prov", "countyB", RoleCounty, clientOpts{})
	defer b.close()
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range []*testClient{sup, a} {
		c.publish("video")
		c.sendMedia(stop)
	}
	supVid := func() string { return publishedBy(s, "prov", sup.part.info.ID, "video") }
	aVid := func() string { return publishedBy(s, "prov", a.part.info.ID, "video") }
	eventually(t, 30*time.Second, "county B receives the supervisor", func() bool {
		r := b.track(supVid())
		return r != nil && r.packets.Load() > 20
	})
	eventually(t, 30*time.Second, "the supervisor receives county A", func() bool {
		r := sup.track(aVid())
		return r != nil && r.packets.Load() > 20
	})
	time.Sleep(time.Second)
	if r := b.track(aVid()); r != nil {
		t.Fatal("county B subscribed to county A's video in a large room")
	}
	b.mu.Lock()
	told := b.published[aVid()]
	b.mu.Unlock()
	if !told {
		t.Fatal("county B was not told county A's track exists")
	}
}

// A peer that connects ICE but never finishes its DTLS handshake (here its
// DTLS records never leave) is closed as connection_failed when the
// handshake times out, instead of holding its participant in silence:
// Pion alone would wait forever.
func TestStalledDTLSHandshakeFails(t *testing.T) {
	// No ICE-TCP: over a TCP pair the DTLS records would not pass the
	// client's dropping UDP socket, and the handshake would complete.
	s := newTestSFUConfig(t, Config{DTLSHandshakeTimeout: 2 * time.Second, TCPPort: -1})
	defer s.Close()
	c, _ := newTestClient(t, s, "r", "mute", RoleCounty, clientOpts{dropDTLSOut: true})
	defer c.close()
	c.publish("audio")
	defer func() {
		if t.Failed() {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Logf("closed %q; client: signaling %s, ice %s, peer %s", c.closedWhy, c.pc.SignalingState(),
				c.pc.ICEConnectionState(), c.pc.ConnectionState())
		}
	}()
	eventually(t, 30*time.Second, "the participant closed as connection_failed", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closedWhy == "connection_failed"
	})
	if st := s.Stats(); st.Participants != 0 {
		t.Fatalf("participants = %d after the failed handshake, want 0", st.Participants)
	}
}
