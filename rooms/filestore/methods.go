package filestore

import (
	"context"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Changes go through change; reads and heartbeats go straight to memory.

// CreateSession implements rooms.SessionStore.
func (s *Store) CreateSession(ctx context.Context, sess rooms.Session) (rooms.Session, error) {
	return change(ctx, s, func() (rooms.Session, *record, error) {
		got, err := s.mem.CreateSession(ctx, sess)
		return got, &record{Op: opSession, Session: &got}, err
	})
}

// UpdateSession implements rooms.SessionStore.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*rooms.Session) error) (rooms.Session, error) {
	return change(ctx, s, func() (rooms.Session, *record, error) {
		got, err := s.mem.UpdateSession(ctx, id, fn)
		return got, &record{Op: opSession, Session: &got}, err
	})
}

// GetSession implements rooms.SessionStore.
func (s *Store) GetSession(ctx context.Context, id string) (rooms.Session, error) {
	return s.mem.GetSession(ctx, id)
}

// ListSessions implements rooms.SessionStore.
func (s *Store) ListSessions(ctx context.Context, f rooms.SessionFilter) ([]rooms.Session, error) {
	return s.mem.ListSessions(ctx, f)
}

// CreateInvitation implements rooms.InvitationStore.
func (s *Store) CreateInvitation(ctx context.Context, inv rooms.Invitation) (rooms.Invitation, error) {
	return change(ctx, s, func() (rooms.Invitation, *record, error) {
		got, err := s.mem.CreateInvitation(ctx, inv)
		return got, &record{Op: opInvitations, Invitations: []rooms.Invitation{got}}, err
	})
}

// RevokeInvitation implements rooms.InvitationStore.
func (s *Store) RevokeInvitation(ctx context.Context, id string, at time.Time) (rooms.Invitation, error) {
	return change(ctx, s, func() (rooms.Invitation, *record, error) {
		got, err := s.mem.RevokeInvitation(ctx, id, at)
		return got, &record{Op: opInvitations, Invitations: []rooms.Invitation{got}}, err
	})
}

// RevokeUnitInvitations implements rooms.InvitationStore. The revoked
// invitations go into one record, so a crash keeps all or none of them.
func (s *Store) RevokeUnitInvitations(ctx context.Context, sessionID, unitCode string, at time.Time) (int, error) {
	return change(ctx, s, func() (int, *record, error) {
		n, err := s.mem.RevokeUnitInvitations(ctx, sessionID, unitCode, at)
		if err != nil || n == 0 {
			return n, nil, err
		}
		invs, err := s.mem.ListInvitations(ctx, sessionID)
		if err != nil {
			return 0, nil, err
		}
		rec := &record{Op: opInvitations}
		for _, inv := range invs {
			if inv.UnitCode == unitCode && inv.Revoked() {
				rec.Invitations = append(rec.Invitations, inv)
			}
		}
		return n, rec, nil
	})
}

// GetInvitation implements rooms.InvitationStore.
func (s *Store) GetInvitation(ctx context.Context, id string) (rooms.Invitation, error) {
	return s.mem.GetInvitation(ctx, id)
}

// ListInvitations implements rooms.InvitationStore.
func (s *Store) ListInvitations(ctx context.Context, sessionID string) ([]rooms.Invitation, error) {
	return s.mem.ListInvitations(ctx, sessionID)
}

// UpsertParticipant implements rooms.ParticipantStore. The record carries
// the expiry the join gave, which is the liveness a restart restores.
func (s *Store) UpsertParticipant(ctx context.Context, p rooms.Participant, ttl time.Duration) (rooms.Participant, error) {
	return change(ctx, s, func() (rooms.Participant, *record, error) {
		got, err := s.mem.UpsertParticipant(ctx, p, ttl)
		// The memory store marks the participant seen at the instant it
		// starts the TTL, so LastSeen+ttl is its expiry.
		return got, &record{Op: opParticipant, Participant: &got, Expires: got.LastSeen.Add(ttl)}, err
	})
}

// UpdateParticipant implements rooms.ParticipantStore.
func (s *Store) UpdateParticipant(ctx context.Context, sessionID, id string, fn func(*rooms.Participant) error) (rooms.Participant, error) {
	return change(ctx, s, func() (rooms.Participant, *record, error) {
		got, err := s.mem.UpdateParticipant(ctx, sessionID, id, fn)
		return got, &record{Op: opParticipant, Participant: &got}, err
	})
}

// LeaveParticipant implements rooms.ParticipantStore.
func (s *Store) LeaveParticipant(ctx context.Context, sessionID, id string, at time.Time) (rooms.Participant, error) {
	return change(ctx, s, func() (rooms.Participant, *record, error) {
		got, err := s.mem.LeaveParticipant(ctx, sessionID, id, at)
		return got, &record{Op: opParticipant, Participant: &got}, err
	})
}

// Heartbeat implements rooms.ParticipantStore. It is not journaled (see the
// package documentation): an fsync per heartbeat would cost more than the
// liveness it saves, which a restart ends anyway.
func (s *Store) Heartbeat(ctx context.Context, sessionID, id string, ttl time.Duration) error {
	return s.mem.Heartbeat(ctx, sessionID, id, ttl)
}

// GetParticipant implements rooms.ParticipantStore.
func (s *Store) GetParticipant(ctx context.Context, sessionID, id string) (rooms.Participant, error) {
	return s.mem.GetParticipant(ctx, sessionID, id)
}

// ListParticipants implements rooms.ParticipantStore.
func (s *Store) ListParticipants(ctx context.Context, sessionID string) ([]rooms.Participant, error) {
	return s.mem.ListParticipants(ctx, sessionID)
}

// ListLive implements rooms.ParticipantStore.
func (s *Store) ListLive(ctx context.Context, sessionID string) ([]rooms.Participant, error) {
	return s.mem.ListLive(ctx, sessionID)
}

// AppendEvent implements rooms.EventLog. A repeated append (same event ID)
// is journaled again and ignored on replay; it is rare (retries) and
// telling it apart would need another lookup on every append.
func (s *Store) AppendEvent(ctx context.Context, e rooms.Event) (rooms.Event, error) {
	return change(ctx, s, func() (rooms.Event, *record, error) {
		got, err := s.mem.AppendEvent(ctx, e)
		return got, &record{Op: opEvent, Event: &got}, err
	})
}

// ListEvents implements rooms.EventLog.
func (s *Store) ListEvents(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]rooms.Event, error) {
	return s.mem.ListEvents(ctx, sessionID, afterSeq, limit)
}

// CreateAccount implements rooms.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a rooms.Account) (rooms.Account, error) {
	return change(ctx, s, func() (rooms.Account, *record, error) {
		got, err := s.mem.CreateAccount(ctx, a)
		return got, &record{Op: opAccount, Account: &got}, err
	})
}

// UpdateAccount implements rooms.AccountStore.
func (s *Store) UpdateAccount(ctx context.Context, username string, fn func(*rooms.Account) error) (rooms.Account, error) {
	return change(ctx, s, func() (rooms.Account, *record, error) {
		got, err := s.mem.UpdateAccount(ctx, username, fn)
		return got, &record{Op: opAccount, Account: &got}, err
	})
}

// GetAccount implements rooms.AccountStore.
func (s *Store) GetAccount(ctx context.Context, username string) (rooms.Account, error) {
	return s.mem.GetAccount(ctx, username)
}

// GetAccountByID implements rooms.AccountStore.
func (s *Store) GetAccountByID(ctx context.Context, id string) (rooms.Account, error) {
	return s.mem.GetAccountByID(ctx, id)
}

// ListAccounts implements rooms.AccountStore.
func (s *Store) ListAccounts(ctx context.Context) ([]rooms.Account, error) {
	return s.mem.ListAccounts(ctx)
}
