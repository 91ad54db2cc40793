package httpapi

import (
	"context"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/live"
)

// Moderator runs moderation actions on a session; the same actions as the
// websocket `moderate` message (signaling/PROTOCOL.md, section "Supervision
// sessions"): admit, mute, unmute, remove, lock, unlock, recording-on,
// recording-off, open-lobby, start, end. target is a participant id where
// the action needs one.
//
// Errors: rooms.ErrNotFound (no such session or participant) answers 404,
// rooms.ErrInvalidTransition 409 invalid_transition, and the controller's
// "bad action" error 422 bad_action, matched with errors.Is against
// Config.ErrBadAction (pass signaling.ErrBadAction there). Any other error is
// a 500 internal. The action names are the live controller's.
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
	// DownlinkKbps is the SFU's bandwidth estimate toward the participant
	// (from its TWCC feedback); -1 when unknown.
	DownlinkKbps float64
}

// LiveSession is a session with anyone connected.
type LiveSession struct {
	SessionID, Title, CaseNumber string
	Status                       string
	Participants                 []LiveParticipant
}

// knownAction reports whether action is a moderation action and whether it
// needs a participant id.
func knownAction(action string) (needsTarget, ok bool) {
	switch action {
	case live.ActionAdmit, live.ActionMute, live.ActionUnmute, live.ActionRemove:
		return true, true
	case live.ActionLock, live.ActionUnlock, live.ActionRecordingOn, live.ActionRecordingOff, live.ActionOpenLobby,
		live.ActionStart, live.ActionEnd:
		return false, true
	}
	return false, false
}
