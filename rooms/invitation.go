package rooms

import (
	"fmt"
	"time"
)

// DefaultEarlyWindow is how long before the scheduled start an invitation
// link starts to work, so county offices can test their camera in the lobby.
const DefaultEarlyWindow = 30 * time.Minute

// Invitation lets one invited unit join one session. Its ID is the secret in
// the invitation link.
type Invitation struct {
	ID         string    `json:"id"`
	SessionID  string    `json:"sessionId"`
	UnitCode   string    `json:"unitCode"`
	ValidFrom  time.Time `json:"validFrom"`
	ValidUntil time.Time `json:"validUntil"`
	CreatedAt  time.Time `json:"createdAt"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
}

// NewInvitation returns an invitation for unit valid from early before the
// session's scheduled start until its scheduled end. A negative early is
// treated as zero.
func NewInvitation(s Session, unitCode string, early time.Duration, now time.Time) (Invitation, error) {
	if _, ok := s.Unit(unitCode); !ok {
		return Invitation{}, fmt.Errorf("%w: %s", ErrUnitNotInvited, unitCode)
	}
	if s.Status.Final() {
		return Invitation{}, fmt.Errorf("%w: %s", ErrSessionEnded, s.Status)
	}
	early = max(early, 0)
	return Invitation{
		ID:         NewID(),
		SessionID:  s.ID,
		UnitCode:   unitCode,
		ValidFrom:  s.ScheduledStart.Add(-early),
		ValidUntil: s.ScheduledEnd,
		CreatedAt:  now,
	}, nil
}

// Validate checks the fields a store must never accept wrong.
func (inv Invitation) Validate() error {
	switch {
	case inv.ID == "" || inv.SessionID == "" || inv.UnitCode == "":
		return fmt.Errorf("%w: invitation, session and unit are required", ErrInvalid)
	case !inv.ValidUntil.After(inv.ValidFrom):
		return fmt.Errorf("%w: invitation validity window is empty", ErrInvalid)
	}
	return nil
}

// Revoked reports whether the invitation was revoked.
func (inv Invitation) Revoked() bool { return !inv.RevokedAt.IsZero() }

// CheckInvitation decides whether inv lets its unit into s at now.
//
// Two deliberate departures from the bare window: while the session is open
// (lobby or live) the window does not apply, so a supervisor who opens early
// can admit units, and a unit whose connection drops after the scheduled end
// of a session that runs over can come back. A unit removed from the session's
// invited units is refused even if its invitation was not revoked.
func CheckInvitation(inv Invitation, s Session, now time.Time) error {
	if inv.SessionID != s.ID {
		return ErrWrongSession
	}
	if inv.Revoked() {
		return ErrRevoked
	}
	if s.Status.Final() {
		return fmt.Errorf("%w: %s", ErrSessionEnded, s.Status)
	}
	if _, ok := s.Unit(inv.UnitCode); !ok {
		return fmt.Errorf("%w: %s", ErrUnitNotInvited, inv.UnitCode)
	}
	if s.Status == StatusLobby || s.Status == StatusLive {
		return nil
	}
	if now.Before(inv.ValidFrom) {
		return fmt.Errorf("%w: opens at %s", ErrNotYetValid, inv.ValidFrom.Format(time.RFC3339))
	}
	if !now.Before(inv.ValidUntil) {
		return fmt.Errorf("%w: closed at %s", ErrExpired, inv.ValidUntil.Format(time.RFC3339))
	}
	return nil
}
