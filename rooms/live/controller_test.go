package live

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/memstore"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
)

// fakeMedia stands in for the SFU: the controller's logic (lobby,
// moderation, event log) is what these tests are about; the real SFU is
// exercised by cmd/ducha's tests.
type fakeMedia struct {
	mu     sync.Mutex
	joined map[string]*fakeSession
}

func (f *fakeMedia) Join(room string, info sfu.ParticipantInfo, n sfu.Notifier) (MediaSession, sfu.JoinResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeSession{n: n}
	f.joined[info.ID] = s
	return s, sfu.JoinResult{Self: sfu.ParticipantState{ParticipantInfo: info}}, nil
}

func (f *fakeMedia) session(id string) *fakeSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.joined[id]
}

type fakeSession struct {
	n        sfu.Notifier
	mu       sync.Mutex
	modMuted bool
	left     string
}

func (s *fakeSession) HandleOffer(string, map[string]string) error { return nil }
func (s *fakeSession) HandleAnswer(string) error                   { return nil }
func (s *fakeSession) AddCandidate(webrtc.ICECandidateInit) error  { return nil }
func (s *fakeSession) SetMuted(string, bool) error                 { return nil }
func (s *fakeSession) SetVideoSize(string, int, int) error         { return nil }
func (s *fakeSession) Quality() sfu.Quality                        { return sfu.Quality{} }
func (s *fakeSession) SetModMuted(m bool)                          { s.mu.Lock(); s.modMuted = m; s.mu.Unlock() }
func (s *fakeSession) Leave(reason string)                         { s.mu.Lock(); s.left = reason; s.mu.Unlock() }
func (s *fakeSession) Kick(reason string)                          { s.n.Closed(reason); s.Leave(reason) }

// recorder is a signaling.Notifier that remembers what a client was told.
type recorder struct {
	mu       sync.Mutex
	admitted int
	closed   string
	waiting  []signaling.Waiting
	session  signaling.SessionState
	chats    []signaling.ChatMessage
}

func (r *recorder) Offer(string)                            {}
func (r *recorder) Answer(string)                           {}
func (r *recorder) Candidate(webrtc.ICECandidateInit)       {}
func (r *recorder) ParticipantJoined(sfu.ParticipantState)  {}
func (r *recorder) ParticipantLeft(string, string)          {}
func (r *recorder) ParticipantUpdated(sfu.ParticipantState) {}
func (r *recorder) TrackPublished(sfu.TrackInfo)            {}
func (r *recorder) TrackRemoved(sfu.TrackInfo)              {}
func (r *recorder) ActiveSpeakers([]string)                 {}
func (r *recorder) Layers(string, string, []string)         {}
func (r *recorder) Admitted(signaling.JoinResult)           { r.mu.Lock(); r.admitted++; r.mu.Unlock() }
func (r *recorder) SessionUpdated(s signaling.SessionState) {
	r.mu.Lock()
	r.session = s
	r.mu.Unlock()
}
func (r *recorder) LobbyUpdated(w []signaling.Waiting) { r.mu.Lock(); r.waiting = w; r.mu.Unlock() }
func (r *recorder) Chat(m signaling.ChatMessage) {
	r.mu.Lock()
	r.chats = append(r.chats, m)
	r.mu.Unlock()
}
func (r *recorder) Closed(reason string) { r.mu.Lock(); r.closed = reason; r.mu.Unlock() }

type fixture struct {
	ctl   *Controller
	store rooms.Store
	media *fakeMedia
	sess  rooms.Session
	inv   map[string]rooms.Invitation
	now   time.Time
}

func newFixture(t *testing.T, status rooms.Status) *fixture {
	t.Helper()
	store := memstore.New(rooms.SystemClock{})
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now()
	units := []rooms.Unit{{Code: "A", Name: "甲县"}, {Code: "B", Name: "乙县"}}
	sess := rooms.NewSession("督查", "XF-1", "sup", now.Add(-time.Minute), now.Add(time.Hour), units, now)
	if status != rooms.StatusScheduled {
		if err := sess.Transition(status, now); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, media: &fakeMedia{joined: map[string]*fakeSession{}}, sess: sess,
		inv: map[string]rooms.Invitation{}, now: now}
	for _, u := range units {
		inv, _ := rooms.NewInvitation(sess, u.Code, 30*time.Minute, now)
		if _, err := store.CreateInvitation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		f.inv[u.Code] = inv
	}
	ctl, err := New(Config{Store: store, Media: f.media, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.ctl = ctl
	return f
}

func (f *fixture) county(t *testing.T, unit, id string) (signaling.Session, signaling.JoinResult, *recorder, error) {
	n := &recorder{}
	s, res, err := f.ctl.Join(f.sess.ID, sfu.ParticipantInfo{ID: id, Identity: unit, Name: unit, Role: sfu.RoleCounty,
		Unit: unit, Invitation: f.inv[unit].ID}, n)
	return s, res, n, err
}

func (f *fixture) supervisor(t *testing.T) (signaling.Session, *recorder) {
	t.Helper()
	n := &recorder{}
	s, res, err := f.ctl.Join(f.sess.ID, sfu.ParticipantInfo{ID: "Psup", Identity: "sup", Name: "督查员", Role: sfu.RoleSupervisor}, n)
	if err != nil || res.Lobby {
		t.Fatalf("supervisor join: %v lobby=%v", err, res.Lobby)
	}
	return s, n
}

func (f *fixture) events(t *testing.T) []rooms.EventType {
	t.Helper()
	evs, err := f.store.ListEvents(context.Background(), f.sess.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]rooms.EventType, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func TestLobbyAdmitAndModeration(t *testing.T) {
	f := newFixture(t, rooms.StatusLobby)
	sup, supN := f.supervisor(t)
	cty, res, ctyN, err := f.county(t, "A", "PA")
	if err != nil || !res.Lobby {
		t.Fatalf("county join: %v lobby=%v", err, res.Lobby)
	}
	if err := cty.HandleOffer("v=0", nil); !errors.Is(err, signaling.ErrNotAdmitted) {
		t.Fatalf("offer from the lobby: %v", err)
	}
	if err := cty.Chat("hi"); !errors.Is(err, signaling.ErrNotAdmitted) {
		t.Fatalf("chat from the lobby: %v", err)
	}
	supN.mu.Lock()
	w := supN.waiting
	supN.mu.Unlock()
	if len(w) != 1 || w[0].Unit != "A" {
		t.Fatalf("supervisor's lobby: %+v", w)
	}
	if err := cty.Moderate(ActionAdmit, "PA"); !errors.Is(err, sfu.ErrForbidden) {
		t.Fatalf("county moderating: %v", err)
	}
	if err := sup.Moderate("fly", ""); !errors.Is(err, signaling.ErrBadAction) {
		t.Fatalf("unknown action: %v", err)
	}
	if err := sup.Moderate(ActionMute, "nobody"); !errors.Is(err, signaling.ErrBadAction) {
		t.Fatalf("unknown target: %v", err)
	}
	if err := sup.Moderate(ActionAdmit, "PA"); err != nil {
		t.Fatal(err)
	}
	if ctyN.admitted != 1 || f.media.session("PA") == nil {
		t.Fatal("not admitted into the media session")
	}
	if err := cty.Chat("已到"); err != nil {
		t.Fatal(err)
	}
	if len(supN.chats) != 1 || supN.chats[0].Text != "已到" {
		t.Fatalf("chat: %+v", supN.chats)
	}
	if err := sup.Moderate(ActionMute, "PA"); err != nil {
		t.Fatal(err)
	}
	if !f.media.session("PA").modMuted {
		t.Fatal("the SFU was not told to mute")
	}
	if err := sup.Moderate(ActionRemove, "PA"); err != nil {
		t.Fatal(err)
	}
	if ctyN.closed != "removed" {
		t.Fatalf("removed county told %q", ctyN.closed)
	}
	// The same link is refused now.
	if _, _, _, err := f.county(t, "A", "PA2"); !errors.Is(err, signaling.ErrInvitationRevoked) {
		t.Fatalf("rejoin after removal: %v", err)
	}
	if err := sup.Moderate(ActionLock, ""); err != nil {
		t.Fatal(err)
	}
	if !supN.session.Locked {
		t.Fatal("lock not broadcast")
	}
	if err := sup.Moderate(ActionStart, ""); err != nil {
		t.Fatal(err)
	}
	// Locked and live: B still waits in the lobby.
	if _, res, _, err := f.county(t, "B", "PB"); err != nil || !res.Lobby {
		t.Fatalf("locked session: %v lobby=%v", err, res.Lobby)
	}
	if err := sup.Moderate(ActionEnd, ""); err != nil {
		t.Fatal(err)
	}
	if supN.closed != "session_ended" {
		t.Fatalf("supervisor told %q at the end", supN.closed)
	}
	want := []rooms.EventType{rooms.EventLobbyEnter, rooms.EventAdmit, rooms.EventJoin, rooms.EventChat, rooms.EventMute,
		rooms.EventRemove, rooms.EventLock, rooms.EventSessionStart, rooms.EventSessionEnd}
	got := f.events(t)
	i := 0
	for _, e := range got {
		if i < len(want) && e == want[i] {
			i++
		}
	}
	if i != len(want) {
		t.Fatalf("events %v lack, in order, %v", got, want)
	}
	if _, _, _, err := f.county(t, "B", "PB2"); !errors.Is(err, signaling.ErrSessionEnded) {
		t.Fatalf("join after the end: %v", err)
	}
}

func TestJoinRefusals(t *testing.T) {
	f := newFixture(t, rooms.StatusLive)
	n := &recorder{}
	if _, _, err := f.ctl.Join(f.sess.ID, sfu.ParticipantInfo{ID: "P1", Identity: "A", Role: sfu.RoleCounty, Unit: "A"}, n); !errors.Is(err, signaling.ErrInvitationRevoked) {
		t.Fatalf("county without invitation: %v", err)
	}
	if _, _, err := f.ctl.Join(f.sess.ID, sfu.ParticipantInfo{ID: "P2", Identity: "B", Role: sfu.RoleCounty, Unit: "B",
		Invitation: f.inv["A"].ID}, n); !errors.Is(err, signaling.ErrInvitationRevoked) {
		t.Fatalf("another unit's invitation: %v", err)
	}
	// A live, unlocked session: straight in.
	if _, res, _, err := f.county(t, "A", "PA"); err != nil || res.Lobby {
		t.Fatalf("live session: %v lobby=%v", err, res.Lobby)
	}
	// Unknown rooms: refused unless ad-hoc rooms are allowed.
	if _, _, err := f.ctl.Join("no-such-room", sfu.ParticipantInfo{ID: "P3", Identity: "x", Role: sfu.RoleSupervisor}, n); !errors.Is(err, signaling.ErrSessionEnded) {
		t.Fatalf("unknown room: %v", err)
	}
	f.ctl.cfg.AllowAdhoc = true
	s, _, err := f.ctl.Join("adhoc", sfu.ParticipantInfo{ID: "P4", Identity: "y", Role: sfu.RoleSupervisor}, n)
	if err != nil {
		t.Fatalf("ad-hoc room: %v", err)
	}
	if err := s.Moderate(ActionLock, ""); !errors.Is(err, signaling.ErrBadAction) {
		t.Fatalf("moderating an ad-hoc room: %v", err)
	}
}

func TestCancelledSendsLobbyHome(t *testing.T) {
	f := newFixture(t, rooms.StatusScheduled)
	_, res, n, err := f.county(t, "A", "PA")
	if err != nil || !res.Lobby {
		t.Fatalf("join before the start: %v lobby=%v", err, res.Lobby)
	}
	f.ctl.Cancelled(f.sess.ID)
	if n.closed != "session_ended" {
		t.Fatalf("told %q", n.closed)
	}
	if len(f.ctl.LiveSessionIDs()) != 0 {
		t.Fatal("the session still has live members")
	}
}
