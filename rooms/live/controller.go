// Package live runs supervision sessions while people are connected: who
// is in the call and who waits in the lobby, the supervisor's moderation,
// chat, and the event log that records all of it. It sits between
// signaling (which it serves as the Conference), the SFU (media) and the
// rooms.Store (state that outlives the process).
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
)

// Media is the SFU as the controller uses it.
type Media interface {
	Join(room string, info sfu.ParticipantInfo, n sfu.Notifier) (MediaSession, sfu.JoinResult, error)
}

// MediaSession is one participant's media (*sfu.Participant).
type MediaSession interface {
	HandleOffer(sdp string, sources map[string]string) error
	HandleAnswer(sdp string) error
	AddCandidate(c webrtc.ICECandidateInit) error
	SetMuted(kind string, muted bool) error
	SetVideoSize(track string, width, height int) error
	Leave(reason string)
	SetModMuted(muted bool)
	Kick(reason string)
	Quality() sfu.Quality
}

// Recording is told when a session's recording is switched and when the
// session ends (so the manifest can be sealed). Optional.
type Recording interface {
	SetRecording(sessionID string, on bool)
	SessionEnded(sessionID string)
}

// Config configures a Controller.
type Config struct {
	Store     rooms.Store
	Media     Media
	Recording Recording // may be nil
	Logger    *slog.Logger
	Now       func() time.Time
	Node      string // this node's name, kept on participants
	// AllowAdhoc lets tokens for rooms that are not scheduled sessions in
	// (the `ducha token` rooms of the embedded default).
	AllowAdhoc bool
	// ParticipantTTL is how long a participant outlives its last heartbeat
	// in the store (a crashed node's participants expire); default 30 s.
	ParticipantTTL time.Duration
	// StoreTimeout bounds each store call on a signaling path; default 5 s.
	StoreTimeout time.Duration
}

// Controller implements signaling.Conference.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*liveSession
}

var _ signaling.Conference = (*Controller)(nil)

// New checks cfg and returns a Controller.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Media == nil {
		return nil, errors.New("live: Store and Media are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ParticipantTTL <= 0 {
		cfg.ParticipantTTL = 30 * time.Second
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 5 * time.Second
	}
	return &Controller{cfg: cfg, log: cfg.Logger, sessions: map[string]*liveSession{}}, nil
}

func (c *Controller) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.cfg.StoreTimeout)
}

// liveSession is a room with connected members. Ad-hoc rooms have one too
// (for chat), with adhoc set and no store records.
type liveSession struct {
	id    string
	adhoc bool

	mu      sync.Mutex
	members map[string]*member // by participant id
}

func (c *Controller) liveSession(id string, adhoc bool) *liveSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	ls := c.sessions[id]
	if ls == nil {
		ls = &liveSession{id: id, adhoc: adhoc, members: map[string]*member{}}
		c.sessions[id] = ls
	}
	return ls
}

func (c *Controller) lookup(id string) *liveSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[id]
}

func (ls *liveSession) add(m *member) {
	ls.mu.Lock()
	ls.members[m.info.ID] = m
	ls.mu.Unlock()
}

// remove drops m and reports whether the session has nobody left.
func (ls *liveSession) remove(m *member) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.members[m.info.ID] == m {
		delete(ls.members, m.info.ID)
	}
	return len(ls.members) == 0
}

func (ls *liveSession) member(id string) *member {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.members[id]
}

func (ls *liveSession) all() []*member {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]*member, 0, len(ls.members))
	for _, m := range ls.members {
		out = append(out, m)
	}
	return out
}

func (c *Controller) dropIfEmpty(ls *liveSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if c.sessions[ls.id] == ls && len(ls.members) == 0 {
		delete(c.sessions, ls.id)
	}
}

// Join admits a participant to a room, or to its lobby.
func (c *Controller) Join(roomID string, info sfu.ParticipantInfo, n signaling.Notifier) (signaling.Session, signaling.JoinResult, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	sess, err := c.cfg.Store.GetSession(ctx, roomID)
	if errors.Is(err, rooms.ErrNotFound) {
		if !c.cfg.AllowAdhoc {
			return nil, signaling.JoinResult{}, fmt.Errorf("%w: no session %q", signaling.ErrSessionEnded, roomID)
		}
		return c.joinAdhoc(roomID, info, n)
	}
	if err != nil {
		return nil, signaling.JoinResult{}, fmt.Errorf("live: session %s: %w", roomID, err)
	}
	if sess.Status.Final() {
		return nil, signaling.JoinResult{}, fmt.Errorf("%w: %s", signaling.ErrSessionEnded, sess.Status)
	}
	if info.Role == sfu.RoleCounty {
		if err := c.checkInvitation(ctx, sess, info); err != nil {
			return nil, signaling.JoinResult{}, err
		}
	}
	ls := c.liveSession(sess.ID, false)
	m := &member{c: c, ls: ls, info: info, n: n, since: c.cfg.Now()}
	if info.Role == sfu.RoleCounty && (sess.Status != rooms.StatusLive || sess.Locked) {
		return c.enterLobby(ctx, ls, m, sess)
	}
	res, err := c.enterCall(ctx, ls, m, sess, "")
	if err != nil {
		c.dropIfEmpty(ls)
		return nil, signaling.JoinResult{}, err
	}
	return m, res, nil
}

func (c *Controller) checkInvitation(ctx context.Context, sess rooms.Session, info sfu.ParticipantInfo) error {
	if info.Invitation == "" {
		return fmt.Errorf("%w: a county link for a session needs an invitation", signaling.ErrInvitationRevoked)
	}
	inv, err := c.cfg.Store.GetInvitation(ctx, info.Invitation)
	if errors.Is(err, rooms.ErrNotFound) {
		return fmt.Errorf("%w: unknown invitation", signaling.ErrInvitationRevoked)
	}
	if err != nil {
		return fmt.Errorf("live: invitation: %w", err)
	}
	if inv.UnitCode != info.Unit && inv.UnitCode != info.Identity {
		return fmt.Errorf("%w: the invitation is for another unit", signaling.ErrInvitationRevoked)
	}
	err = rooms.CheckInvitation(inv, sess, c.cfg.Now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rooms.ErrNotYetValid):
		return fmt.Errorf("%w: %v", signaling.ErrInvitationNotYetValid, err)
	case errors.Is(err, rooms.ErrExpired), errors.Is(err, rooms.ErrSessionEnded):
		return fmt.Errorf("%w: %v", signaling.ErrSessionEnded, err)
	default:
		return fmt.Errorf("%w: %v", signaling.ErrInvitationRevoked, err)
	}
}

func (c *Controller) joinAdhoc(roomID string, info sfu.ParticipantInfo, n signaling.Notifier) (signaling.Session, signaling.JoinResult, error) {
	ls := c.liveSession(roomID, true)
	m := &member{c: c, ls: ls, info: info, n: n, since: c.cfg.Now()}
	media, res, err := c.cfg.Media.Join(roomID, info, n)
	if err != nil {
		c.dropIfEmpty(ls)
		return nil, signaling.JoinResult{}, err
	}
	m.media = media
	ls.add(m)
	return m, signaling.JoinResult{JoinResult: res}, nil
}

// enterLobby records a waiting participant and tells the supervisors.
func (c *Controller) enterLobby(ctx context.Context, ls *liveSession, m *member, sess rooms.Session) (signaling.Session, signaling.JoinResult, error) {
	m.lobby = true
	c.replaceSameIdentity(ls, m)
	ls.add(m)
	p := c.storeParticipant(m, true)
	if _, err := c.cfg.Store.UpsertParticipant(ctx, p, c.cfg.ParticipantTTL); err != nil {
		c.log.Warn("participant not stored", "session", sess.ID, "participant", m.info.ID, "err", err)
	}
	c.appendEvent(ctx, rooms.ParticipantEvent(rooms.EventLobbyEnter, p, m.info.Identity, c.cfg.Now()))
	c.lobbyChanged(ls)
	st := sessionState(sess)
	self := sfu.ParticipantState{ParticipantInfo: m.info}
	return m, signaling.JoinResult{JoinResult: sfu.JoinResult{Self: self}, Lobby: true, Session: &st}, nil
}

// replaceSameIdentity closes a lobby member with m's identity (a reconnect
// from the lobby); the SFU does the same for members in the call.
func (c *Controller) replaceSameIdentity(ls *liveSession, m *member) {
	for _, o := range ls.all() {
		if o != m && o.info.Identity == m.info.Identity && o.inLobby() {
			o.n.Closed(signaling.ReasonReplaced)
			o.Leave(signaling.ReasonReplaced)
		}
	}
}

// enterCall joins m's media and records it. actor is who admitted it ("" for
// a direct join).
func (c *Controller) enterCall(ctx context.Context, ls *liveSession, m *member, sess rooms.Session, actor string) (signaling.JoinResult, error) {
	media, res, err := c.cfg.Media.Join(ls.id, m.info, m.n)
	if err != nil {
		return signaling.JoinResult{}, err
	}
	m.mu.Lock()
	m.media, m.lobby, m.joinedAt = media, false, c.cfg.Now()
	m.mu.Unlock()
	ls.add(m)
	p := c.storeParticipant(m, false)
	if _, err := c.cfg.Store.UpsertParticipant(ctx, p, c.cfg.ParticipantTTL); err != nil {
		c.log.Warn("participant not stored", "session", sess.ID, "participant", m.info.ID, "err", err)
	}
	now := c.cfg.Now()
	if actor != "" {
		c.appendEvent(ctx, rooms.ParticipantEvent(rooms.EventAdmit, p, actor, now))
	}
	c.appendEvent(ctx, rooms.ParticipantEvent(rooms.EventJoin, p, m.info.Identity, now))
	st := sessionState(sess)
	return signaling.JoinResult{JoinResult: res, Session: &st}, nil
}

func (c *Controller) storeParticipant(m *member, lobby bool) rooms.Participant {
	now := c.cfg.Now()
	return rooms.Participant{
		ID: m.info.ID, SessionID: m.ls.id, Identity: m.info.Identity, Name: m.info.Name,
		Role: rooms.Role(m.info.Role), UnitCode: m.info.Unit, Node: c.cfg.Node,
		InLobby: lobby, JoinedAt: now, LastSeen: now,
	}
}

// appendEvent writes to the session's event log. The store keeps events
// through a Redis outage and replays them; an error here means it could
// not even queue the event, which must be loud.
func (c *Controller) appendEvent(ctx context.Context, e rooms.Event) {
	if _, err := c.cfg.Store.AppendEvent(ctx, e); err != nil {
		c.log.Error("event not recorded", "session", e.SessionID, "type", e.Type, "subject", e.Subject, "err", err)
	}
}

func sessionState(s rooms.Session) signaling.SessionState {
	return signaling.SessionState{ID: s.ID, Title: s.Title, CaseNumber: s.CaseNumber, Status: string(s.Status),
		Locked: s.Locked, Recording: s.Recording}
}

// lobbyChanged tells the session's supervisors who is waiting.
func (c *Controller) lobbyChanged(ls *liveSession) {
	var waiting []signaling.Waiting
	var sups []*member
	for _, m := range ls.all() {
		if m.inLobby() {
			waiting = append(waiting, signaling.Waiting{ID: m.info.ID, Identity: m.info.Identity, Name: m.info.Name,
				Unit: m.info.Unit, Since: m.since})
		} else if m.info.Role == sfu.RoleSupervisor {
			sups = append(sups, m)
		}
	}
	for _, s := range sups {
		s.n.LobbyUpdated(waiting)
	}
}

// broadcastSession tells every member the session's new state.
func (c *Controller) broadcastSession(ls *liveSession, s rooms.Session) {
	st := sessionState(s)
	for _, m := range ls.all() {
		m.n.SessionUpdated(st)
	}
}

// Heartbeats keeps the store's participant records alive until ctx ends.
func (c *Controller) Heartbeats(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		sessions := make([]*liveSession, 0, len(c.sessions))
		for _, ls := range c.sessions {
			if !ls.adhoc {
				sessions = append(sessions, ls)
			}
		}
		c.mu.Unlock()
		for _, ls := range sessions {
			for _, m := range ls.all() {
				hctx, cancel := c.ctx()
				if err := c.cfg.Store.Heartbeat(hctx, ls.id, m.info.ID, c.cfg.ParticipantTTL); err != nil {
					c.log.Debug("heartbeat", "session", ls.id, "participant", m.info.ID, "err", err)
				}
				cancel()
			}
		}
	}
}
