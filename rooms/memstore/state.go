package memstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// The hooks in this file let a durable wrapper (rooms/filestore) save the
// store and rebuild it after a restart. They store values exactly as given,
// bypassing the defaults and version bumps of the rooms.Store methods,
// because a restored value must come back with the version and sequence it
// had. Ordinary code must use the rooms.Store methods.

// State is a deep copy of everything a Store holds.
type State struct {
	Sessions []rooms.Session
	// Invitations are in creation order within each session.
	Invitations  []rooms.Invitation
	Participants []SavedParticipant
	// Events are in Seq order within each session.
	Events   []rooms.Event
	Accounts []rooms.Account
}

// SavedParticipant is a participant with the time its liveness runs out.
type SavedParticipant struct {
	Participant rooms.Participant
	Expires     time.Time
}

// Export returns a deep copy of the whole store, taken atomically.
func (m *Store) Export() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st State
	for _, s := range m.sessions {
		st.Sessions = append(st.Sessions, s.Clone())
	}
	// Sorted so that two exports of the same state are byte-identical once
	// encoded, which keeps snapshots comparable.
	rooms.SortSessions(st.Sessions)
	for _, s := range st.Sessions {
		for _, id := range m.invOfSession[s.ID] {
			st.Invitations = append(st.Invitations, m.invitations[id])
		}
		var ps []SavedParticipant
		for _, e := range m.participants[s.ID] {
			ps = append(ps, SavedParticipant{Participant: e.p, Expires: e.expires})
		}
		slices.SortFunc(ps, func(a, b SavedParticipant) int {
			if c := a.Participant.JoinedAt.Compare(b.Participant.JoinedAt); c != 0 {
				return c
			}
			return compareStrings(a.Participant.ID, b.Participant.ID)
		})
		st.Participants = append(st.Participants, ps...)
		for _, e := range m.events[s.ID] {
			st.Events = append(st.Events, e.Clone())
		}
	}
	for _, a := range m.accounts {
		st.Accounts = append(st.Accounts, a)
	}
	slices.SortFunc(st.Accounts, func(a, b rooms.Account) int { return compareStrings(a.Username, b.Username) })
	return st
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// PutSession stores s as given, replacing any session with its ID.
func (m *Store) PutSession(s rooms.Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ID] = s.Clone()
}

// PutInvitation stores inv as given, replacing any invitation with its ID.
// A new invitation goes after the session's existing ones.
func (m *Store) PutInvitation(inv rooms.Invitation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.invitations[inv.ID]; !ok {
		m.invOfSession[inv.SessionID] = append(m.invOfSession[inv.SessionID], inv.ID)
	}
	m.invitations[inv.ID] = inv
}

// PutParticipant stores p as given with its liveness running out at
// expires. A zero expires keeps the expiry already stored for p (none for a
// new participant, which is then not live).
func (m *Store) PutParticipant(p rooms.Participant, expires time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.participants[p.SessionID]
	if ps == nil {
		ps = make(map[string]*participant)
		m.participants[p.SessionID] = ps
	}
	if cur, ok := ps[p.ID]; ok && expires.IsZero() {
		expires = cur.expires
	}
	ps[p.ID] = &participant{p: p, expires: expires}
}

// PutEvent appends e with the Seq it already has. An event whose ID is in
// the log is ignored; a Seq that is not the next one is refused with
// rooms.ErrInvalid, since the log must never have gaps.
func (m *Store) PutEvent(e rooms.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := m.eventSeq[e.SessionID]
	if ids == nil {
		ids = make(map[string]int64)
		m.eventSeq[e.SessionID] = ids
	}
	if _, ok := ids[e.ID]; ok {
		return nil
	}
	if want := int64(len(m.events[e.SessionID]) + 1); e.Seq != want {
		return fmt.Errorf("%w: event %s of session %s has seq %d, want %d", rooms.ErrInvalid, e.ID, e.SessionID, e.Seq, want)
	}
	ids[e.ID] = e.Seq
	m.events[e.SessionID] = append(m.events[e.SessionID], e.Clone())
	return nil
}

// PutAccount stores a as given, replacing the account with its username.
func (m *Store) PutAccount(a rooms.Account) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.accounts[a.Username]; ok && old.ID != a.ID {
		delete(m.accountIDs, old.ID)
	}
	m.accounts[a.Username] = a
	m.accountIDs[a.ID] = a.Username
}
