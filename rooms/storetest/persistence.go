package storetest

import (
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// RunPersistence checks that what one store instance wrote is seen by a new
// instance over the same backing data, as after a server restart. open is
// called twice; the first store is closed before the second is opened. Only
// persistent implementations run it.
func RunPersistence(t *testing.T, open func(t *testing.T) rooms.Store) {
	c := ctx(t)
	first := open(t)
	s := mustCreate(t, first, newSession("sup-1", base))
	s, err := first.UpdateSession(c, s.ID, func(s *rooms.Session) error { return s.Transition(rooms.StatusLive, base) })
	if err != nil {
		t.Fatal(err)
	}
	acc, err := first.CreateAccount(c, rooms.Account{Username: "restart", DisplayName: "重启", Role: rooms.RoleSupervisor, PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := rooms.NewInvitation(s, "370102", 0, base)
	if inv, err = first.CreateInvitation(c, inv); err != nil {
		t.Fatal(err)
	}
	if _, err := first.UpsertParticipant(c, participant(s.ID, "p1", "370102"), time.Minute); err != nil {
		t.Fatal(err)
	}
	var evs []rooms.Event
	for i := range 5 {
		e, err := first.AppendEvent(c, chat(s.ID, i, base.Add(time.Duration(i)*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	second := open(t)
	defer second.Close()
	gotS, err := second.GetSession(c, s.ID)
	if err != nil || gotS.Status != rooms.StatusLive || gotS.Version != s.Version {
		t.Fatalf("session after restart: %+v, %v", gotS, err)
	}
	list, err := second.ListSessions(c, rooms.SessionFilter{Status: []rooms.Status{rooms.StatusLive}, Supervisor: "sup-1"})
	if err != nil || len(list) != 1 || list[0].ID != s.ID {
		t.Fatalf("list after restart: %+v, %v", list, err)
	}
	gotA, err := second.GetAccount(c, "restart")
	if err != nil || gotA.ID != acc.ID || gotA.PasswordHash != "h" {
		t.Fatalf("account after restart: %+v, %v", gotA, err)
	}
	if _, err := second.GetAccountByID(c, acc.ID); err != nil {
		t.Fatalf("account by id after restart: %v", err)
	}
	if gotI, err := second.GetInvitation(c, inv.ID); err != nil || gotI.UnitCode != "370102" {
		t.Fatalf("invitation after restart: %+v, %v", gotI, err)
	}
	if ps, err := second.ListLive(c, s.ID); err != nil || describe(ps) != "[p1]" {
		t.Fatalf("live participants after restart: %s, %v", describe(ps), err)
	}
	got, err := second.ListEvents(c, s.ID, 0, 0)
	if err != nil || len(got) != len(evs) {
		t.Fatalf("events after restart: %d, %v", len(got), err)
	}
	for i := range got {
		if got[i].ID != evs[i].ID || got[i].Seq != evs[i].Seq || !sameTime(got[i].Time, evs[i].Time) {
			t.Fatalf("event %d after restart %+v, want %+v", i, got[i], evs[i])
		}
	}
	// The sequence continues where it stopped.
	e, err := second.AppendEvent(c, chat(s.ID, 99, base))
	if err != nil || e.Seq != int64(len(evs)+1) {
		t.Fatalf("append after restart: %+v, %v", e, err)
	}
}
