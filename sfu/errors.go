package sfu

import "errors"

var (
	// ErrForbidden: the participant's role does not allow the action (an observer offering to send).
	ErrForbidden = errors.New("sfu: forbidden for this role")
	// ErrBadSDP: the offer or answer could not be parsed or applied.
	ErrBadSDP = errors.New("sfu: bad session description")
	// ErrClosed: the participant or SFU is closed.
	ErrClosed = errors.New("sfu: closed")
	// ErrBadKind: a media kind other than "audio" or "video".
	ErrBadKind = errors.New("sfu: bad media kind")
	// ErrBadCandidate: an ICE candidate could not be added.
	ErrBadCandidate = errors.New("sfu: bad ICE candidate")
)

func isForbidden(err error) bool { return errors.Is(err, ErrForbidden) }
