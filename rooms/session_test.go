package rooms

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSessionValidate(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	good := NewSession("督查 2026-17", "XF-2026-0017", "acc1", t0, t0.Add(time.Hour),
		[]Unit{{Code: "370102", Name: "历下区信访局"}}, t0)
	if err := good.Validate(); err != nil {
		t.Fatalf("good session: %v", err)
	}
	if !good.Recording || good.Status != StatusScheduled || good.ID == "" {
		t.Fatalf("NewSession defaults: %+v", good)
	}
	cases := map[string]func(*Session){
		"no id":          func(s *Session) { s.ID = "" },
		"no title":       func(s *Session) { s.Title = "" },
		"long title":     func(s *Session) { s.Title = strings.Repeat("督", MaxTitleLen+1) },
		"no supervisor":  func(s *Session) { s.Supervisor = "" },
		"end before":     func(s *Session) { s.ScheduledEnd = s.ScheduledStart },
		"no start":       func(s *Session) { s.ScheduledStart = time.Time{} },
		"dup unit":       func(s *Session) { s.InvitedUnits = append(s.InvitedUnits, s.InvitedUnits[0]) },
		"unit no name":   func(s *Session) { s.InvitedUnits[0].Name = "" },
		"unit no code":   func(s *Session) { s.InvitedUnits[0].Code = "" },
		"long case":      func(s *Session) { s.CaseNumber = strings.Repeat("1", MaxCaseNumberLen+1) },
		"unknown status": func(s *Session) { s.Status = "paused" },
	}
	for name, mut := range cases {
		s := good.Clone()
		mut(&s)
		err := s.Validate()
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownStatus) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	// Clone must not share the units slice.
	c := good.Clone()
	c.InvitedUnits[0].Name = "changed"
	if good.InvitedUnits[0].Name == "changed" {
		t.Fatal("Clone shares InvitedUnits")
	}
}

func TestSessionFilterMatch(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := Session{Status: StatusLive, Supervisor: "a", ScheduledStart: t0}
	cases := []struct {
		name string
		f    SessionFilter
		want bool
	}{
		{"empty", SessionFilter{}, true},
		{"status hit", SessionFilter{Status: []Status{StatusLobby, StatusLive}}, true},
		{"status miss", SessionFilter{Status: []Status{StatusEnded}}, false},
		{"supervisor miss", SessionFilter{Supervisor: "b"}, false},
		{"from inclusive", SessionFilter{From: t0}, true},
		{"from after", SessionFilter{From: t0.Add(time.Nanosecond)}, false},
		{"to exclusive", SessionFilter{To: t0}, false},
		{"to after", SessionFilter{To: t0.Add(time.Second)}, true},
	}
	for _, c := range cases {
		if got := c.f.Match(s); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAccountValidate(t *testing.T) {
	good := Account{ID: "1", Username: "zhang.san-1_", Role: RoleSupervisor, PasswordHash: "x"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Account){
		"upper":       func(a *Account) { a.Username = "Zhang" },
		"space":       func(a *Account) { a.Username = "zhang san" },
		"chinese":     func(a *Account) { a.Username = "张三" },
		"empty":       func(a *Account) { a.Username = "" },
		"county role": func(a *Account) { a.Role = RoleCounty },
		"no hash":     func(a *Account) { a.PasswordHash = "" },
	} {
		a := good
		mut(&a)
		if err := a.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
