package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustOpen(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, nil, testLogger(t), opts...)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return s
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) rooms.Store {
		s := mustOpen(t, t.TempDir())
		t.Cleanup(func() { mustClose(t, s) })
		return s
	})
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	storetest.RunPersistence(t, func(t *testing.T) rooms.Store { return mustOpen(t, dir) })
}

// TestRestartFromSnapshot runs the persistence contract with everything of
// the first run compacted into the snapshot, so the second run reads no
// journal record at all.
func TestRestartFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	opened := 0
	storetest.RunPersistence(t, func(t *testing.T) rooms.Store {
		opened++
		s := mustOpen(t, dir)
		if opened == 1 {
			return compactOnClose{s}
		}
		if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
			t.Fatalf("no snapshot after compaction: %v", err)
		}
		return s
	})
}

type compactOnClose struct{ *Store }

func (c compactOnClose) Close() error {
	if err := c.Compact(); err != nil {
		return err
	}
	return c.Store.Close()
}

// workload makes a varied history: sessions with status changes,
// invitations with revocations, participants joining, changing and leaving,
// events and accounts. It does not heartbeat: heartbeats are not kept.
func workload(t testing.TB, st rooms.Store, tag string, n int) {
	t.Helper()
	c := ctx(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	units := []rooms.Unit{{Code: "370102", Name: "历下区信访局"}, {Code: "370103", Name: "市中区信访局"}}
	for i := range n {
		start := t0.Add(time.Duration(i) * time.Hour)
		s, err := st.CreateSession(c, rooms.NewSession(fmt.Sprintf("督查会 %s-%d", tag, i), "XF-2026-0001", "sup-"+tag, start, start.Add(time.Hour), units, start))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range units {
			inv, _ := rooms.NewInvitation(s, u.Code, 0, start)
			if _, err := st.CreateInvitation(c, inv); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.UpdateSession(c, s.ID, func(s *rooms.Session) error { return s.Transition(rooms.StatusLive, start) }); err != nil {
			t.Fatal(err)
		}
		p := rooms.Participant{ID: "p-" + s.ID, SessionID: s.ID, Role: rooms.RoleCounty, UnitCode: "370102", Name: "县A"}
		if _, err := st.UpsertParticipant(c, p, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpdateParticipant(c, s.ID, p.ID, func(p *rooms.Participant) error { p.ModMuted = true; return nil }); err != nil {
			t.Fatal(err)
		}
		for k := range 5 {
			e := rooms.Event{SessionID: s.ID, Time: start.Add(time.Duration(k) * time.Second), Actor: "sup-" + tag, Type: rooms.EventChat,
				Data: map[string]string{rooms.DataText: fmt.Sprintf("第%d条：请于本周内答复。", k)}}
			if _, err := st.AppendEvent(c, e); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.LeaveParticipant(c, s.ID, p.ID, start.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RevokeUnitInvitations(c, s.ID, "370103", start.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		a, err := st.CreateAccount(c, rooms.Account{Username: fmt.Sprintf("u-%s-%d", strings.ToLower(tag), i), Role: rooms.RoleSupervisor, PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpdateAccount(c, a.Username, func(a *rooms.Account) error { a.FailedLogins++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// dump renders the whole state of s; two stores hold the same state when
// their dumps are equal.
func dump(t testing.TB, s *Store) string {
	t.Helper()
	b, err := json.MarshalIndent(s.mem.Export(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameState(t testing.TB, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			t.Fatalf("state differs at line %d: want %q, got %q (%d vs %d lines)", i+1, w[i], g[i], len(w), len(g))
		}
	}
	t.Fatalf("state differs in length: want %d lines, got %d", len(w), len(g))
}

// TestReplayRestoresEverything compares the whole state before and after
// restarts, from journals alone, from a snapshot plus journals, and from a
// snapshot alone.
func TestReplayRestoresEverything(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	workload(t, s, "a", 4)
	want := dump(t, s)
	mustClose(t, s)

	s = mustOpen(t, dir)
	sameState(t, want, dump(t, s))
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	workload(t, s, "b", 3)
	want = dump(t, s)
	mustClose(t, s)

	s = mustOpen(t, dir)
	sameState(t, want, dump(t, s))
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	gens, err := listJournals(dir)
	if err != nil || len(gens) != 1 {
		t.Fatalf("journals after compaction: %v, %v", gens, err)
	}
	s = mustOpen(t, dir)
	defer mustClose(t, s)
	sameState(t, want, dump(t, s))
}

// TestHeartbeatsNotKept pins down the documented limit: a restart restores
// the liveness of the last join, not of later heartbeats.
func TestHeartbeatsNotKept(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clk := storetest.NewFakeClock(t0)
	c := ctx(t)
	s, err := Open(dir, clk, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.CreateSession(c, rooms.NewSession("t", "c", "sup", t0, t0.Add(time.Hour), []rooms.Unit{{Code: "A", Name: "甲"}}, t0))
	if err != nil {
		t.Fatal(err)
	}
	p := rooms.Participant{ID: "p", SessionID: sess.ID, Role: rooms.RoleCounty, UnitCode: "A"}
	if _, err := s.UpsertParticipant(c, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Second)
	if err := s.Heartbeat(c, sess.ID, "p", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	live := func(at time.Duration) int {
		s, err := Open(dir, storetest.NewFakeClock(t0.Add(at)), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, s)
		ps, err := s.ListLive(c, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	if n := live(29 * time.Second); n != 1 {
		t.Fatalf("within the join's TTL after restart: %d live", n)
	}
	if n := live(40 * time.Second); n != 0 {
		t.Fatalf("after the join's TTL (heartbeats are not kept): %d live", n)
	}
}

func TestClosed(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	mustClose(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	_, err := s.CreateAccount(ctx(t), rooms.Account{Username: "late", Role: rooms.RoleAdmin, PasswordHash: "h"})
	if !errors.Is(err, rooms.ErrClosed) {
		t.Fatalf("change after close: %v", err)
	}
	if err := s.Compact(); !errors.Is(err, rooms.ErrClosed) {
		t.Fatalf("compact after close: %v", err)
	}
}

// TestJournalFailure breaks the journal file under the store: the change
// that hits it and every later one fail with rooms.ErrUnavailable, the store
// reports unhealthy, and reads keep working.
func TestJournalFailure(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	c := ctx(t)
	a, err := s.CreateAccount(c, rooms.Account{Username: "before", Role: rooms.RoleAdmin, PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	s.j.mu.Lock()
	_ = s.j.f.Close() // writes now fail with "file already closed"
	s.j.mu.Unlock()
	_, err = s.CreateAccount(c, rooms.Account{Username: "during", Role: rooms.RoleAdmin, PasswordHash: "h"})
	if !errors.Is(err, rooms.ErrUnavailable) || !errors.Is(err, ErrJournal) {
		t.Fatalf("change on a broken journal: %v", err)
	}
	if s.Healthy() {
		t.Fatal("healthy with a broken journal")
	}
	_, err = s.UpdateAccount(c, "before", func(a *rooms.Account) error { a.FailedLogins = 3; return nil })
	if !errors.Is(err, rooms.ErrUnavailable) {
		t.Fatalf("later change: %v", err)
	}
	if got, err := s.GetAccount(c, "before"); err != nil || got.ID != a.ID || got.FailedLogins != 0 {
		t.Fatalf("read after failure: %+v, %v", got, err)
	}
	if err := s.Close(); err == nil {
		t.Fatal("close reported success after lost writes")
	}
}

// TestConcurrentWriters mixes writers on several sessions and accounts with
// compactions triggered by a tiny threshold, then checks a restart sees
// exactly what memory held, and that no goroutine is left behind.
func TestConcurrentWriters(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	s := mustOpen(t, dir, WithCompactBytes(16<<10))
	c := ctx(t)
	const writers, each = 6, 60
	sessions := make([]rooms.Session, writers/2)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range sessions {
		var err error
		sessions[i], err = s.CreateSession(c, rooms.NewSession(fmt.Sprintf("s%d", i), "c", "sup", t0, t0.Add(time.Hour), nil, t0))
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateAccount(c, rooms.Account{Username: "shared", Role: rooms.RoleSupervisor, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			sess := sessions[w%len(sessions)]
			for i := range each {
				e := rooms.Event{SessionID: sess.ID, Actor: fmt.Sprintf("w%d", w), Type: rooms.EventChat,
					Data: map[string]string{rooms.DataText: strings.Repeat("督", 40) + fmt.Sprint(i)}}
				if _, err := s.AppendEvent(c, e); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					if _, err := s.UpdateAccount(c, "shared", func(a *rooms.Account) error { a.FailedLogins++; return nil }); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.UpdateSession(c, sess.ID, func(s *rooms.Session) error { s.Locked = !s.Locked; return nil }); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	// Explicit compactions race with the automatic ones and the writers.
	wg.Go(func() {
		for range 5 {
			if err := s.Compact(); err != nil {
				t.Error(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	want := dump(t, s)
	mustClose(t, s)
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
		t.Fatalf("compaction never ran: %v", err)
	}
	gens, _ := listJournals(dir)
	if len(gens) > 3 {
		t.Fatalf("%d journals left after compactions: %v", len(gens), gens)
	}

	s = mustOpen(t, dir)
	sameState(t, want, dump(t, s))
	total := 0
	for _, sess := range sessions {
		evs, _ := s.ListEvents(c, sess.ID, 0, 0)
		for i, e := range evs {
			if e.Seq != int64(i+1) {
				t.Fatalf("session %s position %d has seq %d", sess.ID, i, e.Seq)
			}
		}
		total += len(evs)
	}
	if total != writers*each {
		t.Fatalf("%d events after restart, want %d", total, writers*each)
	}
	if a, _ := s.GetAccount(c, "shared"); a.FailedLogins != writers*each/10 {
		t.Fatalf("failed logins %d, want %d", a.FailedLogins, writers*each/10)
	}
	mustClose(t, s)

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGroupCommit checks that concurrent appends share fsyncs: the point of
// the group commit is that many writers do not pay one fsync each.
func TestGroupCommit(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	defer mustClose(t, s)
	c := ctx(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sess, err := s.CreateSession(c, rooms.NewSession("g", "c", "sup", t0, t0.Add(time.Hour), nil, t0))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 25
	start := s.j.syncs.Load()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.AppendEvent(c, rooms.Event{SessionID: sess.ID, Actor: "a", Type: rooms.EventChat}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	syncs := s.j.syncs.Load() - start
	t.Logf("%d appends, %d fsyncs", writers*each, syncs)
	if syncs == 0 || syncs >= writers*each {
		t.Fatalf("%d fsyncs for %d concurrent appends: no group commit", syncs, writers*each)
	}
}

// logBuffer collects log lines, for tests that check a warning was given.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
