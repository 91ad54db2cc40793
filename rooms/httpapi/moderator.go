package httpapi

import (
	"context"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Moderator runs moderation actions on a session; the same actions as the
// websocket `moderate` message (signaling/PROTOCOL.md, section "Supervision
// sessions"): admit, mute, unmute, remove, lock, unlock, recording-on,
// recording-off, open-lobby, start, end. target is a participant id where
// the action needs one.
//
// Errors: rooms.ErrNotFound (no such session or participant) answers 404,
// rooms.ErrInvalidTransition 409 invalid_transition, and the controller's
// "bad action" error 422 bad_action. This package cannot import the live
// controller, so that last error is matched with errors.Is against
// Config.ErrBadAction (pass live.ErrBadAction there). Any other error is a
// 500 internal.
type Moderator interface {
	Moderate(ctx context.Context, sessionID string, actor rooms.Account, action, target string) error
	// Live returns who is connected to the session now, lobby included.
	Live(sessionID string) []LiveParticipant
	// Overview returns the sessions with anyone connected.
	Overview() []LiveSession
}

// LiveParticipant is one connected participant as the live controller sees
// it.
type LiveParticipant struct {
	ID, Identity, Name, Role, Unit          string
	Lobby, AudioMuted, VideoMuted, ModMuted bool
	JoinedAt                                time.Time
	// RTTMillis and LossPercent come from RTCP receiver reports; -1 when
	// unknown.
	RTTMillis, LossPercent float64
}

// LiveSession is a session with anyone connected.
type LiveSession struct {
	SessionID, Title, CaseNumber string
	Status                       string
	Participants                 []LiveParticipant
}

// Moderation actions, as in signaling/PROTOCOL.md.
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

// knownAction reports whether action is a moderation action and whether it
// needs a participant id.
func knownAction(action string) (needsTarget, ok bool) {
	switch action {
	case ActionAdmit, ActionMute, ActionUnmute, ActionRemove:
		return true, true
	case ActionLock, ActionUnlock, ActionRecordingOn, ActionRecordingOff, ActionOpenLobby, ActionStart, ActionEnd:
		return false, true
	}
	return false, false
}
