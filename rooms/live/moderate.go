package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/signaling"
)

// Moderation actions, the same over the websocket and the HTTP API.
const (
	ActionAdmit        = "admit"
	ActionMute         = "mute"
	ActionUnmute       = "unmute"
	ActionRemove       = "remove"
	ActionLock         = "lock"
	ActionUnlock       = "unlock"
	ActionRecordingOn  = "recording-on"
	ActionRecordingOff = "recording-off"
	ActionOpenLobby    = "open-lobby"
	ActionStart        = "start"
	ActionEnd          = "end"
)

// Moderate runs an action for an actor the caller has authorised (the HTTP
// API checks the account; the websocket checks the role).
func (c *Controller) Moderate(ctx context.Context, sessionID, actor, action, target string) error {
	return c.moderate(ctx, sessionID, actor, action, target)
}

func (c *Controller) moderate(ctx context.Context, sessionID, actor, action, target string) error {
	switch action {
	case ActionAdmit, ActionMute, ActionUnmute, ActionRemove:
		return c.moderateMember(ctx, sessionID, actor, action, target)
	case ActionLock, ActionUnlock:
		locked := action == ActionLock
		typ := rooms.EventUnlock
		if locked {
			typ = rooms.EventLock
		}
		return c.updateSession(ctx, sessionID, actor, typ, func(s *rooms.Session) error {
			s.Locked = locked
			return nil
		})
	case ActionRecordingOn, ActionRecordingOff:
		on := action == ActionRecordingOn
		typ := rooms.EventRecordingOff
		if on {
			typ = rooms.EventRecordingOn
		}
		err := c.updateSession(ctx, sessionID, actor, typ, func(s *rooms.Session) error {
			s.Recording = on
			return nil
		})
		if err == nil && c.cfg.Recording != nil {
			c.cfg.Recording.SetRecording(sessionID, on)
		}
		return err
	case ActionOpenLobby:
		return c.transition(ctx, sessionID, actor, rooms.StatusLobby, rooms.EventLobbyOpen)
	case ActionStart:
		if err := c.transition(ctx, sessionID, actor, rooms.StatusLive, rooms.EventSessionStart); err != nil {
			return err
		}
		return c.admitAllIfOpen(ctx, sessionID, actor)
	case ActionEnd:
		if err := c.transition(ctx, sessionID, actor, rooms.StatusEnded, rooms.EventSessionEnd); err != nil {
			return err
		}
		if ls := c.lookup(sessionID); ls != nil {
			for _, m := range ls.all() {
				m.kick("session_ended")
			}
		}
		if c.cfg.Recording != nil {
			c.cfg.Recording.SessionEnded(sessionID)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown action %q", signaling.ErrBadAction, action)
}

func (c *Controller) moderateMember(ctx context.Context, sessionID, actor, action, target string) error {
	ls := c.lookup(sessionID)
	var m *member
	if ls != nil && target != "" {
		m = ls.member(target)
	}
	if m == nil {
		return fmt.Errorf("%w: no participant %q in session %s", signaling.ErrBadAction, target, sessionID)
	}
	switch action {
	case ActionAdmit:
		return c.admit(ctx, m, actor)
	case ActionMute, ActionUnmute:
		ms, err := m.mediaSession()
		if err != nil {
			return fmt.Errorf("%w: %s is in the lobby", signaling.ErrBadAction, target)
		}
		muted := action == ActionMute
		ms.SetModMuted(muted)
		m.mu.Lock()
		m.modMuted = muted
		m.mu.Unlock()
		p, err := c.cfg.Store.UpdateParticipant(ctx, sessionID, m.info.ID, func(p *rooms.Participant) error {
			p.ModMuted = muted
			return nil
		})
		if err != nil {
			p = c.storeParticipant(m, false)
		}
		typ := rooms.EventUnmute
		if muted {
			typ = rooms.EventMute
		}
		e := rooms.ParticipantEvent(typ, p, actor, c.cfg.Now())
		e.Data[rooms.DataKind] = "audio"
		e.Data["by"] = "supervisor"
		c.appendEvent(ctx, e)
		return nil
	case ActionRemove:
		now := c.cfg.Now()
		if m.info.Invitation != "" {
			// The link stops working: the same link cannot rejoin.
			if _, err := c.cfg.Store.RevokeInvitation(ctx, m.info.Invitation, now); err != nil &&
				!errors.Is(err, rooms.ErrNotFound) {
				return fmt.Errorf("live: revoke invitation: %w", err)
			}
		}
		c.appendEvent(ctx, rooms.ParticipantEvent(rooms.EventRemove, c.storeParticipant(m, m.inLobby()), actor, now))
		m.kick("removed")
		return nil
	}
	return fmt.Errorf("%w: %q", signaling.ErrBadAction, action)
}

// admit moves a lobby member into the call.
func (c *Controller) admit(ctx context.Context, m *member, actor string) error {
	if !m.inLobby() {
		return nil // already in: admitting twice is harmless
	}
	sess, err := c.cfg.Store.GetSession(ctx, m.ls.id)
	if err != nil {
		return fmt.Errorf("live: session: %w", err)
	}
	res, err := c.enterCall(ctx, m.ls, m, sess, actor)
	if err != nil {
		return err
	}
	m.n.Admitted(res)
	c.lobbyChanged(m.ls)
	return nil
}

// admitAllIfOpen lets the lobby in when the session starts unlocked.
func (c *Controller) admitAllIfOpen(ctx context.Context, sessionID, actor string) error {
	sess, err := c.cfg.Store.GetSession(ctx, sessionID)
	if err != nil || sess.Locked {
		return err
	}
	ls := c.lookup(sessionID)
	if ls == nil {
		return nil
	}
	for _, m := range ls.all() {
		if m.inLobby() {
			if err := c.admit(ctx, m, actor); err != nil {
				c.log.Warn("admit on start failed", "session", sessionID, "participant", m.info.ID, "err", err)
			}
		}
	}
	return nil
}

func (c *Controller) transition(ctx context.Context, sessionID, actor string, to rooms.Status, typ rooms.EventType) error {
	now := c.cfg.Now()
	return c.updateSession(ctx, sessionID, actor, typ, func(s *rooms.Session) error {
		return s.Transition(to, now)
	})
}

// updateSession changes the session, logs the event and tells everyone.
func (c *Controller) updateSession(ctx context.Context, sessionID, actor string, typ rooms.EventType, fn func(*rooms.Session) error) error {
	s, err := c.cfg.Store.UpdateSession(ctx, sessionID, fn)
	if err != nil {
		return err
	}
	c.appendEvent(ctx, rooms.Event{ID: rooms.NewID(), SessionID: sessionID, Time: c.cfg.Now(), Actor: actor, Type: typ,
		Data: map[string]string{}})
	if ls := c.lookup(sessionID); ls != nil {
		c.broadcastSession(ls, s)
	}
	return nil
}

// Cancelled disconnects everyone still connected to a session that was
// cancelled (county officials waiting in its lobby, typically).
func (c *Controller) Cancelled(sessionID string) {
	if ls := c.lookup(sessionID); ls != nil {
		for _, m := range ls.all() {
			m.kick("session_ended")
		}
	}
}

// LiveParticipant is a connected participant, for the API.
type LiveParticipant struct {
	ID, Identity, Name, Role, Unit string
	Lobby, AudioMuted, VideoMuted  bool
	ModMuted                       bool
	JoinedAt                       time.Time
	RTTMillis, LossPercent         float64 // -1 when unknown
	DownlinkKbps                   float64 // bandwidth estimate toward it; -1 when unknown
}

// Live lists who is connected to a session now, lobby included.
func (c *Controller) Live(sessionID string) []LiveParticipant {
	ls := c.lookup(sessionID)
	if ls == nil {
		return nil
	}
	var out []LiveParticipant
	for _, m := range ls.all() {
		m.mu.Lock()
		lp := LiveParticipant{ID: m.info.ID, Identity: m.info.Identity, Name: m.info.Name, Role: m.info.Role,
			Unit: m.info.Unit, Lobby: m.lobby, ModMuted: m.modMuted, JoinedAt: m.joinedAt, RTTMillis: -1, LossPercent: -1, DownlinkKbps: -1}
		media := m.media
		m.mu.Unlock()
		if media != nil {
			q := media.Quality()
			if q.Known {
				lp.RTTMillis = float64(q.RTT.Microseconds()) / 1000
				lp.LossPercent = q.LossPercent
			}
			if q.DownlinkBps > 0 {
				lp.DownlinkKbps = float64(q.DownlinkBps) / 1000
			}
		}
		out = append(out, lp)
	}
	return out
}

// LiveSessionIDs lists sessions with anyone connected (ad-hoc rooms excluded).
func (c *Controller) LiveSessionIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, ls := range c.sessions {
		if !ls.adhoc {
			out = append(out, id)
		}
	}
	return out
}
