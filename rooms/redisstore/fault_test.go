package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

// healthLog records OnHealth calls.
type healthLog struct {
	mu      sync.Mutex
	changes []bool
}

func (h *healthLog) record(ok bool, _ error) {
	h.mu.Lock()
	h.changes = append(h.changes, ok)
	h.mu.Unlock()
}

func (h *healthLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.changes)
}

// TestRedisOutage kills the store's Redis in the middle of a live session,
// keeps working while it is down, restarts it, and checks that every event
// is in the log exactly once, in order, with its original time, and that the
// state changes made during the outage reached Redis.
func TestRedisOutage(t *testing.T) {
	srv := startRedisServer(t)
	rdb := newClient(srv.addr())
	defer rdb.Close()
	var health healthLog
	st, err := New(context.Background(), rdb, Options{
		Prefix: "ducha:", Logger: testLogger(t),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnHealth: health.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	units := []rooms.Unit{{Code: "A", Name: "甲县信访局"}, {Code: "B", Name: "乙县信访局"}}
	sess, err := st.CreateSession(ctx, rooms.NewSession("督查", "XF-1", "sup", t0, t0.Add(time.Hour), units, t0))
	if err != nil {
		t.Fatal(err)
	}
	if sess, err = st.UpdateSession(ctx, sess.ID, func(s *rooms.Session) error { return s.Transition(rooms.StatusLive, t0) }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAccount(ctx, rooms.Account{Username: "sup", Role: rooms.RoleSupervisor, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	pa := rooms.Participant{ID: "pa", SessionID: sess.ID, Role: rooms.RoleCounty, UnitCode: "A", Name: "甲县"}
	if _, err := st.UpsertParticipant(ctx, pa, time.Minute); err != nil {
		t.Fatal(err)
	}

	var want []rooms.Event // in append order
	appendN := func(from, n int, wantSeq bool) {
		t.Helper()
		for i := from; i < from+n; i++ {
			e, err := st.AppendEvent(ctx, rooms.Event{
				SessionID: sess.ID, Type: rooms.EventChat, Actor: "sup",
				Time: t0.Add(time.Duration(i) * time.Second),
				Data: map[string]string{rooms.DataText: fmt.Sprintf("消息 %d", i)},
			})
			if err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
			if wantSeq && e.Seq != int64(i+1) {
				t.Fatalf("append %d got seq %d", i, e.Seq)
			}
			want = append(want, e)
		}
	}
	appendN(0, 20, true)

	// Redis dies.
	srv.kill()
	appendN(20, 20, false)
	if st.Healthy() {
		t.Fatal("healthy while redis is dead")
	}
	if st.Stats().Queued != 20 {
		t.Fatalf("queued %d, want 20", st.Stats().Queued)
	}
	// State changes while down are kept and visible locally.
	locked, err := st.UpdateSession(ctx, sess.ID, func(s *rooms.Session) error { s.Locked = true; return nil })
	if err != nil || !locked.Locked || locked.Version != sess.Version+1 {
		t.Fatalf("update while down: %+v, %v", locked, err)
	}
	if got, err := st.GetSession(ctx, sess.ID); err != nil || !got.Locked {
		t.Fatalf("read while down: %+v, %v", got, err)
	}
	if err := st.Heartbeat(ctx, sess.ID, "pa", time.Minute); err != nil {
		t.Fatalf("heartbeat while down: %v", err)
	}
	if live, err := st.ListLive(ctx, sess.ID); err != nil || len(live) != 1 {
		t.Fatalf("live while down: %+v, %v", live, err)
	}
	leftAt := t0.Add(30 * time.Minute)
	if _, err := st.LeaveParticipant(ctx, sess.ID, "pa", leftAt); err != nil {
		t.Fatalf("leave while down: %v", err)
	}
	if _, err := st.UpdateAccount(ctx, "sup", func(a *rooms.Account) error { a.FailedLogins++; return nil }); err != nil {
		t.Fatalf("account update while down: %v", err)
	}
	inv, _ := rooms.NewInvitation(sess, "B", 0, t0)
	if _, err := st.CreateInvitation(ctx, inv); err != nil {
		t.Fatalf("invitation while down: %v", err)
	}
	later, err := st.CreateSession(ctx, rooms.NewSession("下一场", "XF-2", "sup", t0.Add(24*time.Hour), t0.Add(25*time.Hour), units, t0))
	if err != nil {
		t.Fatalf("create while down: %v", err)
	}
	if _, err := st.ListEvents(ctx, sess.ID, 0, 0); !errors.Is(err, rooms.ErrUnavailable) {
		t.Fatalf("list events while down: %v, want ErrUnavailable", err)
	}
	if _, err := st.GetSession(ctx, "never-seen"); !errors.Is(err, rooms.ErrUnavailable) {
		t.Fatalf("unknown session while down: %v, want ErrUnavailable", err)
	}
	appendN(40, 10, false)

	// Redis comes back with its append-only file; writes continue while the
	// queue drains and must line up behind it.
	srv.start()
	appendN(50, 10, false)
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	defer fcancel()
	if err := st.Flush(fctx); err != nil {
		t.Fatalf("flush: %v (stats %+v)", err, st.Stats())
	}
	if !st.Healthy() {
		t.Fatalf("not healthy after flush: %+v", st.Stats())
	}
	if stats := st.Stats(); stats.Failed != 0 || stats.Replayed == 0 {
		t.Fatalf("stats after recovery %+v", stats)
	}
	// Flush returns once the queue is written; the health callback runs
	// right after, outside the store's lock, so give it a moment.
	deadline := time.Now().Add(10 * time.Second)
	for health.String() != "[false true]" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if h := health.String(); h != "[false true]" {
		t.Fatalf("health changes %s, want [false true]", h)
	}

	// A new store (a restarted node, empty cache) sees everything.
	fresh, err := New(ctx, rdb, Options{Prefix: "ducha:", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	checkLog(t, fresh, sess.ID, want)
	if got, err := fresh.GetSession(ctx, sess.ID); err != nil || !got.Locked || got.Version != locked.Version {
		t.Fatalf("session after recovery: %+v, %v", got, err)
	}
	if got, err := fresh.GetParticipant(ctx, sess.ID, "pa"); err != nil || !got.LeftAt.Equal(leftAt) {
		t.Fatalf("participant after recovery: %+v, %v", got, err)
	}
	if live, err := fresh.ListLive(ctx, sess.ID); err != nil || len(live) != 0 {
		t.Fatalf("live after recovery: %+v, %v", live, err)
	}
	if a, err := fresh.GetAccount(ctx, "sup"); err != nil || a.FailedLogins != 1 {
		t.Fatalf("account after recovery: %+v, %v", a, err)
	}
	if got, err := fresh.GetInvitation(ctx, inv.ID); err != nil || got.UnitCode != "B" {
		t.Fatalf("invitation after recovery: %+v, %v", got, err)
	}
	if got, err := fresh.GetSession(ctx, later.ID); err != nil || got.Title != "下一场" {
		t.Fatalf("session created while down: %+v, %v", got, err)
	}

	// Writing an event again (a retry after an ambiguous failure) changes
	// nothing.
	dup := want[25]
	again, err := fresh.AppendEvent(ctx, dup)
	if err != nil || again.Seq != 26 {
		t.Fatalf("re-append: %+v, %v", again, err)
	}
	checkLog(t, fresh, sess.ID, want)
}

// checkLog asserts the session's log is exactly want, in order.
func checkLog(t *testing.T, st rooms.Store, sessionID string, want []rooms.Event) {
	t.Helper()
	got, err := st.ListEvents(context.Background(), sessionID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events in the log, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != int64(i+1) || g.ID != w.ID || !g.Time.Equal(w.Time) || g.Data[rooms.DataText] != w.Data[rooms.DataText] {
			t.Fatalf("event %d is seq %d id %s time %v %q, want id %s time %v %q",
				i, g.Seq, g.ID, g.Time, g.Data[rooms.DataText], w.ID, w.Time, w.Data[rooms.DataText])
		}
	}
}

// TestQueueFull checks that a full write-behind queue refuses writes with an
// error instead of dropping them, and that Close reports what was not
// persisted. Nothing listens on the port, so Redis is down from the start;
// the fake clock keeps the retry loop still.
func TestQueueFull(t *testing.T) {
	clk := storetest.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	rdb := newClient(deadAddr(t))
	defer rdb.Close()
	st, err := New(context.Background(), rdb, Options{Prefix: "x:", Logger: testLogger(t), Clock: clk, QueueLimit: 5, CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Healthy() {
		t.Fatal("healthy with no redis")
	}
	ctx := context.Background()
	t0 := clk.Now()
	s, err := st.CreateSession(ctx, rooms.NewSession("t", "c", "sup", t0, t0.Add(time.Hour), nil, t0))
	if err != nil {
		t.Fatalf("create while down: %v", err)
	}
	for i := range 4 {
		if _, err := st.AppendEvent(ctx, rooms.Event{SessionID: s.ID, Type: rooms.EventChat}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	_, err = st.AppendEvent(ctx, rooms.Event{SessionID: s.ID, Type: rooms.EventChat})
	if !errors.Is(err, rooms.ErrQueueFull) || !errors.Is(err, rooms.ErrUnavailable) {
		t.Fatalf("append to a full queue: %v, want ErrQueueFull", err)
	}
	if _, err := st.UpdateSession(ctx, s.ID, func(s *rooms.Session) error { s.Locked = true; return nil }); !errors.Is(err, rooms.ErrQueueFull) {
		t.Fatalf("update with a full queue: %v", err)
	}
	// The refused update did not reach the cache either.
	if got, _ := st.GetSession(ctx, s.ID); got.Locked {
		t.Fatal("refused update is visible")
	}
	if q := st.Stats().Queued; q != 5 {
		t.Fatalf("queued %d, want 5", q)
	}
	if err := st.Close(); !errors.Is(err, ErrPendingWrites) {
		t.Fatalf("close with queued writes: %v, want ErrPendingWrites", err)
	}
	if _, err := st.AppendEvent(ctx, rooms.Event{SessionID: s.ID, Type: rooms.EventChat}); !errors.Is(err, rooms.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

// TestBackoff checks the retry schedule against the fake clock: the store
// waits on the clock between attempts instead of spinning.
func TestBackoff(t *testing.T) {
	if d := nextBackoff(100*time.Millisecond, time.Second); d != 200*time.Millisecond {
		t.Fatalf("next after 100ms: %v", d)
	}
	if d := nextBackoff(800*time.Millisecond, time.Second); d != time.Second {
		t.Fatalf("next after 800ms: %v", d)
	}
	clk := storetest.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	rdb := newClient(deadAddr(t))
	defer rdb.Close()
	st, err := New(context.Background(), rdb, Options{Prefix: "x:", Logger: testLogger(t), Clock: clk, CloseTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The background goroutine tries once, fails, and then waits on the
	// clock.
	deadline := time.Now().Add(10 * time.Second)
	for clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("retry loop never waited on the clock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := clk.Waiters(); n != 1 {
		t.Fatalf("%d timers pending, want 1 (the loop must not spin)", n)
	}
	clk.Advance(100 * time.Millisecond)
	for clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("retry loop did not wait again after the first backoff")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The second wait is twice the first: advancing by the first backoff
	// again must not release it.
	clk.Advance(100 * time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	if n := clk.Waiters(); n != 1 {
		t.Fatalf("second backoff released early (%d timers)", n)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	srv := startListenerAndClose(t)
	return srv
}

// TestRedisDataLoss restarts Redis without persistence, so it comes back
// empty. The store must notice, write back the sessions, invitations and
// accounts it knows, and still write the events queued during the outage.
// Events that had reached Redis before the loss are gone: that is why
// production Redis must run with an append-only file (see package doc).
func TestRedisDataLoss(t *testing.T) {
	srv := startVolatileRedisServer(t)
	rdb := newClient(srv.addr())
	defer rdb.Close()
	st, err := New(context.Background(), rdb, Options{
		Prefix: "ducha:", Logger: testLogger(t), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sess, err := st.CreateSession(ctx, rooms.NewSession("督查", "XF-1", "sup", t0, t0.Add(time.Hour), []rooms.Unit{{Code: "A", Name: "甲"}}, t0))
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := rooms.NewInvitation(sess, "A", 0, t0)
	if _, err := st.CreateInvitation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAccount(ctx, rooms.Account{Username: "sup", Role: rooms.RoleSupervisor, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendEvent(ctx, rooms.Event{SessionID: sess.ID, Type: rooms.EventLobbyOpen, Time: t0}); err != nil {
		t.Fatal(err)
	}

	srv.kill()
	queued, err := st.AppendEvent(ctx, rooms.Event{SessionID: sess.ID, Type: rooms.EventSessionStart, Time: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	srv.start()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	fresh, err := New(ctx, rdb, Options{Prefix: "ducha:", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.GetSession(ctx, sess.ID); err != nil {
		t.Fatalf("session not restored: %v", err)
	}
	if _, err := fresh.GetInvitation(ctx, inv.ID); err != nil {
		t.Fatalf("invitation not restored: %v", err)
	}
	if _, err := fresh.GetAccount(ctx, "sup"); err != nil {
		t.Fatalf("account not restored: %v", err)
	}
	if list, err := fresh.ListSessions(ctx, rooms.SessionFilter{Supervisor: "sup"}); err != nil || len(list) != 1 {
		t.Fatalf("session indexes not restored: %+v, %v", list, err)
	}
	evs, err := fresh.ListEvents(ctx, sess.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != queued.ID || !evs[0].Time.Equal(queued.Time) {
		t.Fatalf("events after data loss: %+v, want only the queued one", evs)
	}
}
