package client

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/signaling"
)

// readLoop reads server messages. Negotiation work is handed to the event
// loop so it runs in order; bookkeeping is done here.
func (c *Client) readLoop(joined chan<- error) {
	defer c.wg.Done()
	defer func() {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}()
	first := true
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.mu.Lock()
				c.endErr = err
				c.mu.Unlock()
			}
			if first {
				joined <- c.joinFailure(err)
			}
			return
		}
		var env signaling.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			c.log.Warn("bad message from server", "err", err)
			continue
		}
		c.handle(env)
		if first {
			switch env.Type {
			case signaling.TypeJoined:
				first = false
				joined <- nil
			case signaling.TypeError:
				first = false
				joined <- c.lastError()
			}
		}
		if c.cfg.OnMessage != nil {
			c.cfg.OnMessage(env.Type, env.Data)
		}
	}
}

func (c *Client) joinFailure(err error) error {
	if e := c.lastError(); e != nil {
		return e
	}
	return err
}

func (c *Client) lastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs[len(c.errs)-1]
}

func (c *Client) handle(env signaling.Envelope) {
	switch env.Type {
	case signaling.TypeJoined, signaling.TypeAdmitted:
		var j signaling.Joined
		if json.Unmarshal(env.Data, &j) == nil {
			c.mu.Lock()
			wasLobby := c.lobby
			c.joined = j
			c.lobby = j.Lobby
			if j.Session != nil {
				c.session = j.Session
			}
			if env.Type == signaling.TypeAdmitted && wasLobby && !j.Lobby {
				close(c.admitted)
			}
			c.participants[j.Self.ID] = j.Self
			for _, p := range j.Participants {
				c.participants[p.ID] = p
			}
			for _, t := range j.Tracks {
				c.tracks[t.ID] = t
			}
			c.mu.Unlock()
		}
	case signaling.TypeParticipantJoined, signaling.TypeParticipantUpdated:
		var e signaling.ParticipantEvent
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.participants[e.Participant.ID] = e.Participant
			c.mu.Unlock()
		}
	case signaling.TypeParticipantLeft:
		var e signaling.ParticipantLeft
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			delete(c.participants, e.ID)
			c.mu.Unlock()
		}
	case signaling.TypeTrackPublished:
		var e signaling.TrackEvent
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.tracks[e.Track.ID] = e.Track
			c.mu.Unlock()
		}
	case signaling.TypeTrackRemoved:
		var e signaling.TrackEvent
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			delete(c.tracks, e.Track.ID)
			c.mu.Unlock()
		}
	case signaling.TypeOffer:
		var s signaling.SDP
		if json.Unmarshal(env.Data, &s) == nil {
			c.postSDP(func() { c.onOffer(s.SDP) })
		}
	case signaling.TypeAnswer:
		var s signaling.SDP
		if json.Unmarshal(env.Data, &s) == nil {
			c.postSDP(func() { c.onAnswer(s.SDP) })
		}
	case signaling.TypeCandidate:
		var cand webrtc.ICECandidateInit
		if json.Unmarshal(env.Data, &cand) == nil {
			c.post(func() { c.onCandidate(cand) })
		}
	case signaling.TypeLayers:
		var e signaling.Layers
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			s := c.simulcasts[e.Mid]
			c.mu.Unlock()
			if s == nil {
				c.log.Debug("layers for a mid we do not publish simulcast", "mid", e.Mid, "track", e.Track)
				break
			}
			c.log.Debug("layers", "mid", e.Mid, "track", e.Track, "active", e.Active)
			s.setActive(e.Active)
		}
	case signaling.TypeSessionUpdated:
		var e signaling.SessionUpdated
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.session = &e.Session
			c.mu.Unlock()
		}
	case signaling.TypeLobbyUpdated:
		var e signaling.LobbyUpdated
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.waiting = e.Waiting
			c.mu.Unlock()
		}
	case signaling.TypeActiveSpeakers:
		var e signaling.ActiveSpeakers
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.speakers = e.IDs
			c.mu.Unlock()
		}
	case signaling.TypeChat:
		var e signaling.ChatMessage
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.chats = append(c.chats, e)
			c.mu.Unlock()
		}
	case signaling.TypeClosed:
		var e signaling.Closed
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.closedReason = e.Reason
			c.mu.Unlock()
		}
	case signaling.TypeError:
		var e signaling.ErrorMsg
		if json.Unmarshal(env.Data, &e) == nil {
			c.mu.Lock()
			c.errs = append(c.errs, &ServerError{Code: e.Code, Message: e.Message, Ref: e.Ref})
			c.mu.Unlock()
		}
	}
}

// postSDP hands a received description to the event loop; Negotiating
// is true from here until it is applied.
func (c *Client) postSDP(f func()) {
	c.sdpPending.Add(1)
	if !c.post(func() { defer c.sdpPending.Add(-1); f() }) {
		c.sdpPending.Add(-1)
	}
}

// makeOffer runs on the event loop.
func (c *Client) makeOffer() {
	if c.pc.SignalingState() != webrtc.SignalingStateStable {
		c.wantOffer = true
		return
	}
	c.wantOffer = false
	offer, err := c.pc.CreateOffer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.log.Warn("offer failed", "err", err)
		return
	}
	src := make(map[string]string, len(c.sources))
	for k, v := range c.sources {
		src[k] = v
	}
	_ = c.send(signaling.TypeOffer, signaling.Offer{SDP: c.localSDP(), Sources: src})
}

func (c *Client) onOffer(sdp string) {
	if c.closed.Load() {
		return // leaving: the server's last offers (others unsubscribed) need no answer
	}
	if c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		// Polite: withdraw ours, answer theirs, offer again when stable.
		if err := c.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			// Pion (v4.2.26) cannot roll back a local offer at all: the
			// server's offer stays unanswered and ours ignored, so
			// negotiation stops here. Clients built on Pion must not offer
			// while the server may (see WaitPublished).
			c.log.Warn("rollback failed: glare the Pion client cannot resolve", "err", err)
			return
		}
		c.wantOffer = true
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		c.log.Warn("remote offer refused", "err", err)
		return
	}
	c.refreshSenders()
	c.flushCandidates()
	ans, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(ans)
	}
	if err != nil {
		c.log.Warn("answer failed", "err", err)
		return
	}
	_ = c.send(signaling.TypeAnswer, signaling.Answer{SDP: c.localSDP()})
	if c.wantOffer {
		c.makeOffer()
	}
}

func (c *Client) onAnswer(sdp string) {
	if c.closed.Load() {
		return
	}
	if c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		c.log.Warn("remote answer refused", "err", err)
		return
	}
	c.refreshSenders()
	c.flushCandidates()
	if c.wantOffer {
		c.makeOffer()
	}
}

func (c *Client) onCandidate(cand webrtc.ICECandidateInit) {
	if c.pc.RemoteDescription() == nil {
		c.candQueue = append(c.candQueue, cand)
		return
	}
	_ = c.pc.AddICECandidate(cand)
}

func (c *Client) flushCandidates() {
	for _, cand := range c.candQueue {
		_ = c.pc.AddICECandidate(cand)
	}
	c.candQueue = nil
}

// refreshSenders runs after each remote description: the negotiated
// header extension ids are what simulcast layers and audio senders stamp,
// and the description says what the server sends us.
func (c *Client) refreshSenders() {
	c.mu.Lock()
	sims := make([]*Simulcast, 0, len(c.simulcasts))
	for _, s := range c.simulcasts {
		sims = append(sims, s)
	}
	audios := slices.Clone(c.audios)
	c.mu.Unlock()
	for _, s := range sims {
		s.refreshIDs()
	}
	// Parse a copy of the text: Unmarshal on the description Pion hands
	// out caches the parse in Pion's own struct, which its transport
	// start reads the DTLS role from on another goroutine. That race let
	// both ends wait as DTLS servers now and then (a first publish that
	// never connected: "ice connected, peer connecting").
	var rd *sdp.SessionDescription
	if d := c.pc.RemoteDescription(); d != nil && len(audios) > 0 {
		var parsed sdp.SessionDescription
		if parsed.UnmarshalString(d.SDP) == nil {
			rd = &parsed
		}
	}
	for _, a := range audios {
		a.refreshID()
		if rd != nil {
			a.dtx.Store(remoteWantsDTX(rd, c.midOf(a.Sender)))
		}
	}
	c.refreshOffered()
}

// midOf is the media section a sender sends in ("" before negotiation).
func (c *Client) midOf(s *webrtc.RTPSender) string {
	for _, t := range c.pc.GetTransceivers() {
		if t.Sender() == s {
			return t.Mid()
		}
	}
	return ""
}

// localSDP is the local description as sent to the server. With
// HideCandidates its candidate lines are left out too: Pion puts the
// candidates gathered by then into the description itself.
func (c *Client) localSDP() string {
	sdp := c.pc.LocalDescription().SDP
	if c.cfg.HideCandidates {
		sdp = withoutCandidates(sdp)
	}
	return sdp
}

// withoutCandidates drops the a=candidate and a=end-of-candidates lines of
// a session description.
func withoutCandidates(sdp string) string {
	var b strings.Builder
	b.Grow(len(sdp))
	for line := range strings.SplitSeq(sdp, "\r\n") {
		if line == "" || strings.HasPrefix(line, "a=candidate:") || line == "a=end-of-candidates" {
			continue
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
}
