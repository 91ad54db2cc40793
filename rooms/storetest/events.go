package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func chat(sessionID string, i int, at time.Time) rooms.Event {
	return rooms.Event{
		SessionID: sessionID,
		Time:      at,
		Actor:     "sup-1",
		Type:      rooms.EventChat,
		Data:      map[string]string{rooms.DataText: fmt.Sprintf("第%d条：请于本周内答复。", i)},
	}
}

func testEvents(t *testing.T, st rooms.Store) {
	c := ctx(t)
	s := mustCreate(t, st, newSession("sup-1", base))
	const n = 40
	var appended []rooms.Event
	for i := range n {
		// Times are not increasing: the log keeps append order and the
		// original times, whatever they are.
		at := base.Add(time.Duration(i%7) * time.Second)
		e, err := st.AppendEvent(c, chat(s.ID, i, at))
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) || e.ID == "" || !sameTime(e.Time, at) {
			t.Fatalf("event %d appended as %+v", i, e)
		}
		appended = append(appended, e)
	}
	got, err := st.ListEvents(c, s.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d events, want %d", len(got), n)
	}
	for i, e := range got {
		w := appended[i]
		if e.Seq != w.Seq || e.ID != w.ID || !sameTime(e.Time, w.Time) || e.Data[rooms.DataText] != w.Data[rooms.DataText] ||
			e.Type != rooms.EventChat || e.Actor != "sup-1" || e.SessionID != s.ID {
			t.Fatalf("event %d read back %+v, want %+v", i, e, w)
		}
	}
	page, err := st.ListEvents(c, s.ID, 10, 5)
	if err != nil || len(page) != 5 || page[0].Seq != 11 || page[4].Seq != 15 {
		t.Fatalf("page after 10: %+v, %v", page, err)
	}
	tail, err := st.ListEvents(c, s.ID, n-2, 100)
	if err != nil || len(tail) != 2 || tail[1].Seq != n {
		t.Fatalf("tail: %+v, %v", tail, err)
	}
	if none, err := st.ListEvents(c, s.ID, n, 0); err != nil || len(none) != 0 {
		t.Fatalf("after the last: %+v, %v", none, err)
	}

	// Writing the same event again (a retry after an ambiguous failure)
	// stores nothing new and answers with the original position.
	dup := appended[3]
	dup.Seq = 0
	again, err := st.AppendEvent(c, dup)
	if err != nil || again.Seq != 4 {
		t.Fatalf("duplicate append: %+v, %v", again, err)
	}
	if all, _ := st.ListEvents(c, s.ID, 0, 0); len(all) != n {
		t.Fatalf("%d events after a duplicate append, want %d", len(all), n)
	}

	// Defaults: ID and time are filled in; a given Seq is ignored.
	e, err := st.AppendEvent(c, rooms.Event{SessionID: s.ID, Type: rooms.EventLock, Actor: "sup-1", Seq: 999})
	if err != nil || e.Seq != n+1 || e.ID == "" || e.Time.IsZero() {
		t.Fatalf("defaults: %+v, %v", e, err)
	}

	if _, err := st.AppendEvent(c, chat("no-such", 0, base)); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("event for unknown session: %v", err)
	}
	big := chat(s.ID, 0, base)
	big.Data[rooms.DataText] = strings.Repeat("长", rooms.MaxEventValueLen)
	if _, err := st.AppendEvent(c, big); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("oversized event: %v", err)
	}
	if got, err := st.ListEvents(c, "no-such", 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("events of unknown session: %+v, %v", got, err)
	}
}

// testEventsConcurrent appends from several writers at once: every event is
// stored once and Seq is dense and increasing.
func testEventsConcurrent(t *testing.T, st rooms.Store) {
	c := ctx(t)
	s := mustCreate(t, st, newSession("sup-1", base))
	const writers, each = 5, 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[int64]string{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e, err := st.AppendEvent(c, chat(s.ID, w*each+i, base))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, ok := seqs[e.Seq]; ok {
					t.Errorf("seq %d given to %s and %s", e.Seq, prev, e.ID)
				}
				seqs[e.Seq] = e.ID
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, err := st.ListEvents(c, s.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each {
		t.Fatalf("%d events, want %d", len(got), writers*each)
	}
	for i, e := range got {
		if e.Seq != int64(i+1) || seqs[e.Seq] != e.ID {
			t.Fatalf("position %d holds seq %d id %s", i, e.Seq, e.ID)
		}
	}
}

func testAccounts(t *testing.T, st rooms.Store) {
	c := ctx(t)
	a := rooms.Account{Username: "zhang.san", DisplayName: "张三", Role: rooms.RoleSupervisor, PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"}
	got, err := st.CreateAccount(c, a)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Version != 1 || got.CreatedAt.IsZero() {
		t.Fatalf("created %+v", got)
	}
	if _, err := st.CreateAccount(c, a); !errors.Is(err, rooms.ErrExists) {
		t.Fatalf("duplicate username: %v", err)
	}
	bad := a
	bad.Username = "Bad Name"
	if _, err := st.CreateAccount(c, bad); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("invalid username: %v", err)
	}
	byName, err := st.GetAccount(c, "zhang.san")
	if err != nil || byName.ID != got.ID || byName.PasswordHash != a.PasswordHash || byName.DisplayName != "张三" {
		t.Fatalf("by username: %+v, %v", byName, err)
	}
	byID, err := st.GetAccountByID(c, got.ID)
	if err != nil || byID.Username != "zhang.san" {
		t.Fatalf("by id: %+v, %v", byID, err)
	}
	if _, err := st.GetAccount(c, "nobody"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("unknown username: %v", err)
	}
	if _, err := st.GetAccountByID(c, "nobody"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	lockedUntil := base.Add(15 * time.Minute)
	up, err := st.UpdateAccount(c, "zhang.san", func(a *rooms.Account) error {
		a.FailedLogins = 5
		a.LockedUntil = lockedUntil
		return nil
	})
	if err != nil || up.Version != 2 || up.FailedLogins != 5 || !sameTime(up.LockedUntil, lockedUntil) {
		t.Fatalf("update: %+v, %v", up, err)
	}
	if _, err := st.UpdateAccount(c, "zhang.san", func(a *rooms.Account) error { a.Username = "li.si"; return nil }); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("rename: %v", err)
	}
	if _, err := st.UpdateAccount(c, "nobody", func(*rooms.Account) error { return nil }); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if _, err := st.CreateAccount(c, rooms.Account{Username: "auditor1", Role: rooms.RoleAuditor, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListAccounts(c)
	if err != nil || len(list) != 2 || list[0].Username != "auditor1" || list[1].Username != "zhang.san" {
		t.Fatalf("list: %+v, %v", list, err)
	}
}

// testAccountConcurrent counts failed logins from several writers at once;
// a lost update would let an attacker try more passwords than the policy
// allows.
func testAccountConcurrent(t *testing.T, st rooms.Store) {
	c := ctx(t)
	if _, err := st.CreateAccount(c, rooms.Account{Username: "target", Role: rooms.RoleSupervisor, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 5, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := st.UpdateAccount(c, "target", func(a *rooms.Account) error { a.FailedLogins++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	a, err := st.GetAccount(c, "target")
	if err != nil || a.FailedLogins != writers*each {
		t.Fatalf("failed logins %d, want %d (%v)", a.FailedLogins, writers*each, err)
	}
}

// testIsolation checks that sessions do not see each other's participants
// and events.
func testIsolation(t *testing.T, st rooms.Store) {
	c := ctx(t)
	a := mustCreate(t, st, newSession("sup-1", base))
	b := mustCreate(t, st, newSession("sup-1", base))
	if _, err := st.UpsertParticipant(c, participant(a.ID, "p1", "370102"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvent(c, chat(a.ID, 1, base)); err != nil {
		t.Fatal(err)
	}
	if ps, _ := st.ListParticipants(c, b.ID); len(ps) != 0 {
		t.Fatalf("session b sees %s", describe(ps))
	}
	if ps, _ := st.ListLive(c, b.ID); len(ps) != 0 {
		t.Fatalf("session b live sees %s", describe(ps))
	}
	if _, err := st.GetParticipant(c, b.ID, "p1"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("p1 in session b: %v", err)
	}
	if evs, _ := st.ListEvents(c, b.ID, 0, 0); len(evs) != 0 {
		t.Fatalf("session b has %d events", len(evs))
	}
	e, err := st.AppendEvent(c, chat(b.ID, 1, base))
	if err != nil || e.Seq != 1 {
		t.Fatalf("first event of b: %+v, %v", e, err)
	}
}
