package rooms

import "errors"

// Store errors.
var (
	// ErrNotFound means the session, participant, invitation or account does
	// not exist.
	ErrNotFound = errors.New("rooms: not found")
	// ErrExists means an object with the same identity already exists.
	ErrExists = errors.New("rooms: already exists")
	// ErrInvalid means the object failed validation; the wrapping message
	// names the field.
	ErrInvalid = errors.New("rooms: invalid")
	// ErrConflict means an optimistic update kept losing races and gave up.
	ErrConflict = errors.New("rooms: too many concurrent updates")
	// ErrUnavailable means the backing store cannot be reached and the
	// answer is not known locally.
	ErrUnavailable = errors.New("rooms: store unavailable")
	// ErrQueueFull means the write-behind queue that holds writes during a
	// store outage is full; the write was refused, not dropped.
	ErrQueueFull = errors.New("rooms: write-behind queue full")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("rooms: store closed")
)

// Status machine errors.
var (
	// ErrUnknownStatus means a status value is not one of the defined ones.
	ErrUnknownStatus = errors.New("rooms: unknown session status")
	// ErrInvalidTransition means the status change is not allowed.
	ErrInvalidTransition = errors.New("rooms: status transition not allowed")
)

// Invitation errors, returned by CheckInvitation.
var (
	ErrNotYetValid    = errors.New("rooms: invitation not yet valid")
	ErrExpired        = errors.New("rooms: invitation expired")
	ErrRevoked        = errors.New("rooms: invitation revoked")
	ErrSessionEnded   = errors.New("rooms: session has ended")
	ErrUnitNotInvited = errors.New("rooms: unit is not invited to this session")
	ErrWrongSession   = errors.New("rooms: invitation belongs to another session")
)
