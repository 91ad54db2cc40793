package rooms

import (
	"slices"
	"time"
)

// DefaultGrace is how long after the start a unit may arrive and still count
// as on time.
const DefaultGrace = 5 * time.Minute

// AttendanceStatus is a unit's attendance verdict.
type AttendanceStatus string

// Attendance verdicts.
const (
	AttendanceOnTime  AttendanceStatus = "on_time"
	AttendanceLate    AttendanceStatus = "late"
	AttendanceAbsent  AttendanceStatus = "absent"
	AttendancePending AttendanceStatus = "pending" // not arrived, but may still be on time
)

// UnitAttendance is one invited unit's line in the report.
type UnitAttendance struct {
	Unit   Unit             `json:"unit"`
	Status AttendanceStatus `json:"status"`
	// FirstArrival is when the unit first showed up, in the lobby or in the
	// call.
	FirstArrival time.Time `json:"firstArrival,omitzero"`
	// Late is FirstArrival minus the reference start when Status is late.
	Late time.Duration `json:"late"`
	// Present is how long at least one participant of the unit was in the
	// call while the session was live.
	Present time.Duration `json:"present"`
	// Reconnects counts the times the unit came back after all its
	// participants had left (a dropped county network, typically).
	Reconnects int `json:"reconnects"`
	// Removed is set when the supervisor removed one of its participants.
	Removed bool `json:"removed"`
	// Connected is set when the unit is in the call at the end of the
	// report's period.
	Connected bool `json:"connected"`
}

// AttendanceReport is the attendance of every invited unit of a session.
type AttendanceReport struct {
	SessionID string `json:"sessionId"`
	// Reference is the start lateness is measured from: the scheduled start,
	// or the actual start when the supervisor started later (a unit waiting
	// before the call began held nothing up).
	Reference time.Time `json:"reference"`
	// Until is the end of the measured period: the session's end, or now
	// while it runs.
	Until time.Time        `json:"until"`
	Grace time.Duration    `json:"grace"`
	Units []UnitAttendance `json:"units"`
}

// Attendance computes the attendance report of s from its event log at time
// now. Arrival is the first lobby_enter, admit or join event of a unit;
// presence runs from join or admit to leave, remove or session_end, and is
// counted only inside the live period [StartedAt, EndedAt or now]. Events are
// read in time order (stable for equal times), so events written late after a
// store outage still count where they happened. grace <= 0 means
// DefaultGrace. Units are reported in the order of s.InvitedUnits; events of
// units no longer invited are ignored.
func Attendance(s Session, events []Event, now time.Time, grace time.Duration) AttendanceReport {
	if grace <= 0 {
		grace = DefaultGrace
	}
	ref := s.ScheduledStart
	if s.StartedAt.After(ref) {
		ref = s.StartedAt
	}
	until := now
	if !s.EndedAt.IsZero() {
		until = s.EndedAt
	}
	live := s.StartedAt
	if live.IsZero() {
		// Never went live: nobody was present in a call, but arrival still
		// counts.
		live = until
	}

	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })

	units := make(map[string]*unitTrack, len(s.InvitedUnits))
	for _, u := range s.InvitedUnits {
		units[u.Code] = &unitTrack{}
	}
	unitOf := make(map[string]string) // participant ID -> unit code
	in := make(map[string]bool)       // participant ID -> in the call

	for _, e := range evs {
		if e.Type == EventSessionEnd {
			for pid, ok := range in {
				if ok {
					units[unitOf[pid]].leave(e.Time, live, until)
				}
			}
			clear(in)
			continue
		}
		code := e.Data[DataUnit]
		if code == "" {
			code = unitOf[e.Subject]
		}
		u := units[code]
		if u == nil || e.Subject == "" {
			continue
		}
		unitOf[e.Subject] = code
		switch e.Type {
		case EventLobbyEnter:
			u.arrive(e.Time)
		case EventJoin, EventAdmit:
			u.arrive(e.Time)
			if !in[e.Subject] {
				in[e.Subject] = true
				u.join(e.Time)
			}
		case EventLeave, EventRemove:
			if e.Type == EventRemove {
				u.removed = true
			}
			if in[e.Subject] {
				in[e.Subject] = false
				u.leave(e.Time, live, until)
			}
		}
	}

	r := AttendanceReport{SessionID: s.ID, Reference: ref, Until: until, Grace: grace}
	for _, unit := range s.InvitedUnits {
		u := units[unit.Code]
		line := UnitAttendance{
			Unit:         unit,
			FirstArrival: u.arrival,
			Removed:      u.removed,
			Connected:    u.inCall > 0 && s.EndedAt.IsZero(),
		}
		if u.inCall > 0 {
			u.present += overlap(u.since, until, live, until)
		}
		line.Present = u.present
		line.Reconnects = max(u.segments-1, 0)
		switch {
		case u.arrival.IsZero() && !s.Status.Final() && now.Before(ref.Add(grace)):
			line.Status = AttendancePending
		case u.arrival.IsZero():
			line.Status = AttendanceAbsent
		case !u.arrival.After(ref.Add(grace)):
			line.Status = AttendanceOnTime
		default:
			line.Status = AttendanceLate
			line.Late = u.arrival.Sub(ref)
		}
		r.Units = append(r.Units, line)
	}
	return r
}

// unitTrack accumulates one unit's presence while events are replayed.
type unitTrack struct {
	arrival  time.Time
	inCall   int // participants of the unit in the call
	since    time.Time
	present  time.Duration
	segments int
	removed  bool
}

func (u *unitTrack) arrive(t time.Time) {
	if u.arrival.IsZero() || t.Before(u.arrival) {
		u.arrival = t
	}
}

func (u *unitTrack) join(t time.Time) {
	if u.inCall == 0 {
		u.since = t
		u.segments++
	}
	u.inCall++
}

func (u *unitTrack) leave(t, from, to time.Time) {
	u.inCall--
	if u.inCall == 0 {
		u.present += overlap(u.since, t, from, to)
	}
}

// overlap is the length of [a, b) inside [from, to).
func overlap(a, b, from, to time.Time) time.Duration {
	if a.Before(from) {
		a = from
	}
	if b.After(to) {
		b = to
	}
	if !b.After(a) {
		return 0
	}
	return b.Sub(a)
}
