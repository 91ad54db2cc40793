package rooms

import (
	"fmt"
	"time"
)

// Status is where a session is in its life.
type Status string

// Session statuses.
const (
	StatusScheduled Status = "scheduled" // created, nobody can enter yet
	StatusLobby     Status = "lobby"     // lobby open: units wait to be admitted
	StatusLive      Status = "live"      // the call is running
	StatusEnded     Status = "ended"     // held and finished
	StatusCancelled Status = "cancelled" // never held
)

// next lists the allowed moves from a status. Ended and cancelled are final
// because the event log and recording of a finished session are evidence:
// reopening would mix two sittings in one record; the supervisor schedules a
// new session instead.
func next(from Status) []Status {
	switch from {
	case StatusScheduled:
		return []Status{StatusLobby, StatusLive, StatusCancelled}
	case StatusLobby:
		return []Status{StatusLive, StatusCancelled}
	case StatusLive:
		return []Status{StatusEnded}
	}
	return nil
}

// Valid reports whether s is a defined status.
func (s Status) Valid() bool {
	switch s {
	case StatusScheduled, StatusLobby, StatusLive, StatusEnded, StatusCancelled:
		return true
	}
	return false
}

// Final reports whether no transition leaves s.
func (s Status) Final() bool { return s == StatusEnded || s == StatusCancelled }

// CheckTransition reports whether a session may go from one status to
// another.
func CheckTransition(from, to Status) error {
	if !from.Valid() {
		return fmt.Errorf("%w: %q", ErrUnknownStatus, from)
	}
	if !to.Valid() {
		return fmt.Errorf("%w: %q", ErrUnknownStatus, to)
	}
	for _, ok := range next(from) {
		if ok == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrInvalidTransition, from, to)
}

// Transition moves s to status to at time now, stamping StartedAt when the
// call goes live and EndedAt when it ends or is cancelled. It is meant to be
// called inside a Store.UpdateSession function.
func (s *Session) Transition(to Status, now time.Time) error {
	if err := CheckTransition(s.Status, to); err != nil {
		return err
	}
	s.Status = to
	s.UpdatedAt = now
	switch to {
	case StatusLive:
		s.StartedAt = now
	case StatusEnded, StatusCancelled:
		s.EndedAt = now
	}
	return nil
}
