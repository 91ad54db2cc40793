package rooms

import (
	"testing"
	"time"
)

func TestAttendance(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	units := []Unit{{Code: "A", Name: "甲县"}, {Code: "B", Name: "乙县"}, {Code: "C", Name: "丙县"}}
	sess := func(started, ended time.Time, st Status) Session {
		s := NewSession("t", "c", "sup", t0, t0.Add(time.Hour), units, t0.Add(-time.Hour))
		s.StartedAt, s.EndedAt, s.Status = started, ended, st
		return s
	}
	ev := func(typ EventType, pid, unit string, at time.Time) Event {
		e := Event{Type: typ, Subject: pid, Time: at}
		if unit != "" {
			e.Data = map[string]string{DataUnit: unit}
		}
		return e
	}
	type want struct {
		status     AttendanceStatus
		late       time.Duration
		present    time.Duration
		reconnects int
		removed    bool
		connected  bool
	}
	cases := []struct {
		name   string
		s      Session
		events []Event
		now    time.Time
		grace  time.Duration
		want   map[string]want
	}{
		{
			name: "on time, late, absent after the end",
			s:    sess(t0, at(60), StatusEnded),
			events: []Event{
				ev(EventJoin, "a1", "A", at(-10)),
				ev(EventJoin, "b1", "B", at(12)),
				ev(EventLeave, "a1", "", at(50)),
				ev(EventSessionEnd, "", "", at(60)),
			},
			now: at(90),
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 50 * time.Minute},
				"B": {status: AttendanceLate, late: 12 * time.Minute, present: 48 * time.Minute},
				"C": {status: AttendanceAbsent},
			},
		},
		{
			name: "grace edge is inclusive and configurable",
			s:    sess(t0, at(60), StatusEnded),
			events: []Event{
				ev(EventJoin, "a1", "A", at(5)),
				ev(EventJoin, "b1", "B", at(5.01)),
				ev(EventJoin, "c1", "C", at(2.5)),
			},
			now:   at(70),
			grace: 0, // default 5 min
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 55 * time.Minute},
				"B": {status: AttendanceLate, late: time.Duration(5.01 * float64(time.Minute)), present: at(60).Sub(at(5.01))},
				"C": {status: AttendanceOnTime, present: 57*time.Minute + 30*time.Second},
			},
		},
		{
			name: "custom grace of 2 minutes",
			s:    sess(t0, at(60), StatusEnded),
			events: []Event{
				ev(EventJoin, "c1", "C", at(2.5)),
			},
			now:   at(70),
			grace: 2 * time.Minute,
			want: map[string]want{
				"A": {status: AttendanceAbsent},
				"B": {status: AttendanceAbsent},
				"C": {status: AttendanceLate, late: 150 * time.Second, present: 57*time.Minute + 30*time.Second},
			},
		},
		{
			name: "lobby arrival counts, presence only from admission",
			s:    sess(at(3), at(60), StatusEnded),
			events: []Event{
				ev(EventLobbyEnter, "a1", "A", at(-5)),
				ev(EventAdmit, "a1", "A", at(10)),
			},
			now: at(60),
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 50 * time.Minute},
				"B": {status: AttendanceAbsent},
				"C": {status: AttendanceAbsent},
			},
		},
		{
			name: "late start moves the reference",
			s:    sess(at(20), at(60), StatusEnded),
			events: []Event{
				ev(EventJoin, "a1", "A", at(15)),
				ev(EventJoin, "b1", "B", at(26)),
			},
			now: at(60),
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 40 * time.Minute},
				"B": {status: AttendanceLate, late: 6 * time.Minute, present: 34 * time.Minute},
				"C": {status: AttendanceAbsent},
			},
		},
		{
			name: "reconnects, two devices, removal, live session",
			s:    sess(t0, time.Time{}, StatusLive),
			events: []Event{
				ev(EventJoin, "a1", "A", at(1)),
				ev(EventLeave, "a1", "", at(10)), // dropped
				ev(EventJoin, "a2", "A", at(12)), // came back on a new connection
				ev(EventJoin, "a3", "A", at(13)), // a second device: no gap, no reconnect
				ev(EventLeave, "a2", "A", at(20)),
				ev(EventLeave, "a3", "A", at(21)),
				ev(EventJoin, "a4", "A", at(25)),
				ev(EventJoin, "b1", "B", at(2)),
				ev(EventRemove, "b1", "", at(30)),
				ev(EventJoin, "b1", "B", at(31)), // duplicate join of the same participant
				ev(EventJoin, "b1", "B", at(32)),
			},
			now: at(40),
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 9*time.Minute + 9*time.Minute + 15*time.Minute, reconnects: 2, connected: true},
				"B": {status: AttendanceOnTime, present: 28*time.Minute + 9*time.Minute, reconnects: 1, removed: true, connected: true},
				"C": {status: AttendanceAbsent},
			},
		},
		{
			name: "not yet arrived inside the grace period is pending",
			s:    sess(t0, time.Time{}, StatusLive),
			events: []Event{
				ev(EventJoin, "a1", "A", at(-1)),
			},
			now: at(3),
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 3 * time.Minute, connected: true},
				"B": {status: AttendancePending},
				"C": {status: AttendancePending},
			},
		},
		{
			name: "events out of order (written after an outage) and unknown units",
			s:    sess(t0, at(30), StatusEnded),
			events: []Event{
				ev(EventLeave, "a1", "A", at(20)),
				ev(EventJoin, "a1", "A", at(4)),
				ev(EventJoin, "x1", "X", at(1)),
				ev(EventJoin, "", "B", at(1)), // no subject: ignored
			},
			now: at(30),
			want: map[string]want{
				"A": {status: AttendanceOnTime, present: 16 * time.Minute},
				"B": {status: AttendanceAbsent},
				"C": {status: AttendanceAbsent},
			},
		},
		{
			name: "never started: arrivals count, presence is zero",
			s:    sess(time.Time{}, at(10), StatusCancelled),
			events: []Event{
				ev(EventLobbyEnter, "a1", "A", at(-2)),
			},
			now: at(20),
			want: map[string]want{
				"A": {status: AttendanceOnTime},
				"B": {status: AttendanceAbsent},
				"C": {status: AttendanceAbsent},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Attendance(c.s, c.events, c.now, c.grace)
			if len(r.Units) != len(units) {
				t.Fatalf("%d units in report", len(r.Units))
			}
			for i, u := range r.Units {
				if u.Unit != units[i] {
					t.Fatalf("unit %d is %v, want %v", i, u.Unit, units[i])
				}
				w := c.want[u.Unit.Code]
				got := want{u.Status, u.Late, u.Present, u.Reconnects, u.Removed, u.Connected}
				if got != w {
					t.Errorf("unit %s: got %+v, want %+v", u.Unit.Code, got, w)
				}
			}
		})
	}
}
