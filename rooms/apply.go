package rooms

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The functions in this file hold the rules every Store implementation
// applies, so the memory and Redis stores cannot drift apart. API code does
// not need them.

// PrepareSession fills the defaults of a session about to be created and
// validates it.
func PrepareSession(s Session, now time.Time) (Session, error) {
	s = s.Clone()
	if s.ID == "" {
		s.ID = NewID()
	}
	if s.Status == "" {
		s.Status = StatusScheduled
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = s.CreatedAt
	}
	s.Version = 1
	return s, s.Validate()
}

// ApplySessionUpdate runs fn on a copy of cur and returns the session to
// store: identity fields kept, Version bumped, UpdatedAt set to now unless fn
// set it, the status change checked against the status machine (whatever fn
// did), and validated.
func ApplySessionUpdate(cur Session, fn func(*Session) error, now time.Time) (Session, error) {
	next := cur.Clone()
	if err := fn(&next); err != nil {
		return Session{}, err
	}
	next.ID, next.CreatedAt, next.Version = cur.ID, cur.CreatedAt, cur.Version+1
	if next.UpdatedAt.Equal(cur.UpdatedAt) {
		next.UpdatedAt = now
	}
	if next.Status != cur.Status {
		if err := CheckTransition(cur.Status, next.Status); err != nil {
			return Session{}, err
		}
	}
	if err := next.Validate(); err != nil {
		return Session{}, err
	}
	return next, nil
}

// PrepareInvitation fills the defaults of an invitation about to be created
// and validates it.
func PrepareInvitation(inv Invitation, now time.Time) (Invitation, error) {
	if inv.ID == "" {
		inv.ID = NewID()
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = now
	}
	return inv, inv.Validate()
}

// SortInvitations orders invitations by creation time, then ID.
func SortInvitations(invs []Invitation) {
	slices.SortFunc(invs, func(a, b Invitation) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// ApplyUpsert returns the participant to store when p is upserted over cur
// (nil when new) at now.
func ApplyUpsert(cur *Participant, p Participant, now time.Time) (Participant, error) {
	p.LeftAt = time.Time{}
	p.LastSeen = now
	p.Version = 1
	if cur != nil {
		p.Version = cur.Version + 1
		if p.JoinedAt.IsZero() {
			p.JoinedAt = cur.JoinedAt
		}
	}
	if p.JoinedAt.IsZero() {
		p.JoinedAt = now
	}
	return p, p.Validate()
}

// ApplyParticipantUpdate runs fn on a copy of cur and returns the
// participant to store.
func ApplyParticipantUpdate(cur Participant, fn func(*Participant) error) (Participant, error) {
	next := cur
	if err := fn(&next); err != nil {
		return Participant{}, err
	}
	next.ID, next.SessionID, next.Version = cur.ID, cur.SessionID, cur.Version+1
	if err := next.Validate(); err != nil {
		return Participant{}, err
	}
	return next, nil
}

// ApplyLeave returns cur marked as left at at. Leaving twice keeps the first
// time.
func ApplyLeave(cur Participant, at time.Time) Participant {
	if cur.LeftAt.IsZero() {
		cur.LeftAt = at
		cur.Version++
	}
	return cur
}

// SortParticipants orders participants by JoinedAt, then ID.
func SortParticipants(ps []Participant) {
	slices.SortFunc(ps, func(a, b Participant) int {
		if c := a.JoinedAt.Compare(b.JoinedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// PrepareEvent fills the defaults of an event about to be appended and
// validates it. Seq is cleared: only the store assigns it.
func PrepareEvent(e Event, now time.Time) (Event, error) {
	e = e.Clone()
	e.Seq = 0
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	return e, e.Validate()
}

// PrepareAccount fills the defaults of an account about to be created and
// validates it.
func PrepareAccount(a Account, now time.Time) (Account, error) {
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	a.Version = 1
	return a, a.Validate()
}

// ApplyAccountUpdate runs fn on a copy of cur and returns the account to
// store.
func ApplyAccountUpdate(cur Account, fn func(*Account) error, now time.Time) (Account, error) {
	next := cur
	if err := fn(&next); err != nil {
		return Account{}, err
	}
	if next.Username != cur.Username {
		return Account{}, fmt.Errorf("%w: username cannot change", ErrInvalid)
	}
	next.ID, next.CreatedAt, next.Version = cur.ID, cur.CreatedAt, cur.Version+1
	if next.UpdatedAt.Equal(cur.UpdatedAt) {
		next.UpdatedAt = now
	}
	if err := next.Validate(); err != nil {
		return Account{}, err
	}
	return next, nil
}
