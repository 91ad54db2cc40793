package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/rooms"
)

// StoreSessions answers the recorder's questions from the rooms store.
// Scheduled sessions are recorded while their Recording flag is on; ad-hoc
// rooms (no session in the store) are recorded when RecordAdhoc is set.
type StoreSessions struct {
	Store       rooms.Store
	RecordAdhoc bool
}

func (s StoreSessions) session(room string) (rooms.Session, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := s.Store.GetSession(ctx, room)
	return sess, err == nil
}

// ShouldRecord implements Sessions.
func (s StoreSessions) ShouldRecord(room string) bool {
	sess, ok := s.session(room)
	if !ok {
		return s.RecordAdhoc
	}
	return sess.Recording && !sess.Status.Final()
}

// Scheduled implements Sessions.
func (s StoreSessions) Scheduled(room string) bool {
	_, ok := s.session(room)
	return ok
}

// Manifest implements Sessions: the session's facts, its participants and
// its whole event log, which the manifest must carry.
func (s StoreSessions) Manifest(ctx context.Context, room, recordingID string, seen []evidence.Participant) (evidence.ManifestInput, error) {
	in := evidence.ManifestInput{Session: evidence.SessionFacts{ID: recordingID, Title: room}, Participants: seen}
	sess, err := s.Store.GetSession(ctx, room)
	if errors.Is(err, rooms.ErrNotFound) {
		return in, nil // ad-hoc room: what the recorder saw is all there is
	}
	if err != nil {
		return in, err
	}
	in.Session = evidence.SessionFacts{ID: recordingID, Title: sess.Title, CaseNumber: sess.CaseNumber,
		Supervisor: sess.Supervisor, Start: sess.StartedAt, End: sess.EndedAt}
	if in.Session.Start.IsZero() {
		in.Session.Start = sess.ScheduledStart
	}
	parts, err := s.Store.ListParticipants(ctx, room)
	if err != nil {
		return in, fmt.Errorf("recording: participants: %w", err)
	}
	in.Participants = in.Participants[:0]
	for _, p := range parts {
		in.Participants = append(in.Participants, evidence.Participant{ID: p.ID, Name: p.Name, Role: string(p.Role),
			Organization: p.UnitCode, Joined: p.JoinedAt, Left: p.LeftAt})
	}
	var events []rooms.Event
	for after := int64(0); ; {
		page, err := s.Store.ListEvents(ctx, room, after, 1000)
		if err != nil {
			return in, fmt.Errorf("recording: event log: %w", err)
		}
		events = append(events, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Seq
	}
	raw, err := json.Marshal(events)
	if err != nil {
		return in, err
	}
	in.Events = raw
	return in, nil
}
