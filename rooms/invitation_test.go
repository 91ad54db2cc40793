package rooms

import (
	"errors"
	"testing"
	"time"
)

func TestCheckInvitation(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	base := NewSession("t", "c", "sup", start, end, []Unit{{Code: "A", Name: "甲县"}, {Code: "B", Name: "乙县"}}, start.Add(-24*time.Hour))
	inv, err := NewInvitation(base, "A", 0, start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !inv.ValidFrom.Equal(start) {
		t.Fatalf("early 0: valid from %v", inv.ValidFrom)
	}
	inv, err = NewInvitation(base, "A", DefaultEarlyWindow, start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !inv.ValidFrom.Equal(start.Add(-30*time.Minute)) || !inv.ValidUntil.Equal(end) {
		t.Fatalf("window %v..%v", inv.ValidFrom, inv.ValidUntil)
	}
	if _, err := NewInvitation(base, "Z", DefaultEarlyWindow, start); !errors.Is(err, ErrUnitNotInvited) {
		t.Fatalf("uninvited unit: %v", err)
	}

	with := func(mut func(*Session)) Session {
		s := base.Clone()
		mut(&s)
		return s
	}
	revoked := inv
	revoked.RevokedAt = start.Add(-time.Minute)
	other := inv
	other.SessionID = "other"

	cases := []struct {
		name string
		inv  Invitation
		s    Session
		now  time.Time
		want error
	}{
		{"too early", inv, base, start.Add(-31 * time.Minute), ErrNotYetValid},
		{"window opens", inv, base, start.Add(-30 * time.Minute), nil},
		{"at start", inv, base, start, nil},
		{"just before end", inv, base, end.Add(-time.Nanosecond), nil},
		{"at end", inv, base, end, ErrExpired},
		{"revoked", revoked, base, start, ErrRevoked},
		{"other session", other, base, start, ErrWrongSession},
		{"unit removed", inv, with(func(s *Session) { s.InvitedUnits = s.InvitedUnits[1:] }), start, ErrUnitNotInvited},
		{"ended", inv, with(func(s *Session) { s.Status = StatusEnded }), start, ErrSessionEnded},
		{"cancelled", inv, with(func(s *Session) { s.Status = StatusCancelled }), start, ErrSessionEnded},
		{"lobby opened early", inv, with(func(s *Session) { s.Status = StatusLobby }), start.Add(-2 * time.Hour), nil},
		{"live running over", inv, with(func(s *Session) { s.Status = StatusLive }), end.Add(20 * time.Minute), nil},
		{"revoked while live", revoked, with(func(s *Session) { s.Status = StatusLive }), start, ErrRevoked},
	}
	for _, c := range cases {
		err := CheckInvitation(c.inv, c.s, c.now)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
