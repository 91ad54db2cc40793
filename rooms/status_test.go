package rooms

import (
	"errors"
	"testing"
	"time"
)

func TestCheckTransition(t *testing.T) {
	all := []Status{StatusScheduled, StatusLobby, StatusLive, StatusEnded, StatusCancelled}
	allowed := map[[2]Status]bool{
		{StatusScheduled, StatusLobby}:     true,
		{StatusScheduled, StatusLive}:      true,
		{StatusScheduled, StatusCancelled}: true,
		{StatusLobby, StatusLive}:          true,
		{StatusLobby, StatusCancelled}:     true,
		{StatusLive, StatusEnded}:          true,
	}
	for _, from := range all {
		for _, to := range all {
			err := CheckTransition(from, to)
			if allowed[[2]Status{from, to}] {
				if err != nil {
					t.Errorf("%s -> %s: %v, want allowed", from, to, err)
				}
				continue
			}
			if !errors.Is(err, ErrInvalidTransition) {
				t.Errorf("%s -> %s: %v, want ErrInvalidTransition", from, to, err)
			}
		}
	}
	for _, c := range [][2]Status{{"bogus", StatusLive}, {StatusLive, ""}} {
		if err := CheckTransition(c[0], c[1]); !errors.Is(err, ErrUnknownStatus) {
			t.Errorf("%q -> %q: %v, want ErrUnknownStatus", c[0], c[1], err)
		}
	}
}

func TestTransitionStampsTimes(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := NewSession("t", "c", "sup", t0, t0.Add(time.Hour), nil, t0)
	if err := s.Transition(StatusLobby, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !s.StartedAt.IsZero() || !s.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("lobby: started %v updated %v", s.StartedAt, s.UpdatedAt)
	}
	if err := s.Transition(StatusLive, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !s.StartedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("started at %v", s.StartedAt)
	}
	if err := s.Transition(StatusLobby, t0.Add(3*time.Minute)); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("live -> lobby: %v", err)
	}
	if s.Status != StatusLive {
		t.Fatalf("failed transition changed status to %s", s.Status)
	}
	if err := s.Transition(StatusEnded, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !s.EndedAt.Equal(t0.Add(time.Hour)) || !s.Status.Final() {
		t.Fatalf("ended: %+v", s)
	}
}
