package signaling

import "errors"

var (
	// ErrBadMessage: a frame is not a JSON object, a field has the wrong
	// type, or a required field is missing or out of range.
	ErrBadMessage = errors.New("signaling: bad message")
	// ErrUnknownType: the envelope's type is not in protocol version 1.
	ErrUnknownType = errors.New("signaling: unknown message type")
	// ErrConfig: NewHandler was given an unusable Config.
	ErrConfig = errors.New("signaling: bad config")
	// Errors a Conference returns for the protocol to name.

	// ErrNotAdmitted: the participant is still in the lobby.
	ErrNotAdmitted = errors.New("signaling: not admitted yet")
	// ErrBadAction: an unknown moderation action or target.
	ErrBadAction = errors.New("signaling: bad moderation action")
	// ErrSessionEnded: the session ended or was cancelled.
	ErrSessionEnded = errors.New("signaling: session ended")
	// ErrInvitationRevoked: the invitation was revoked or the unit removed.
	ErrInvitationRevoked = errors.New("signaling: invitation revoked")
	// ErrInvitationNotYetValid: the invitation's window has not opened.
	ErrInvitationNotYetValid = errors.New("signaling: invitation not yet valid")

	// ErrShutdown: the handler is shutting down.
	ErrShutdown = errors.New("signaling: shutting down")

	// errTooLarge: a frame over Limits.MaxMessageBytes (answered with
	// message_too_large, never returned to callers).
	errTooLarge = errors.New("signaling: frame too large")
)
