package live

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
)

// member is one connected participant: in the lobby (no media yet) or in
// the call. It is the signaling.Session of its connection.
type member struct {
	c     *Controller
	ls    *liveSession
	info  sfu.ParticipantInfo
	n     signaling.Notifier
	since time.Time

	mu          sync.Mutex
	media       MediaSession // nil while in the lobby
	lobby       bool
	joinedAt    time.Time
	modMuted    bool
	leaveReason string // set before the server ends the session (removed, session_ended)
	left        bool
}

func (m *member) inLobby() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lobby
}

func (m *member) mediaSession() (MediaSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.media == nil {
		return nil, signaling.ErrNotAdmitted
	}
	return m.media, nil
}

// HandleOffer implements signaling.Session.
func (m *member) HandleOffer(sdp string, sources map[string]string) error {
	ms, err := m.mediaSession()
	if err != nil {
		return err
	}
	return ms.HandleOffer(sdp, sources)
}

// HandleAnswer implements signaling.Session.
func (m *member) HandleAnswer(sdp string) error {
	ms, err := m.mediaSession()
	if err != nil {
		return err
	}
	return ms.HandleAnswer(sdp)
}

// AddCandidate implements signaling.Session.
func (m *member) AddCandidate(cand webrtc.ICECandidateInit) error {
	ms, err := m.mediaSession()
	if err != nil {
		return err
	}
	return ms.AddCandidate(cand)
}

// SetVideoSize passes the client's tile size to its media session; it is
// not session state (nothing to keep in the store).
func (m *member) SetVideoSize(track string, width, height int) error {
	ms, err := m.mediaSession()
	if err != nil {
		return err
	}
	return ms.SetVideoSize(track, width, height)
}

// SetMuted records the participant's own microphone/camera switch.
func (m *member) SetMuted(kind string, muted bool) error {
	ms, err := m.mediaSession()
	if err != nil {
		return err
	}
	if err := ms.SetMuted(kind, muted); err != nil {
		return err
	}
	if m.ls.adhoc {
		return nil
	}
	ctx, cancel := m.c.ctx()
	defer cancel()
	p, err := m.c.cfg.Store.UpdateParticipant(ctx, m.ls.id, m.info.ID, func(p *rooms.Participant) error {
		if kind == "audio" {
			p.AudioMuted = muted
		} else {
			p.VideoMuted = muted
		}
		return nil
	})
	if err != nil {
		p = m.c.storeParticipant(m, false)
	}
	typ := rooms.EventUnmute
	if muted {
		typ = rooms.EventMute
	}
	e := rooms.ParticipantEvent(typ, p, m.info.Identity, m.c.cfg.Now())
	e.Data[rooms.DataKind] = kind
	m.c.appendEvent(ctx, e)
	return nil
}

// Chat sends a message to everyone in the call and keeps it in the log.
func (m *member) Chat(text string) error {
	if m.inLobby() {
		return signaling.ErrNotAdmitted
	}
	now := m.c.cfg.Now()
	msg := signaling.ChatMessage{ID: rooms.NewID(), From: m.info.ID, Name: m.info.Name, Text: text, Time: now}
	if !m.ls.adhoc {
		ctx, cancel := m.c.ctx()
		p := m.c.storeParticipant(m, false)
		e := rooms.ParticipantEvent(rooms.EventChat, p, m.info.Identity, now)
		e.ID = msg.ID
		e.Data[rooms.DataText] = text
		m.c.appendEvent(ctx, e)
		cancel()
	}
	for _, o := range m.ls.all() {
		if !o.inLobby() {
			o.n.Chat(msg)
		}
	}
	return nil
}

// Moderate runs a supervisor's action; other roles are refused.
func (m *member) Moderate(action, target string) error {
	if m.info.Role != sfu.RoleSupervisor {
		return fmt.Errorf("%w: only the supervisor moderates", sfu.ErrForbidden)
	}
	if m.ls.adhoc {
		return fmt.Errorf("%w: %q is not a supervision session", signaling.ErrBadAction, m.ls.id)
	}
	ctx, cancel := m.c.ctx()
	defer cancel()
	return m.c.moderate(ctx, m.ls.id, m.info.Identity, action, target)
}

// Leave ends the membership; idempotent. The reason the server chose
// (removed, session_ended) wins over the connection's own.
func (m *member) Leave(reason string) {
	m.mu.Lock()
	if m.left {
		m.mu.Unlock()
		return
	}
	m.left = true
	if m.leaveReason != "" {
		reason = m.leaveReason
	}
	media, wasLobby := m.media, m.lobby
	m.mu.Unlock()

	empty := m.ls.remove(m)
	if media != nil {
		media.Leave(reason)
	}
	if !m.ls.adhoc {
		ctx, cancel := m.c.ctx()
		now := m.c.cfg.Now()
		p, err := m.c.cfg.Store.LeaveParticipant(ctx, m.ls.id, m.info.ID, now)
		if err != nil {
			p = m.c.storeParticipant(m, wasLobby)
		}
		e := rooms.ParticipantEvent(rooms.EventLeave, p, m.info.Identity, now)
		e.Data[rooms.DataReason] = reason
		m.c.appendEvent(ctx, e)
		cancel()
		if wasLobby {
			m.c.lobbyChanged(m.ls)
		}
	}
	if empty {
		m.c.dropIfEmpty(m.ls)
	}
}

// kick ends the member's session from the server side.
func (m *member) kick(reason string) {
	m.mu.Lock()
	m.leaveReason = reason
	media := m.media
	m.mu.Unlock()
	if media != nil {
		media.Kick(reason) // tells the client (`closed`) and leaves the SFU
	} else {
		m.n.Closed(reason)
	}
	m.Leave(reason)
}
