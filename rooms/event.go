package rooms

import (
	"fmt"
	"maps"
	"time"
)

// EventType names what happened. The set is open: new types may be added
// without touching the stores.
type EventType string

// Event types.
const (
	EventSessionStart EventType = "session_start"
	EventSessionEnd   EventType = "session_end"
	EventLobbyOpen    EventType = "lobby_open"
	EventLobbyEnter   EventType = "lobby_enter" // a participant waits in the lobby
	EventAdmit        EventType = "admit"       // the supervisor let a waiting participant in
	EventJoin         EventType = "join"        // a participant entered the call
	EventLeave        EventType = "leave"
	EventRemove       EventType = "remove" // the supervisor removed a participant
	EventMute         EventType = "mute"
	EventUnmute       EventType = "unmute"
	EventLock         EventType = "lock"
	EventUnlock       EventType = "unlock"
	EventChat         EventType = "chat"
	EventRecordingOn  EventType = "recording_on"
	EventRecordingOff EventType = "recording_off"
	EventInvite       EventType = "invite"
	EventRevoke       EventType = "revoke"
)

// Keys of Event.Data with a fixed meaning.
const (
	DataUnit   = "unit"   // unit code of the subject participant
	DataRole   = "role"   // role of the subject participant
	DataName   = "name"   // display name of the subject participant
	DataText   = "text"   // chat message
	DataReason = "reason" // why (leave: "timeout", "closed"...)
	DataKind   = "kind"   // mute: "audio" or "video"
)

// Limits that keep one event small.
const (
	MaxEventData      = 32
	MaxEventValueLen  = 4096
	MaxEventFieldLen  = 128
	MaxChatMessageLen = 2000
)

// Event is one entry of a session's append-only log.
type Event struct {
	// Seq is the position in the session's log, 1, 2, 3..., assigned by the
	// store when the event is durably written. It is 0 on an event returned
	// by AppendEvent while the store is writing behind (backend down).
	Seq int64 `json:"seq"`
	// ID is unique per event and chosen by the writer (NewID when empty), so
	// that writing the same event twice (a retry after an ambiguous failure)
	// stores it once.
	ID        string    `json:"id"`
	SessionID string    `json:"sessionId"`
	Time      time.Time `json:"time"`
	// Actor is who did it: an account ID, a participant ID, or "system".
	Actor string    `json:"actor"`
	Type  EventType `json:"type"`
	// Subject is what it was done to, usually a participant ID.
	Subject string            `json:"subject,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
}

// Validate checks the fields a store must never accept wrong.
func (e Event) Validate() error {
	switch {
	case e.ID == "" || e.SessionID == "":
		return fmt.Errorf("%w: event and session id are required", ErrInvalid)
	case e.Time.IsZero():
		return fmt.Errorf("%w: event time is required", ErrInvalid)
	case e.Type == "" || len(e.Type) > MaxEventFieldLen:
		return fmt.Errorf("%w: event type must have 1 to %d bytes", ErrInvalid, MaxEventFieldLen)
	case len(e.Actor) > MaxEventFieldLen || len(e.Subject) > MaxEventFieldLen:
		return fmt.Errorf("%w: actor or subject longer than %d bytes", ErrInvalid, MaxEventFieldLen)
	case len(e.Data) > MaxEventData:
		return fmt.Errorf("%w: more than %d data fields", ErrInvalid, MaxEventData)
	}
	for k, v := range e.Data {
		if len(k) > MaxEventFieldLen || len(v) > MaxEventValueLen {
			return fmt.Errorf("%w: data field %.20q too long", ErrInvalid, k)
		}
	}
	return nil
}

// Clone returns a copy that shares no map with e.
func (e Event) Clone() Event {
	e.Data = maps.Clone(e.Data)
	return e
}

// ParticipantEvent builds an event about participant p with the data keys
// Attendance reads.
func ParticipantEvent(typ EventType, p Participant, actor string, at time.Time) Event {
	data := map[string]string{DataRole: string(p.Role), DataName: p.Name}
	if p.UnitCode != "" {
		data[DataUnit] = p.UnitCode
	}
	return Event{
		ID:        NewID(),
		SessionID: p.SessionID,
		Time:      at,
		Actor:     actor,
		Type:      typ,
		Subject:   p.ID,
		Data:      data,
	}
}
