package memstore

import (
	"context"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// UpsertParticipant implements rooms.ParticipantStore.
func (m *Store) UpsertParticipant(_ context.Context, p rooms.Participant, ttl time.Duration) (rooms.Participant, error) {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[p.SessionID]; !ok {
		return rooms.Participant{}, notFound("session", p.SessionID)
	}
	ps := m.participants[p.SessionID]
	var cur *rooms.Participant
	if e, ok := ps[p.ID]; ok {
		cur = &e.p
	}
	next, err := rooms.ApplyUpsert(cur, p, now)
	if err != nil {
		return rooms.Participant{}, err
	}
	if ps == nil {
		ps = make(map[string]*participant)
		m.participants[p.SessionID] = ps
	}
	ps[p.ID] = &participant{p: next, expires: now.Add(ttl)}
	return next, nil
}

// UpdateParticipant implements rooms.ParticipantStore.
func (m *Store) UpdateParticipant(_ context.Context, sessionID, id string, fn func(*rooms.Participant) error) (rooms.Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.participants[sessionID][id]
	if !ok {
		return rooms.Participant{}, notFound("participant", id)
	}
	next, err := rooms.ApplyParticipantUpdate(e.p, fn)
	if err != nil {
		return rooms.Participant{}, err
	}
	e.p = next
	return next, nil
}

// Heartbeat implements rooms.ParticipantStore.
func (m *Store) Heartbeat(_ context.Context, sessionID, id string, ttl time.Duration) error {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.participants[sessionID][id]
	if !ok || !e.p.LeftAt.IsZero() {
		return notFound("participant", id)
	}
	e.p.LastSeen = now
	e.expires = now.Add(ttl)
	return nil
}

// LeaveParticipant implements rooms.ParticipantStore.
func (m *Store) LeaveParticipant(_ context.Context, sessionID, id string, at time.Time) (rooms.Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.participants[sessionID][id]
	if !ok {
		return rooms.Participant{}, notFound("participant", id)
	}
	e.p = rooms.ApplyLeave(e.p, at)
	return e.p, nil
}

// GetParticipant implements rooms.ParticipantStore.
func (m *Store) GetParticipant(_ context.Context, sessionID, id string) (rooms.Participant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.participants[sessionID][id]
	if !ok {
		return rooms.Participant{}, notFound("participant", id)
	}
	return e.p, nil
}

// ListParticipants implements rooms.ParticipantStore.
func (m *Store) ListParticipants(_ context.Context, sessionID string) ([]rooms.Participant, error) {
	return m.list(sessionID, false), nil
}

// ListLive implements rooms.ParticipantStore.
func (m *Store) ListLive(_ context.Context, sessionID string) ([]rooms.Participant, error) {
	return m.list(sessionID, true), nil
}

func (m *Store) list(sessionID string, liveOnly bool) []rooms.Participant {
	now := m.clock.Now()
	m.mu.Lock()
	var out []rooms.Participant
	for _, e := range m.participants[sessionID] {
		if liveOnly && (!e.p.LeftAt.IsZero() || !now.Before(e.expires)) {
			continue
		}
		out = append(out, e.p)
	}
	m.mu.Unlock()
	rooms.SortParticipants(out)
	return out
}
