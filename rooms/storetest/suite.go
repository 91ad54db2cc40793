// Package storetest is the contract every rooms.Store implementation must
// meet. Run it from the implementation's tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) rooms.Store { return memstore.New(nil) })
//	}
//
// Timing tests (heartbeat expiry) use the real clock with a short TTL and
// generous waits, so the same suite fits a store whose TTL is kept by Redis.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Run runs the whole contract; newStore must return an empty store that
// uses the real clock, and arrange its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) rooms.Store) {
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore(t)) })
	t.Run("SessionList", func(t *testing.T) { testSessionList(t, newStore(t)) })
	t.Run("SessionConcurrentUpdates", func(t *testing.T) { testSessionConcurrent(t, newStore(t)) })
	t.Run("Invitations", func(t *testing.T) { testInvitations(t, newStore(t)) })
	t.Run("Participants", func(t *testing.T) { testParticipants(t, newStore(t)) })
	t.Run("HeartbeatExpiry", func(t *testing.T) { testHeartbeatExpiry(t, newStore(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, newStore(t)) })
	t.Run("EventsConcurrent", func(t *testing.T) { testEventsConcurrent(t, newStore(t)) })
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, newStore(t)) })
	t.Run("AccountConcurrentUpdates", func(t *testing.T) { testAccountConcurrent(t, newStore(t)) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, newStore(t)) })
}

// ctx returns a context that bounds one test generously.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// base is a fixed point in time with a non-UTC zone and sub-microsecond
// part, so stores that round or lose zones fail the equality checks.
var base = time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.FixedZone("CST", 8*3600))

func newSession(sup string, start time.Time, units ...rooms.Unit) rooms.Session {
	if len(units) == 0 {
		units = []rooms.Unit{{Code: "370102", Name: "历下区信访局"}, {Code: "370103", Name: "市中区信访局"}}
	}
	return rooms.NewSession("督查会 "+sup, "XF-2026-0001", sup, start, start.Add(time.Hour), units, start.Add(-24*time.Hour))
}

func mustCreate(t *testing.T, st rooms.Store, s rooms.Session) rooms.Session {
	t.Helper()
	got, err := st.CreateSession(ctx(t), s)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return got
}

// eventually polls cond until it returns "" or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sameTime(a, b time.Time) bool { return a.Equal(b) }

func describe(ps []rooms.Participant) string {
	s := "["
	for i, p := range ps {
		if i > 0 {
			s += " "
		}
		s += p.ID
	}
	return s + "]"
}

func unit(i int) rooms.Unit {
	return rooms.Unit{Code: fmt.Sprintf("U%03d", i), Name: fmt.Sprintf("第%d县", i)}
}
