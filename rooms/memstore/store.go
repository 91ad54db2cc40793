// Package memstore is the in-memory rooms.Store: the embedded default for a
// single node. It keeps nothing across restarts.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Store is an in-memory rooms.Store. One mutex guards everything: every
// operation is a few map accesses, so contention is not worth finer locks.
type Store struct {
	clock rooms.Clock

	mu           sync.Mutex
	sessions     map[string]rooms.Session
	invitations  map[string]rooms.Invitation
	invOfSession map[string][]string
	participants map[string]map[string]*participant // session ID -> participant ID
	events       map[string][]rooms.Event
	eventSeq     map[string]map[string]int64 // session ID -> event ID -> Seq
	accounts     map[string]rooms.Account    // by username
	accountIDs   map[string]string           // account ID -> username
}

type participant struct {
	p       rooms.Participant
	expires time.Time
}

var _ rooms.Store = (*Store)(nil)

// New returns an empty store. A nil clock means the system clock; the clock
// decides heartbeat expiry.
func New(clock rooms.Clock) *Store {
	if clock == nil {
		clock = rooms.SystemClock{}
	}
	return &Store{
		clock:        clock,
		sessions:     make(map[string]rooms.Session),
		invitations:  make(map[string]rooms.Invitation),
		invOfSession: make(map[string][]string),
		participants: make(map[string]map[string]*participant),
		events:       make(map[string][]rooms.Event),
		eventSeq:     make(map[string]map[string]int64),
		accounts:     make(map[string]rooms.Account),
		accountIDs:   make(map[string]string),
	}
}

// Healthy is always true: memory does not go away.
func (m *Store) Healthy() bool { return true }

// Close does nothing.
func (m *Store) Close() error { return nil }

func notFound(what, id string) error { return fmt.Errorf("%w: %s %s", rooms.ErrNotFound, what, id) }

// CreateSession implements rooms.SessionStore.
func (m *Store) CreateSession(_ context.Context, s rooms.Session) (rooms.Session, error) {
	s, err := rooms.PrepareSession(s, m.clock.Now())
	if err != nil {
		return rooms.Session{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return rooms.Session{}, fmt.Errorf("%w: session %s", rooms.ErrExists, s.ID)
	}
	m.sessions[s.ID] = s
	return s.Clone(), nil
}

// GetSession implements rooms.SessionStore.
func (m *Store) GetSession(_ context.Context, id string) (rooms.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return rooms.Session{}, notFound("session", id)
	}
	return s.Clone(), nil
}

// UpdateSession implements rooms.SessionStore.
func (m *Store) UpdateSession(_ context.Context, id string, fn func(*rooms.Session) error) (rooms.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.sessions[id]
	if !ok {
		return rooms.Session{}, notFound("session", id)
	}
	next, err := rooms.ApplySessionUpdate(cur, fn, m.clock.Now())
	if err != nil {
		return rooms.Session{}, err
	}
	m.sessions[id] = next
	return next.Clone(), nil
}

// ListSessions implements rooms.SessionStore.
func (m *Store) ListSessions(_ context.Context, f rooms.SessionFilter) ([]rooms.Session, error) {
	m.mu.Lock()
	var out []rooms.Session
	for _, s := range m.sessions {
		if f.Match(s) {
			out = append(out, s.Clone())
		}
	}
	m.mu.Unlock()
	rooms.SortSessions(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// CreateInvitation implements rooms.InvitationStore.
func (m *Store) CreateInvitation(_ context.Context, inv rooms.Invitation) (rooms.Invitation, error) {
	inv, err := rooms.PrepareInvitation(inv, m.clock.Now())
	if err != nil {
		return rooms.Invitation{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[inv.SessionID]; !ok {
		return rooms.Invitation{}, notFound("session", inv.SessionID)
	}
	if _, ok := m.invitations[inv.ID]; ok {
		return rooms.Invitation{}, fmt.Errorf("%w: invitation %s", rooms.ErrExists, inv.ID)
	}
	m.invitations[inv.ID] = inv
	m.invOfSession[inv.SessionID] = append(m.invOfSession[inv.SessionID], inv.ID)
	return inv, nil
}

// GetInvitation implements rooms.InvitationStore.
func (m *Store) GetInvitation(_ context.Context, id string) (rooms.Invitation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invitations[id]
	if !ok {
		return rooms.Invitation{}, notFound("invitation", id)
	}
	return inv, nil
}

// ListInvitations implements rooms.InvitationStore.
func (m *Store) ListInvitations(_ context.Context, sessionID string) ([]rooms.Invitation, error) {
	m.mu.Lock()
	var out []rooms.Invitation
	for _, id := range m.invOfSession[sessionID] {
		out = append(out, m.invitations[id])
	}
	m.mu.Unlock()
	rooms.SortInvitations(out)
	return out, nil
}

// RevokeInvitation implements rooms.InvitationStore.
func (m *Store) RevokeInvitation(_ context.Context, id string, at time.Time) (rooms.Invitation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invitations[id]
	if !ok {
		return rooms.Invitation{}, notFound("invitation", id)
	}
	if !inv.Revoked() {
		inv.RevokedAt = at
		m.invitations[id] = inv
	}
	return inv, nil
}

// RevokeUnitInvitations implements rooms.InvitationStore.
func (m *Store) RevokeUnitInvitations(_ context.Context, sessionID, unitCode string, at time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, id := range m.invOfSession[sessionID] {
		inv := m.invitations[id]
		if inv.UnitCode == unitCode && !inv.Revoked() {
			inv.RevokedAt = at
			m.invitations[id] = inv
			n++
		}
	}
	return n, nil
}

// AppendEvent implements rooms.EventLog.
func (m *Store) AppendEvent(_ context.Context, e rooms.Event) (rooms.Event, error) {
	e, err := rooms.PrepareEvent(e, m.clock.Now())
	if err != nil {
		return rooms.Event{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[e.SessionID]; !ok {
		return rooms.Event{}, notFound("session", e.SessionID)
	}
	ids := m.eventSeq[e.SessionID]
	if ids == nil {
		ids = make(map[string]int64)
		m.eventSeq[e.SessionID] = ids
	}
	if seq, ok := ids[e.ID]; ok {
		e.Seq = seq
		return e, nil
	}
	e.Seq = int64(len(m.events[e.SessionID]) + 1)
	ids[e.ID] = e.Seq
	m.events[e.SessionID] = append(m.events[e.SessionID], e)
	return e.Clone(), nil
}

// ListEvents implements rooms.EventLog.
func (m *Store) ListEvents(_ context.Context, sessionID string, afterSeq int64, limit int) ([]rooms.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := m.events[sessionID]
	// Seq n is at index n-1.
	from := int(min(max(afterSeq, 0), int64(len(evs))))
	evs = evs[from:]
	if limit > 0 && len(evs) > limit {
		evs = evs[:limit]
	}
	out := make([]rooms.Event, len(evs))
	for i, e := range evs {
		out[i] = e.Clone()
	}
	return out, nil
}

// CreateAccount implements rooms.AccountStore.
func (m *Store) CreateAccount(_ context.Context, a rooms.Account) (rooms.Account, error) {
	a, err := rooms.PrepareAccount(a, m.clock.Now())
	if err != nil {
		return rooms.Account{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.accounts[a.Username]; ok {
		return rooms.Account{}, fmt.Errorf("%w: account %s", rooms.ErrExists, a.Username)
	}
	if _, ok := m.accountIDs[a.ID]; ok {
		return rooms.Account{}, fmt.Errorf("%w: account id %s", rooms.ErrExists, a.ID)
	}
	m.accounts[a.Username] = a
	m.accountIDs[a.ID] = a.Username
	return a, nil
}

// GetAccount implements rooms.AccountStore.
func (m *Store) GetAccount(_ context.Context, username string) (rooms.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accounts[username]
	if !ok {
		return rooms.Account{}, notFound("account", username)
	}
	return a, nil
}

// GetAccountByID implements rooms.AccountStore.
func (m *Store) GetAccountByID(_ context.Context, id string) (rooms.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.accountIDs[id]
	if !ok {
		return rooms.Account{}, notFound("account id", id)
	}
	return m.accounts[u], nil
}

// UpdateAccount implements rooms.AccountStore.
func (m *Store) UpdateAccount(_ context.Context, username string, fn func(*rooms.Account) error) (rooms.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.accounts[username]
	if !ok {
		return rooms.Account{}, notFound("account", username)
	}
	next, err := rooms.ApplyAccountUpdate(cur, fn, m.clock.Now())
	if err != nil {
		return rooms.Account{}, err
	}
	m.accounts[username] = next
	return next, nil
}

// ListAccounts implements rooms.AccountStore.
func (m *Store) ListAccounts(_ context.Context) ([]rooms.Account, error) {
	m.mu.Lock()
	out := make([]rooms.Account, 0, len(m.accounts))
	for _, a := range m.accounts {
		out = append(out, a)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b rooms.Account) int {
		switch {
		case a.Username < b.Username:
			return -1
		case a.Username > b.Username:
			return 1
		}
		return 0
	})
	return out, nil
}
