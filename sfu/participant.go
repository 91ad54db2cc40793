package sfu

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Participant is one member of a room with its PeerConnection, carrying
// what it publishes and what it receives.
//
// Negotiation rule (documented in signaling/PROTOCOL.md): the server is the
// impolite peer. It never has two offers outstanding; changes that arrive
// while one is outstanding are folded into the next offer. An offer from the
// client that collides with ours is ignored; the polite client rolls back.
type Participant struct {
	info ParticipantInfo
	room *Room
	n    Notifier
	log  *slog.Logger
	pc   *webrtc.PeerConnection

	mu           sync.Mutex // serialises negotiation and guards the fields below
	closed       bool
	offerPending bool                      // our offer awaits an answer
	needOffer    bool                      // something changed while an offer was pending
	remoteCands  []webrtc.ICECandidateInit // arrived before a remote description
	sources      map[string]string         // client track id -> source
	audioMuted   bool
	videoMuted   bool
	modMuted     bool
	ready        atomic.Bool            // the connection is up: media written now reaches the client
	egress       atomic.Pointer[egress] // set before ready, when the connection can take it
	in           *inbound               // the receive side: feedback to the publisher, the own ingress
	ups          map[*UpTrack]struct{}  // what this participant publishes
	simul        map[*webrtc.RTPReceiver]*UpTrack
	downs        map[*UpTrack]*downEntry
	sizes        map[string]videoSize // from video-size, by track id
	// slots carry the loudest speakers' audio when the participant joined
	// a large room (slots.go); it then subscribes to no audio track itself.
	slots     []*speakerSlot
	leaveOnce sync.Once
	leaving   atomic.Bool // Leave began: a closed connection is ours

	// Layer allocation: the bandwidth estimator toward this client (set at
	// creation) and the allocator state (allocMu: the room tick and
	// video-size both run it).
	bwe     *bwe.Estimator
	allocMu sync.Mutex
	alloc   allocator
}

type videoSize struct{ w, h int }

type downEntry struct {
	dt     *downTrack
	sender *webrtc.RTPSender
}

func newParticipant(r *Room, info ParticipantInfo, n Notifier) (*Participant, error) {
	if info.ID == "" {
		info.ID = newID("P")
	}
	pc, err := r.sfu.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: new peer connection: %w", err)
	}
	p := &Participant{
		info: info, room: r, n: n, pc: pc,
		log:     r.log.With("participant", info.ID, "identity", info.Identity),
		sources: map[string]string{},
		downs:   map[*UpTrack]*downEntry{},
		ups:     map[*UpTrack]struct{}{},
		simul:   map[*webrtc.RTPReceiver]*UpTrack{},
		sizes:   map[string]videoSize{},
	}
	p.bwe = bwe.New(bwe.Config{Initial: initialEstimate, Min: minEstimate, Max: maxEstimate}, r.sfu.cfg.Clock.Now())
	p.in = newInbound(r.sfu.ingress, &r.sfu.ctr, p.log, r.sfu.cfg.Clock, p.bwe, func(pkts []rtcp.Packet) error {
		return pc.WriteRTCP(pkts)
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			n.Candidate(c.ToJSON())
		}
	})
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("connection state", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			if p.egress.Load() == nil && !p.ready.Load() {
				p.startOwnSRTP()
			}
			if !p.ready.Swap(true) {
				p.requestKeyframes()
				p.logPath()
			}
		case webrtc.PeerConnectionStateFailed:
			p.closeWith("connection_failed")
		case webrtc.PeerConnectionStateClosed:
			// Closed, and not by Leave: Pion closes the connection itself
			// when the DTLS connection closes, which a failed handshake
			// (its timeout) sometimes does before the failed state shows.
			if !p.leaving.Load() {
				p.closeWith("connection_failed")
			}
		}
	})
	return p, nil
}

// startOwnSRTP puts the connection's media on the own egress and ingress
// (egress.go, ingress.go) before it is marked ready; where it cannot, the
// media keeps Pion's path, and the participant says why.
func (p *Participant) startOwnSRTP() {
	ctr := &p.room.sfu.ctr
	k, err := srtpKeysOf(p.pc)
	if err != nil {
		p.log.Warn("media goes through Pion's SRTP path", "err", err)
		ctr.egressFallbacks.Add(1)
		ctr.ingressFallbacks.Add(1)
		return
	}
	e := newEgress(k, p.room.sfu.egressSocket())
	if err := p.in.startOwnRTCP(k, e); err != nil {
		p.log.Warn("RTCP to the participant goes through Pion's SRTP path", "err", err)
	}
	ingress := true
	if err := p.in.startIngress(k); err != nil {
		p.log.Warn("media from the participant goes through Pion's SRTP path", "err", err)
		ctr.ingressFallbacks.Add(1)
		ingress = false
	}
	setPair := func(pair *webrtc.ICECandidatePair) {
		e.setPair(pair)
		if ingress {
			p.in.setPair(pair)
		}
	}
	// The handler first, so that a change between the two is not missed.
	k.ice.OnSelectedCandidatePairChange(setPair)
	if pair, err := k.ice.GetSelectedCandidatePair(); err == nil {
		setPair(pair)
	}
	p.egress.Store(e)
}

// logPath records how the participant's media travels: over UDP or
// ICE-TCP, and whether the county's address was its own (host), learnt
// from its checks behind NAT (prflx), or a TURN relay. It is what an
// operator asks first about a county whose picture is late or poor.
func (p *Participant) logPath() {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return
	}
	p.log.Info("connected", "protocol", pair.Remote.Protocol.String(), "remote_type", pair.Remote.Typ.String(),
		"remote", net.JoinHostPort(pair.Remote.Address, strconv.Itoa(int(pair.Remote.Port))))
}

// Info is who the participant is.
func (p *Participant) Info() ParticipantInfo { return p.info }

func (p *Participant) state() ParticipantState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ParticipantState{ParticipantInfo: p.info, AudioMuted: p.audioMuted, VideoMuted: p.videoMuted,
		ModMuted: p.modMuted}
}

// HandleOffer applies a client offer and sends the answer through the notifier.
func (p *Participant) HandleOffer(offer string, sources map[string]string) error {
	parsed := &sdp.SessionDescription{}
	if err := parsed.UnmarshalString(offer); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if !p.info.CanPublish() && offersToSend(parsed) {
		return fmt.Errorf("%w: role %q may not send media", ErrForbidden, p.info.Role)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.offerPending {
		// Glare: we are impolite; the client rolls back and answers ours.
		p.log.Debug("ignoring colliding client offer")
		return nil
	}
	for id, src := range sources {
		if validSource(src) && len(p.sources) < 64 {
			p.sources[id] = src
		}
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.flushCandidatesLocked()
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		// The remote offer is applied but cannot be answered, and Pion
		// cannot roll it back: this connection cannot negotiate again.
		go p.closeWith("negotiation_failed")
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.n.Answer(p.room.sfu.describe(p.pc.LocalDescription().SDP))
	if p.needOffer {
		p.offerLocked()
	}
	return nil
}

// HandleAnswer applies the client's answer to our offer.
func (p *Participant) HandleAnswer(answer string) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if !p.offerPending {
		p.mu.Unlock()
		return fmt.Errorf("%w: no offer is outstanding", ErrBadSDP)
	}
	err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
	if err != nil {
		// Our offer stays outstanding and Pion cannot roll a local offer
		// back: a client that answers with something unusable is broken,
		// and the only way on is a fresh connection (the client rejoins).
		p.mu.Unlock()
		p.closeWith("negotiation_failed")
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.offerPending = false
	p.flushCandidatesLocked()
	if p.needOffer {
		p.offerLocked()
	}
	p.mu.Unlock()
	return nil
}

// offerLocked sends a new offer now, or marks one as needed after the
// outstanding exchange.
func (p *Participant) offerLocked() {
	if p.closed {
		return
	}
	if p.offerPending || p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.needOffer = true
		return
	}
	p.needOffer = false
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.log.Warn("cannot create offer", "err", err)
		return
	}
	p.offerPending = true
	p.n.Offer(p.room.sfu.describe(p.pc.LocalDescription().SDP))
}

// AddCandidate adds a trickled remote ICE candidate.
func (p *Participant) AddCandidate(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.pc.RemoteDescription() == nil {
		if len(p.remoteCands) >= 64 {
			return fmt.Errorf("%w: too many candidates before a description", ErrBadCandidate)
		}
		p.remoteCands = append(p.remoteCands, c)
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

func (p *Participant) flushCandidatesLocked() {
	for _, c := range p.remoteCands {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("queued candidate refused", "err", err)
		}
	}
	p.remoteCands = nil
}

// SetMuted records the participant's own microphone or camera state.
func (p *Participant) SetMuted(kind string, muted bool) error {
	p.mu.Lock()
	switch kind {
	case "audio":
		p.audioMuted = muted
	case "video":
		p.videoMuted = muted
	default:
		p.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrBadKind, kind)
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	p.room.updated(p)
	return nil
}

// SetVideoSize records the size at which the client shows a received video;
// it bounds the simulcast layer that client is sent (0x0: none). Sizes for
// tracks the client does not receive (gone meanwhile, or not sent to it by
// the room's policy) are ignored.
func (p *Participant) SetVideoSize(trackID string, width, height int) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	// Kept by id even before the subscription exists: a client sizes its
	// tile when the track is announced, which can be before the server
	// subscribed it. Bounded: ids are the client's to name.
	if _, ok := p.sizes[trackID]; ok || len(p.sizes) < maxSizes {
		p.sizes[trackID] = videoSize{w: width, h: height}
	}
	p.mu.Unlock()
	p.allocate(p.room.sfu.cfg.Clock.Now())
	return nil
}

// maxSizes bounds the video sizes a participant may have recorded.
const maxSizes = 1024

// Leave ends the participation; idempotent.
func (p *Participant) Leave(reason string) {
	p.leaveOnce.Do(func() {
		p.leaving.Store(true)
		p.room.leave(p, reason)
		p.mu.Lock()
		p.closed = true
		downs := p.downs
		p.downs = map[*UpTrack]*downEntry{}
		p.mu.Unlock()
		for _, e := range downs {
			e.dt.detach()
			e.dt.close()
		}
		p.mu.Lock()
		slots := p.slots
		p.mu.Unlock()
		for _, s := range slots {
			s.close()
		}
		if err := p.pc.Close(); err != nil {
			p.log.Debug("peer connection close", "err", err)
		}
		p.in.close()
	})
}

// SetModMuted is the supervisor's mute: the SFU stops forwarding the
// participant's audio (to everyone, the recorder included) until lifted.
func (p *Participant) SetModMuted(muted bool) {
	p.mu.Lock()
	p.modMuted = muted
	for up := range p.ups {
		if up.info.Kind == "audio" {
			up.blocked.Store(muted)
		}
	}
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		p.room.updated(p)
	}
}

// requestKeyframes asks every publisher this participant watches for a
// keyframe: its connection just came up and nothing reached it before.
func (p *Participant) requestKeyframes() {
	p.mu.Lock()
	dts := make([]*downTrack, 0, len(p.downs))
	for _, e := range p.downs {
		dts = append(dts, e.dt)
	}
	p.mu.Unlock()
	for _, dt := range dts {
		dt.askKeyframe()
	}
}

// Kick ends the participant's session from the server side with a reason
// the client is told (removed, session_ended...).
func (p *Participant) Kick(reason string) { p.closeWith(reason) }

// slotMode reports whether the participant hears the room through speaker slots.
func (p *Participant) slotMode() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.slots) > 0
}

// Quality summarises the receiver reports of the participant's subscriptions.
func (p *Participant) Quality() Quality {
	p.mu.Lock()
	defer p.mu.Unlock()
	var q Quality
	var sum time.Duration
	n := 0
	for _, e := range p.downs {
		rtt, loss, ok := e.dt.quality()
		if !ok {
			continue
		}
		q.Known = true
		if rtt > 0 {
			sum += rtt
			n++
		}
		if loss > q.LossPercent {
			q.LossPercent = loss
		}
	}
	if n > 0 {
		q.RTT = sum / time.Duration(n)
	}
	if p.bwe.Stats().Received > 0 {
		q.DownlinkBps = p.bwe.GetTargetBitrate()
	}
	return q
}

// closeWith tells the client why the server ends its session, then leaves.
func (p *Participant) closeWith(reason string) {
	p.n.Closed(reason)
	p.Leave(reason)
}

// subscribe adds downtracks for tracks (and speaker slots, when slots > 0)
// and renegotiates once.
func (p *Participant) subscribe(tracks []*UpTrack, slots int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	added := 0
	if slots > 0 {
		p.addSlotsLocked(slots)
		added += len(p.slots)
	}
	for _, up := range tracks {
		if up.info.ParticipantID == p.info.ID || p.downs[up] != nil {
			continue
		}
		dt := newDownTrack(up, &p.room.sfu.ctr, p.log.With("track", up.info.ID), &p.ready, p.bwe, &p.egress)
		tr, err := p.pc.AddTransceiverFromTrack(dt, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.log.Warn("cannot add subscription", "track", up.info.ID, "err", err)
			dt.detach()
			continue
		}
		p.downs[up] = &downEntry{dt: dt, sender: tr.Sender()}
		for _, enc := range tr.Sender().GetParameters().Encodings {
			p.in.addSink(uint32(enc.SSRC), dt)
		}
		go dt.rtcpLoop(tr.Sender())
		layer := up.topAvailable(p.room.sfu.cfg.Clock.Now())
		if sz, ok := p.sizes[up.info.ID]; ok && up.simulcast {
			// The tile's size is known already: start on its layer
			// rather than switch down a moment later.
			layer = min(layer, layerForHeight(up.layerOptions(p.room.sfu.cfg.Clock.Now()), sz.h))
		}
		dt.attach(layer)
		added++
	}
	if added > 0 {
		p.offerLocked()
	}
}

// unsubscribe removes the downtrack of up and renegotiates.
func (p *Participant) unsubscribe(up *UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.downs[up]
	if e == nil {
		return
	}
	delete(p.downs, up)
	delete(p.sizes, up.info.ID)
	for _, enc := range e.sender.GetParameters().Encodings {
		p.in.removeSink(uint32(enc.SSRC), e.dt)
	}
	e.dt.detach()
	e.dt.close()
	if p.closed {
		return
	}
	if err := p.pc.RemoveTrack(e.sender); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
		p.log.Debug("remove track", "err", err)
	}
	p.offerLocked()
}

// offersToSend reports whether an offer asks to send any media (a media
// section whose direction is sendrecv or sendonly; sendrecv is the default).
func offersToSend(sd *sdp.SessionDescription) bool {
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			continue // rejected/stopped section
		}
		dir := "sendrecv"
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		if dir == "sendrecv" || dir == "sendonly" {
			return true
		}
	}
	return false
}

func validSource(s string) bool {
	return s == SourceCamera || s == SourceMicrophone || s == SourceScreen
}

// newID makes a short random id with a prefix.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
