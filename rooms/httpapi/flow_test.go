package httpapi

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/memstore"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

// TestMainFlow runs the console's main story on the memory store and on a
// real Redis: an admin adds a supervisor, who schedules a session for two
// county units, issues links, drops one unit, holds the session and reads
// the attendance and event log; an auditor reads it all afterwards.
func TestMainFlow(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		clk := storetest.NewFakeClock(t0)
		mainFlow(t, newHarness(t, memstore.New(clk), clk))
	})
	t.Run("redis", func(t *testing.T) {
		clk := storetest.NewFakeClock(t0)
		mainFlow(t, newHarness(t, redisStore(t, clk), clk))
	})
}

func mainFlow(t *testing.T, h *harness) {
	h.account("admin", "系统管理员", rooms.RoleAdmin)
	adm := h.login("admin")
	var created adminAccountView
	adm.do("POST", "/api/v1/accounts", map[string]string{"username": "Zhang.San", "displayName": "张三", "role": "supervisor", "password": testPassword}).
		want(http.StatusCreated).decode(&created)
	adm.do("POST", "/api/v1/accounts", map[string]string{"username": "li.si", "displayName": "李四", "role": "auditor", "password": testPassword}).
		want(http.StatusCreated)
	var accts struct{ Accounts []adminAccountView }
	adm.do("GET", "/api/v1/accounts", nil).want(http.StatusOK).decode(&accts)
	if len(accts.Accounts) != 3 || accts.Accounts[2].Username != "zhang.san" {
		t.Fatalf("accounts %+v", accts.Accounts)
	}

	sup := h.login("zhang.san")
	sess := sup.createSession("关于昆山、太仓两地信访件的督查")
	base := "/api/v1/sessions/" + sess.ID
	if sess.Supervisor != created.ID || !sess.Recording {
		t.Fatalf("session %+v", sess)
	}

	issued := sup.invitations("POST", sess.ID, http.StatusCreated)
	if len(issued) != 2 {
		t.Fatalf("issued %+v", issued)
	}
	qr := sup.do("GET", base+"/invitations/"+issued[0].ID+"/qr.svg", nil).want(http.StatusOK)
	if len(svgBitmap(t, qr.body)) < 29 {
		t.Fatal("QR code too small")
	}

	// Taicang is dropped from the session: its link stops working.
	h.clk.Advance(40 * time.Minute)
	var v sessionView
	sup.do("PATCH", base, map[string]any{"invitedUnits": []rooms.Unit{sess.InvitedUnits[0]}}).want(http.StatusOK).decode(&v)
	if len(v.RevokedInvitations) != 1 || v.RevokedInvitations[0].UnitCode != "320585" {
		t.Fatalf("PATCH revoked %+v", v.RevokedInvitations)
	}
	for i, want := range []error{nil, rooms.ErrRevoked} {
		cl, err := h.tokenOf(issued[i].URL, sess.ID)
		if err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
		inv := must(h.store.GetInvitation(t.Context(), cl.Invitation))
		cur := must(h.store.GetSession(t.Context(), sess.ID))
		if err := rooms.CheckInvitation(inv, cur, h.clk.Now()); !errors.Is(err, want) {
			t.Fatalf("link %d check: %v, want %v", i, err, want)
		}
	}

	// The supervisor opens the lobby, Kunshan waits and is admitted at the
	// start, later leaves; the supervisor ends.
	sup.do("POST", base+"/moderation", map[string]string{"action": "open-lobby"}).want(http.StatusOK)
	county := rooms.Participant{ID: "P-KS", SessionID: sess.ID, Identity: "320583", Name: "昆山市信访局", Role: rooms.RoleCounty, UnitCode: "320583"}
	if _, err := h.store.AppendEvent(t.Context(), rooms.ParticipantEvent(rooms.EventLobbyEnter, county, county.ID, h.clk.Now().Add(5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(20 * time.Minute) // the scheduled start
	sup.do("POST", base+"/moderation", map[string]string{"action": "start"}).want(http.StatusOK)
	if _, err := h.store.AppendEvent(t.Context(), rooms.ParticipantEvent(rooms.EventAdmit, county, created.ID, h.clk.Now())); err != nil {
		t.Fatal(err)
	}
	h.mod.setLive(sess.ID, []LiveParticipant{{ID: "P-KS", Identity: "320583", Name: "昆山市信访局", Role: "county", Unit: "320583", JoinedAt: h.clk.Now(), RTTMillis: 40, LossPercent: 0}})
	var parts struct{ Participants []liveParticipantView }
	sup.do("GET", base+"/participants", nil).want(http.StatusOK).decode(&parts)
	if len(parts.Participants) != 1 || parts.Participants[0].Unit != "320583" {
		t.Fatalf("participants %+v", parts)
	}
	h.clk.Advance(30 * time.Minute)
	if _, err := h.store.AppendEvent(t.Context(), rooms.ParticipantEvent(rooms.EventLeave, county, county.ID, h.clk.Now())); err != nil {
		t.Fatal(err)
	}
	sup.do("POST", base+"/moderation", map[string]string{"action": "end"}).want(http.StatusOK).decode(&v)
	if v.Status != rooms.StatusEnded {
		t.Fatalf("after end %+v", v)
	}

	aud := h.login("li.si")
	var rep attendanceView
	aud.do("GET", base+"/attendance", nil).want(http.StatusOK).decode(&rep)
	if len(rep.Units) != 1 || rep.Units[0].Status != rooms.AttendanceOnTime || rep.Units[0].PresentSeconds != 1800 ||
		rep.Summary["on_time"] != 1 {
		t.Fatalf("attendance %+v", rep)
	}
	var evs struct {
		Events       []rooms.Event `json:"events"`
		NextAfterSeq int64         `json:"nextAfterSeq"`
		More         bool          `json:"more"`
	}
	aud.do("GET", base+"/events", nil).want(http.StatusOK).decode(&evs)
	var types []rooms.EventType
	for _, e := range evs.Events {
		types = append(types, e.Type)
	}
	want := []rooms.EventType{rooms.EventInvite, rooms.EventInvite, rooms.EventRevoke, rooms.EventLobbyOpen, rooms.EventLobbyEnter,
		rooms.EventSessionStart, rooms.EventAdmit, rooms.EventLeave, rooms.EventSessionEnd}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	var list struct {
		Sessions []sessionView
		More     bool
	}
	aud.do("GET", "/api/v1/sessions?status=ended&q=昆山", nil).want(http.StatusOK).decode(&list)
	if len(list.Sessions) != 1 || list.Sessions[0].SupervisorName != "张三" {
		t.Fatalf("auditor search %+v", list.Sessions)
	}
	aud.do("POST", base+"/cancel", nil).wantError(http.StatusForbidden, CodeForbidden)
	sup.do("POST", base+"/cancel", nil).wantError(http.StatusConflict, CodeInvalidTransition)
}
