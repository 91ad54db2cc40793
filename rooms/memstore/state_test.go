package memstore

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// TestExportPut rebuilds a store from an export with the Put hooks and gets
// the same export back, versions and sequences included.
func TestExportPut(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	src := New(nil)
	s, err := src.CreateSession(ctx, rooms.NewSession("t", "c", "sup", t0, t0.Add(time.Hour), []rooms.Unit{{Code: "A", Name: "甲"}}, t0))
	if err != nil {
		t.Fatal(err)
	}
	if s, err = src.UpdateSession(ctx, s.ID, func(s *rooms.Session) error { s.Locked = true; return nil }); err != nil || s.Version != 2 {
		t.Fatalf("update: %+v, %v", s, err)
	}
	inv, _ := rooms.NewInvitation(s, "A", 0, t0)
	if _, err := src.CreateInvitation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if _, err := src.UpsertParticipant(ctx, rooms.Participant{ID: "p", SessionID: s.ID, Role: rooms.RoleCounty, UnitCode: "A"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := src.AppendEvent(ctx, rooms.Event{SessionID: s.ID, Actor: "a", Type: rooms.EventChat}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.CreateAccount(ctx, rooms.Account{Username: "u", Role: rooms.RoleAdmin, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	want := src.Export()

	dst := New(nil)
	for _, s := range want.Sessions {
		dst.PutSession(s)
	}
	for _, inv := range want.Invitations {
		dst.PutInvitation(inv)
	}
	for _, p := range want.Participants {
		dst.PutParticipant(p.Participant, p.Expires)
	}
	for _, e := range want.Events {
		if err := dst.PutEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range want.Accounts {
		dst.PutAccount(a)
	}
	if got := dst.Export(); !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt %+v, want %+v", got, want)
	}
	if live, _ := dst.ListLive(ctx, s.ID); len(live) != 1 {
		t.Fatalf("restored participant not live: %d", len(live))
	}

	// Replaying an event again is ignored; a gap is refused.
	if err := dst.PutEvent(want.Events[0]); err != nil {
		t.Fatalf("repeated event: %v", err)
	}
	gap := want.Events[0]
	gap.ID, gap.Seq = "new", 9
	if err := dst.PutEvent(gap); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("event with a gap: %v", err)
	}
	// A zero expiry keeps the stored one.
	p := want.Participants[0]
	p.Participant.ModMuted = true
	dst.PutParticipant(p.Participant, time.Time{})
	if live, _ := dst.ListLive(ctx, s.ID); len(live) != 1 || !live[0].ModMuted {
		t.Fatalf("participant after a put without expiry: %+v", live)
	}
}
