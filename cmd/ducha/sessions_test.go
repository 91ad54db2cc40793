package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/live"
	"github.com/ducha-dev/ducha/rooms/memstore"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
	"github.com/ducha-dev/ducha/signaling/client"
	"github.com/ducha-dev/ducha/signaling/token"
)

func (s *testServer) dialToken(t *testing.T, room, tok string) (*client.Client, *received, error) {
	t.Helper()
	api, err := client.NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	rec := &received{packets: map[string]*atomic.Int64{}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: "ws://" + s.addr + "/ws", Room: room, Token: tok, API: api,
		OnTrack: rec.onTrack})
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, rec, err
}

func (s *testServer) countyToken(t *testing.T, sess rooms.Session, inv rooms.Invitation, name string) string {
	t.Helper()
	tok, err := token.NewIssuer(s.key, time.Now).Issue(token.Claims{Room: sess.ID, Identity: inv.UnitCode, Name: name,
		Role: sfu.RoleCounty, ExpiresAt: sess.ScheduledEnd.Add(time.Hour), Invitation: inv.ID, Unit: inv.UnitCode})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hasEvent(events []rooms.Event, typ rooms.EventType, subject string) bool {
	for _, e := range events {
		if e.Type == typ && (subject == "" || e.Subject == subject) {
			return true
		}
	}
	return false
}

// The supervision story over real websockets and media: lobby, admission,
// media both ways, chat, the supervisor's mute and removal (the link stops
// working), the end of the session, the event log and attendance.
func TestSupervisionSessionStory(t *testing.T) {
	store := memstore.New(rooms.SystemClock{})
	now := time.Now()
	units := []rooms.Unit{{Code: "140105", Name: "小店区信访局"}, {Code: "140106", Name: "迎泽区信访局"}}
	sess := rooms.NewSession("矛盾纠纷化解督查", "XF-2026-0042", "acc-sup", now.Add(-time.Minute), now.Add(time.Hour), units, now)
	ctx := context.Background()
	if _, err := store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	invs := map[string]rooms.Invitation{}
	for _, u := range units {
		inv, err := rooms.NewInvitation(sess, u.Code, 30*time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		if inv, err = store.CreateInvitation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		invs[u.Code] = inv
	}
	s := startServerWith(t, store)

	sup, supRx, err := s.dialToken(t, sess.ID, s.token(t, sess.ID, "acc-sup", sfu.RoleSupervisor, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if sup.Lobby() || sup.Session() == nil || sup.Session().Status != "scheduled" {
		t.Fatalf("supervisor: lobby=%v session=%+v", sup.Lobby(), sup.Session())
	}
	if err := sup.Moderate(live.ActionOpenLobby, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "lobby open", func() bool { return sup.Session().Status == "lobby" })

	countyTok := s.countyToken(t, sess, invs["140105"], "小店区信访局")
	cty, ctyRx, err := s.dialToken(t, sess.ID, countyTok)
	if err != nil {
		t.Fatal(err)
	}
	if !cty.Lobby() {
		t.Fatal("county did not wait in the lobby")
	}
	waitFor(t, 10*time.Second, "the supervisor sees the county waiting", func() bool {
		w := sup.Waiting()
		return len(w) == 1 && w[0].Unit == "140105"
	})
	if err := cty.Send(signaling.TypeOffer, signaling.Offer{SDP: "v=0"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "not_admitted for an offer from the lobby", func() bool {
		for _, e := range cty.Errors() {
			if e.Code == signaling.CodeNotAdmitted {
				return true
			}
		}
		return false
	})

	if err := sup.Moderate(live.ActionAdmit, sup.Waiting()[0].ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cty.Admitted():
	case <-time.After(10 * time.Second):
		t.Fatal("county not admitted")
	}
	if err := sup.Moderate(live.ActionStart, ""); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []*client.Client{sup, cty} {
		publishSynth(t, c, mctx, "video")
		publishSynth(t, c, mctx, "audio")
	}
	ctyID := cty.Self().ID
	waitFor(t, 30*time.Second, "media both ways", func() bool {
		a, b := trackOf(sup, ctyID, "video"), trackOf(cty, sup.Self().ID, "video")
		return a != "" && b != "" && supRx.count(a) > 20 && ctyRx.count(b) > 20
	})

	if err := cty.Chat("已按期办结，请审阅"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "chat reaches the supervisor", func() bool {
		c := sup.Chats()
		return len(c) == 1 && c[0].Text == "已按期办结，请审阅" && c[0].From == ctyID
	})

	if err := sup.Moderate(live.ActionMute, ctyID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the county sees itself muted by the supervisor", func() bool {
		return cty.Participants()[ctyID].ModMuted
	})
	// A county may not moderate.
	if err := cty.Moderate(live.ActionUnmute, ctyID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "forbidden for a county moderating", func() bool {
		for _, e := range cty.Errors() {
			if e.Code == signaling.CodeForbidden {
				return true
			}
		}
		return false
	})

	if err := sup.Moderate(live.ActionRemove, ctyID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the county is told it was removed", func() bool { return cty.ClosedReason() == "removed" })
	_, _, err = s.dialToken(t, sess.ID, countyTok)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != signaling.CodeInvitationRevoked {
		t.Fatalf("rejoin with the removed unit's link: %v, want invitation_revoked", err)
	}

	if err := sup.Moderate(live.ActionEnd, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the supervisor is told the session ended", func() bool {
		return sup.ClosedReason() == "session_ended"
	})
	_, _, err = s.dialToken(t, sess.ID, s.countyToken(t, sess, invs["140106"], "迎泽区信访局"))
	if !errors.As(err, &se) || se.Code != signaling.CodeSessionEnded {
		t.Fatalf("join after the end: %v, want session_ended", err)
	}

	var events []rooms.Event
	waitFor(t, 10*time.Second, "the event log is complete", func() bool {
		events, err = store.ListEvents(ctx, sess.ID, 0, 1000)
		return err == nil && hasEvent(events, rooms.EventLeave, ctyID) && hasEvent(events, rooms.EventSessionEnd, "")
	})
	for _, typ := range []rooms.EventType{rooms.EventLobbyOpen, rooms.EventLobbyEnter, rooms.EventAdmit, rooms.EventJoin,
		rooms.EventSessionStart, rooms.EventChat, rooms.EventMute, rooms.EventRemove, rooms.EventLeave, rooms.EventSessionEnd} {
		if !hasEvent(events, typ, "") {
			t.Errorf("event log lacks %s", typ)
		}
	}
	final, err := store.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	rep := rooms.Attendance(final, events, time.Now(), 0)
	got := map[string]rooms.AttendanceStatus{}
	for _, u := range rep.Units {
		got[u.Unit.Code] = u.Status
	}
	if got["140105"] != rooms.AttendanceOnTime || got["140106"] != rooms.AttendanceAbsent {
		t.Fatalf("attendance %v, want 140105 on time and 140106 absent", got)
	}
}
