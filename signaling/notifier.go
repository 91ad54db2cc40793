package signaling

import (
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
)

// notifier is the Notifier of one connection. The SFU may call it during
// Conference.Join, before the client has been sent `joined`; those events
// are held back so that `joined` is always the first thing a client hears
// about the room. Likewise a participant in the lobby hears nothing of the
// call (offers, candidates, participants, tracks) until `admitted` went out:
// the conference joins it to the SFU just before admitting it.
type notifier struct {
	c    *conn
	room string

	mu      sync.Mutex
	open    bool
	dead    bool
	lobby   bool     // the call's events wait in held
	pending []outMsg // before `joined`
	held    []outMsg // in the lobby, before `admitted`
}

var _ Notifier = (*notifier)(nil)

func newNotifier(c *conn, room string) *notifier { return &notifier{c: c, room: room} }

// start sends first (the `joined`), then what arrived during the join, and
// from then on passes events straight to the outbound queue.
func (n *notifier) start(first outMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dead {
		return
	}
	n.c.enqueue(first)
	if j, ok := first.Data.(Joined); ok && j.Lobby {
		n.lobby = true
	}
	for _, m := range n.pending {
		n.deliverLocked(m)
	}
	n.pending = nil
	n.open = true
}

// callEvent reports whether a message belongs to the call (held in the
// lobby) rather than to the session (lobby and session state, chat, closed).
func callEvent(typ string) bool {
	switch typ {
	case TypeOffer, TypeAnswer, TypeCandidate, TypeParticipantJoined, TypeParticipantLeft,
		TypeParticipantUpdated, TypeTrackPublished, TypeTrackRemoved, TypeActiveSpeakers, TypeLayers:
		return true
	}
	return false
}

// deliverLocked queues m for the client, or holds it while in the lobby.
// `admitted` ends the lobby: it goes out first, then what was held.
func (n *notifier) deliverLocked(m outMsg) {
	if m.Type == TypeAdmitted {
		n.c.enqueue(m)
		n.lobby = false
		for _, h := range n.held {
			n.c.enqueue(h)
		}
		n.held = nil
		return
	}
	if n.lobby && callEvent(m.Type) {
		if len(n.held) >= n.c.lim.OutboundQueue {
			n.dead = true
			n.held = nil
			n.c.slowConsumer()
			return
		}
		n.held = append(n.held, m)
		return
	}
	n.c.enqueue(m)
}

// discard drops everything: the join failed and the SFU has no business
// talking to this connection.
func (n *notifier) discard() {
	n.mu.Lock()
	n.dead = true
	n.pending = nil
	n.mu.Unlock()
}

func (n *notifier) send(m outMsg) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.dead:
	case n.open:
		n.deliverLocked(m)
	case len(n.pending) >= n.c.lim.OutboundQueue:
		n.dead = true
		n.pending = nil
		n.c.slowConsumer()
	default:
		n.pending = append(n.pending, m)
	}
}

func (n *notifier) Offer(sdp string)  { n.send(outMsg{Type: TypeOffer, Data: SDP{SDP: sdp}}) }
func (n *notifier) Answer(sdp string) { n.send(outMsg{Type: TypeAnswer, Data: SDP{SDP: sdp}}) }

func (n *notifier) Candidate(c webrtc.ICECandidateInit) {
	n.send(outMsg{Type: TypeCandidate, Data: c})
}

func (n *notifier) ParticipantJoined(p sfu.ParticipantState) {
	n.send(outMsg{Type: TypeParticipantJoined, Data: ParticipantEvent{Participant: p}})
}

func (n *notifier) ParticipantLeft(id, reason string) {
	n.send(outMsg{Type: TypeParticipantLeft, Data: ParticipantLeft{ID: id, Reason: reason}})
}

func (n *notifier) ParticipantUpdated(p sfu.ParticipantState) {
	n.send(outMsg{Type: TypeParticipantUpdated, Data: ParticipantEvent{Participant: p}})
}

func (n *notifier) TrackPublished(t sfu.TrackInfo) {
	n.send(outMsg{Type: TypeTrackPublished, Data: TrackEvent{Track: t}})
}

func (n *notifier) TrackRemoved(t sfu.TrackInfo) {
	n.send(outMsg{Type: TypeTrackRemoved, Data: TrackEvent{Track: t}})
}

// Admitted tells a lobby participant it is in; the conference has already
// joined it to the media session.
func (n *notifier) Admitted(res JoinResult) {
	n.send(outMsg{Type: TypeAdmitted, Data: n.c.joinedData(n.room, res)})
}

func (n *notifier) SessionUpdated(s SessionState) {
	n.send(outMsg{Type: TypeSessionUpdated, Data: SessionUpdated{Session: s}})
}

func (n *notifier) LobbyUpdated(w []Waiting) {
	if w == nil {
		w = []Waiting{}
	}
	n.send(outMsg{Type: TypeLobbyUpdated, Data: LobbyUpdated{Waiting: w}})
}

func (n *notifier) Chat(m ChatMessage) { n.send(outMsg{Type: TypeChat, Data: m}) }

func (n *notifier) ActiveSpeakers(ids []string) {
	if ids == nil {
		ids = []string{}
	}
	n.send(outMsg{Type: TypeActiveSpeakers, Data: ActiveSpeakers{IDs: ids}})
}

func (n *notifier) Layers(track, mid string, active []string) {
	if active == nil {
		active = []string{}
	}
	n.send(outMsg{Type: TypeLayers, Data: Layers{Track: track, Mid: mid, Active: active}})
}

// Closed ends the connection: the server-side session is gone (replaced by
// a newer connection of the same identity, or the room ended).
func (n *notifier) Closed(reason string) {
	n.mu.Lock()
	n.dead = true
	n.pending = nil
	n.mu.Unlock()
	n.c.closeWithReason(reason)
}
