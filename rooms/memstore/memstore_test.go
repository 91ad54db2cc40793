package memstore

import (
	"context"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) rooms.Store { return New(nil) })
}

// TestHeartbeatClock checks expiry against the injected clock, without
// sleeping.
func TestHeartbeatClock(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clk := storetest.NewFakeClock(t0)
	st := New(clk)
	ctx := context.Background()
	s, err := st.CreateSession(ctx, rooms.NewSession("t", "c", "sup", t0, t0.Add(time.Hour), []rooms.Unit{{Code: "A", Name: "甲"}}, t0))
	if err != nil {
		t.Fatal(err)
	}
	p := rooms.Participant{ID: "p", SessionID: s.ID, Role: rooms.RoleCounty, UnitCode: "A"}
	if _, err := st.UpsertParticipant(ctx, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	live := func() int {
		ps, err := st.ListLive(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	clk.Advance(29 * time.Second)
	if live() != 1 {
		t.Fatal("expired before its TTL")
	}
	if err := st.Heartbeat(ctx, s.ID, "p", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(29 * time.Second)
	if live() != 1 {
		t.Fatal("heartbeat did not extend the TTL")
	}
	clk.Advance(time.Second)
	if live() != 0 {
		t.Fatal("alive at exactly its TTL")
	}
	got, _ := st.GetParticipant(ctx, s.ID, "p")
	if !got.LastSeen.Equal(t0.Add(29 * time.Second)) {
		t.Fatalf("last seen %v", got.LastSeen)
	}
}
