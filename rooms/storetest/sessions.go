package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func testSessions(t *testing.T, st rooms.Store) {
	c := ctx(t)
	in := newSession("sup-1", base)
	got := mustCreate(t, st, in)
	if got.ID != in.ID || got.Version != 1 || !got.Recording || got.Status != rooms.StatusScheduled {
		t.Fatalf("created %+v", got)
	}
	read, err := st.GetSession(c, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(read), normalize(got)) {
		t.Fatalf("read back\n%+v\nwant\n%+v", read, got)
	}
	if !sameTime(read.ScheduledStart, base) {
		t.Fatalf("start %v, want %v", read.ScheduledStart, base)
	}
	if _, err := st.CreateSession(c, in); !errors.Is(err, rooms.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := st.GetSession(c, "no-such"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	bad := newSession("sup-1", base)
	bad.Title = ""
	if _, err := st.CreateSession(c, bad); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("create invalid: %v", err)
	}

	// An empty ID is filled in.
	anon := newSession("sup-1", base)
	anon.ID = ""
	anon, err = st.CreateSession(c, anon)
	if err != nil || anon.ID == "" {
		t.Fatalf("create without id: %+v, %v", anon, err)
	}

	// Update through the status machine.
	now := base.Add(-time.Minute)
	up, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error {
		s.Locked = true
		return s.Transition(rooms.StatusLobby, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || !up.Locked || up.Status != rooms.StatusLobby || !sameTime(up.UpdatedAt, now) {
		t.Fatalf("after update %+v", up)
	}
	// Mutating the returned value must not reach the store.
	up.InvitedUnits[0].Name = "mutated"
	// A failing fn stores nothing and its error comes back.
	boom := errors.New("boom")
	if _, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error { s.Title = "x"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	// The store enforces the status machine even when fn sets Status itself.
	if _, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error { s.Status = rooms.StatusEnded; return nil }); !errors.Is(err, rooms.ErrInvalidTransition) {
		t.Fatalf("lobby -> ended: %v", err)
	}
	// Identity fields cannot be changed, invalid results are refused.
	if _, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error { s.ScheduledEnd = s.ScheduledStart; return nil }); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("invalid update: %v", err)
	}
	kept, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error {
		s.ID, s.Version, s.CreatedAt = "other", 99, time.Time{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if kept.ID != in.ID || kept.Version != 3 || !sameTime(kept.CreatedAt, in.CreatedAt) || kept.Title != in.Title {
		t.Fatalf("identity not kept: %+v", kept)
	}
	if kept.InvitedUnits[0].Name == "mutated" {
		t.Fatal("returned session aliases stored units")
	}
	if _, err := st.UpdateSession(c, "no-such", func(*rooms.Session) error { return nil }); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if _, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error { return s.Transition(rooms.StatusLive, base) }); err != nil {
		t.Fatal(err)
	}
	final, err := st.UpdateSession(c, in.ID, func(s *rooms.Session) error { return s.Transition(rooms.StatusEnded, base.Add(time.Hour)) })
	if err != nil {
		t.Fatal(err)
	}
	if !sameTime(final.StartedAt, base) || !sameTime(final.EndedAt, base.Add(time.Hour)) || final.Status != rooms.StatusEnded {
		t.Fatalf("final %+v", final)
	}
}

func testSessionList(t *testing.T, st rooms.Store) {
	c := ctx(t)
	day := 24 * time.Hour
	var all []rooms.Session
	for i := range 9 {
		sup := fmt.Sprintf("sup-%d", i%3)
		s := mustCreate(t, st, newSession(sup, base.Add(time.Duration(i)*day)))
		if i%2 == 1 {
			var err error
			s, err = st.UpdateSession(c, s.ID, func(s *rooms.Session) error { return s.Transition(rooms.StatusLive, base) })
			if err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, s)
	}
	ids := func(ss []rooms.Session) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	cases := []struct {
		name string
		f    rooms.SessionFilter
		want []int
	}{
		{"all", rooms.SessionFilter{}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"supervisor", rooms.SessionFilter{Supervisor: "sup-1"}, []int{1, 4, 7}},
		{"live", rooms.SessionFilter{Status: []rooms.Status{rooms.StatusLive}}, []int{1, 3, 5, 7}},
		{"scheduled or ended", rooms.SessionFilter{Status: []rooms.Status{rooms.StatusScheduled, rooms.StatusEnded}}, []int{0, 2, 4, 6, 8}},
		{"range", rooms.SessionFilter{From: base.Add(2 * day), To: base.Add(5 * day)}, []int{2, 3, 4}},
		{"from only", rooms.SessionFilter{From: base.Add(7 * day)}, []int{7, 8}},
		{"to only", rooms.SessionFilter{To: base.Add(day)}, []int{0}},
		{"all criteria", rooms.SessionFilter{Supervisor: "sup-1", Status: []rooms.Status{rooms.StatusLive}, From: base.Add(2 * day)}, []int{7}},
		{"limit", rooms.SessionFilter{Status: []rooms.Status{rooms.StatusLive}, Limit: 2}, []int{1, 3}},
		{"nothing", rooms.SessionFilter{Supervisor: "nobody"}, nil},
	}
	for _, cs := range cases {
		got, err := st.ListSessions(c, cs.f)
		if err != nil {
			t.Fatalf("%s: %v", cs.name, err)
		}
		var want []rooms.Session
		for _, i := range cs.want {
			want = append(want, all[i])
		}
		if !reflect.DeepEqual(ids(got), ids(want)) {
			t.Errorf("%s: got %v, want %v", cs.name, ids(got), ids(want))
		}
		for i := range got {
			if got[i].Version != want[i].Version || got[i].Status != want[i].Status {
				t.Errorf("%s: %s is stale: %+v", cs.name, got[i].ID, got[i])
			}
		}
	}
}

// testSessionConcurrent has several writers (standing for several nodes)
// each add units to one session; optimistic concurrency must keep all of
// them.
func testSessionConcurrent(t *testing.T, st rooms.Store) {
	c := ctx(t)
	s := mustCreate(t, st, newSession("sup-1", base, unit(0)))
	const writers, each = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				u := unit(1 + w*each + i)
				_, err := st.UpdateSession(c, s.ID, func(s *rooms.Session) error {
					s.InvitedUnits = append(s.InvitedUnits, u)
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent update: %v", err)
	}
	got, err := st.GetSession(c, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.InvitedUnits) != 1+writers*each {
		t.Fatalf("%d units after %d concurrent additions, want %d", len(got.InvitedUnits), writers*each, 1+writers*each)
	}
	if got.Version != 1+writers*each {
		t.Fatalf("version %d, want %d", got.Version, 1+writers*each)
	}
	seen := map[string]bool{}
	for _, u := range got.InvitedUnits {
		if seen[u.Code] {
			t.Fatalf("unit %s twice", u.Code)
		}
		seen[u.Code] = true
	}
}

// normalize drops what JSON round trips may change without meaning: the
// monotonic clock reading and the location of times.
func normalize(s rooms.Session) rooms.Session {
	for _, p := range []*time.Time{&s.ScheduledStart, &s.ScheduledEnd, &s.CreatedAt, &s.UpdatedAt, &s.StartedAt, &s.EndedAt} {
		*p = p.UTC()
	}
	return s
}
