package rooms

import (
	"context"
	"time"
)

// Store is everything ducha keeps about sessions. It is made of smaller
// interfaces so a consumer can ask for only what it uses.
//
// Implementations return copies: mutating a returned value never changes the
// store. Errors wrap the sentinels of this package (ErrNotFound, ErrExists,
// ErrInvalid, ErrConflict, ErrUnavailable...).
type Store interface {
	SessionStore
	InvitationStore
	ParticipantStore
	EventLog
	AccountStore
	// Healthy reports whether every accepted write has reached the backing
	// store. The memory store is always healthy.
	Healthy() bool
	// Close stops background work. It reports an error when accepted writes
	// could not be persisted.
	Close() error
}

// SessionStore keeps sessions.
type SessionStore interface {
	// CreateSession stores a new session. An empty ID is filled with NewID,
	// zero CreatedAt/UpdatedAt with the store clock; an empty Status becomes
	// StatusScheduled. Returns ErrExists if the ID is taken.
	CreateSession(ctx context.Context, s Session) (Session, error)
	GetSession(ctx context.Context, id string) (Session, error)
	// UpdateSession applies fn to the current session and stores the result
	// atomically, retrying fn when another writer got there first. If fn
	// returns an error nothing is stored and the error is returned. ID,
	// CreatedAt and Version are kept by the store; UpdatedAt is set to the
	// store clock when fn leaves it unchanged.
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (Session, error)
	// ListSessions returns the sessions matching f ordered by scheduled
	// start, then ID.
	ListSessions(ctx context.Context, f SessionFilter) ([]Session, error)
}

// InvitationStore keeps invitations.
type InvitationStore interface {
	// CreateInvitation stores inv; ErrNotFound if its session does not exist.
	CreateInvitation(ctx context.Context, inv Invitation) (Invitation, error)
	GetInvitation(ctx context.Context, id string) (Invitation, error)
	// ListInvitations returns a session's invitations ordered by creation.
	ListInvitations(ctx context.Context, sessionID string) ([]Invitation, error)
	// RevokeInvitation marks inv revoked at at; revoking twice keeps the
	// first time.
	RevokeInvitation(ctx context.Context, id string, at time.Time) (Invitation, error)
	// RevokeUnitInvitations revokes every invitation of a unit for a session
	// (the unit was removed) and returns how many were newly revoked.
	RevokeUnitInvitations(ctx context.Context, sessionID, unitCode string, at time.Time) (int, error)
}

// ParticipantStore keeps participants and their liveness.
type ParticipantStore interface {
	// UpsertParticipant creates or replaces p (keeping its Version
	// sequence), marks it seen now, clears LeftAt, and keeps it live for ttl.
	// The session must exist.
	UpsertParticipant(ctx context.Context, p Participant, ttl time.Duration) (Participant, error)
	// UpdateParticipant applies fn atomically like UpdateSession. It does not
	// refresh liveness.
	UpdateParticipant(ctx context.Context, sessionID, id string, fn func(*Participant) error) (Participant, error)
	// Heartbeat marks a participant seen now and keeps it live for ttl.
	// ErrNotFound if it does not exist or has left.
	Heartbeat(ctx context.Context, sessionID, id string, ttl time.Duration) error
	// LeaveParticipant records that p left at at; it is no longer live.
	LeaveParticipant(ctx context.Context, sessionID, id string, at time.Time) (Participant, error)
	GetParticipant(ctx context.Context, sessionID, id string) (Participant, error)
	// ListParticipants returns everyone who was ever in the session, ordered
	// by JoinedAt then ID.
	ListParticipants(ctx context.Context, sessionID string) ([]Participant, error)
	// ListLive returns participants that have not left and whose last
	// heartbeat is younger than its TTL, ordered by JoinedAt then ID.
	ListLive(ctx context.Context, sessionID string) ([]Participant, error)
}

// EventLog is the append-only log of a session.
type EventLog interface {
	// AppendEvent appends e to its session's log. An empty ID is filled with
	// NewID and a zero Time with the store clock. Appending an event whose
	// ID is already in the log stores nothing and returns the stored Seq.
	// The session must exist.
	AppendEvent(ctx context.Context, e Event) (Event, error)
	// ListEvents returns events with Seq > afterSeq in order, at most limit
	// of them (limit <= 0: all).
	ListEvents(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]Event, error)
}

// AccountStore keeps console accounts.
type AccountStore interface {
	// CreateAccount stores a; ErrExists if the username is taken.
	CreateAccount(ctx context.Context, a Account) (Account, error)
	GetAccount(ctx context.Context, username string) (Account, error)
	GetAccountByID(ctx context.Context, id string) (Account, error)
	// UpdateAccount applies fn atomically like UpdateSession; ID, Username
	// and CreatedAt cannot be changed.
	UpdateAccount(ctx context.Context, username string, fn func(*Account) error) (Account, error)
	// ListAccounts returns all accounts ordered by username.
	ListAccounts(ctx context.Context) ([]Account, error)
}
