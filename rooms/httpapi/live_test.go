package httpapi

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/signaling/token"
)

func TestModeration(t *testing.T) {
	h := newMemHarness(t)
	sup := h.account("zhang.san", "张三", rooms.RoleSupervisor)
	h.account("admin", "管理员", rooms.RoleAdmin)
	c := h.login("zhang.san")
	sess := c.createSession("主持")
	path := "/api/v1/sessions/" + sess.ID + "/moderation"

	var v sessionView
	c.do("POST", path, map[string]string{"action": "mute", "target": "P1"}).want(http.StatusOK).decode(&v)
	call := h.mod.lastCall()
	if call != (modCall{session: sess.ID, actorID: sup.ID, action: "mute", target: "P1"}) {
		t.Fatalf("moderator got %+v (the password hash must not reach it)", call)
	}
	if v.ID != sess.ID {
		t.Fatalf("answer %+v", v)
	}

	calls := h.mod.callCount()
	for _, tc := range []struct {
		body  map[string]string
		field string
	}{
		{map[string]string{"action": "explode"}, "action"},
		{map[string]string{"action": ""}, "action"},
		{map[string]string{"action": "remove"}, "target"},
		{map[string]string{"action": "lock", "target": "P1"}, "target"},
	} {
		if e := c.do("POST", path, tc.body).wantError(http.StatusUnprocessableEntity, CodeValidation); e["field"] != tc.field {
			t.Fatalf("%v: field %v", tc.body, e["field"])
		}
	}
	c.do("POST", path, `{"action":"lock","reason":"x"}`).wantError(http.StatusBadRequest, CodeUnknownField)
	if h.mod.callCount() != calls {
		t.Fatal("refused requests reached the moderator")
	}

	// The live controller's errors keep their meaning.
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("live: participant P9: %w", rooms.ErrNotFound), http.StatusNotFound, CodeNotFound},
		{fmt.Errorf("live: %w", rooms.ErrInvalidTransition), http.StatusConflict, CodeInvalidTransition},
		{fmt.Errorf("wrapped: %w", errTestBadAction), http.StatusUnprocessableEntity, CodeBadAction},
		{fmt.Errorf("live: %w", rooms.ErrUnavailable), http.StatusServiceUnavailable, CodeUnavailable},
		{fmt.Errorf("something broke at 10.0.0.7"), http.StatusInternalServerError, CodeInternal},
	} {
		h.mod.setNext(tc.err)
		e := c.do("POST", path, map[string]string{"action": "admit", "target": "P9"}).wantError(tc.status, tc.code)
		if tc.code == CodeInternal && e["message"] != "服务器内部错误，请稍后重试或联系管理员" {
			t.Fatalf("internal error leaks: %v", e["message"])
		}
	}

	// Status actions through the (fake) controller move the session.
	c.do("POST", path, map[string]string{"action": "start"}).want(http.StatusOK).decode(&v)
	if v.Status != rooms.StatusLive {
		t.Fatalf("after start %s", v.Status)
	}
	c.do("POST", path, map[string]string{"action": "open-lobby"}).wantError(http.StatusConflict, CodeInvalidTransition)
	adm := h.login("admin")
	adm.do("POST", path, map[string]string{"action": "end"}).want(http.StatusOK).decode(&v)
	if v.Status != rooms.StatusEnded || h.mod.lastCall().actorID == sup.ID {
		t.Fatalf("admin end: %s by %s", v.Status, h.mod.lastCall().actorID)
	}
}

func TestParticipantsAndJoinLink(t *testing.T) {
	h := newMemHarness(t)
	sup := h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("参会方")
	joined := t0.Add(50 * time.Minute)
	h.mod.setLive(sess.ID, []LiveParticipant{
		{ID: "P1", Identity: sup.ID, Name: "张三", Role: "supervisor", JoinedAt: joined, RTTMillis: -1, LossPercent: -1, DownlinkKbps: -1},
		{ID: "P2", Identity: "320583", Name: "昆山市信访局", Role: "county", Unit: "320583", Lobby: true, ModMuted: true, JoinedAt: joined, RTTMillis: 85.5, LossPercent: 1.25, DownlinkKbps: 850},
	})
	res := c.do("GET", "/api/v1/sessions/"+sess.ID+"/participants", nil).want(http.StatusOK)
	var got struct{ Participants []map[string]any }
	res.decode(&got)
	if len(got.Participants) != 2 {
		t.Fatalf("participants %s", res.body)
	}
	p2 := got.Participants[1]
	for k, want := range map[string]any{"id": "P2", "identity": "320583", "role": "county", "unit": "320583", "lobby": true,
		"modMuted": true, "audioMuted": false, "rttMillis": 85.5, "lossPercent": 1.25, "downlinkKbps": 850.0, "joinedAt": joined.Format(time.RFC3339)} {
		if p2[k] != want {
			t.Errorf("participant %s = %v, want %v", k, p2[k], want)
		}
	}
	if p1 := got.Participants[0]; p1["rttMillis"] != nil || p1["lossPercent"] != nil || p1["downlinkKbps"] != nil {
		t.Errorf("unknown quality should be null: %v", p1)
	}
	var empty struct{ Participants []liveParticipantView }
	other := c.createSession("没人")
	c.do("GET", "/api/v1/sessions/"+other.ID+"/participants", nil).want(http.StatusOK).decode(&empty)
	if empty.Participants == nil || len(empty.Participants) != 0 {
		t.Fatalf("empty participants %+v", empty)
	}

	var link struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/join-link", nil).want(http.StatusOK).decode(&link)
	cl, err := h.tokenOf(link.URL, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Role != token.RoleSupervisor || cl.Identity != sup.ID || cl.Name != "张三" || cl.Invitation != "" ||
		!cl.ExpiresAt.Equal(t0.Add(2*time.Hour+DefaultLinkOverrun)) || !link.ExpiresAt.Equal(cl.ExpiresAt) {
		t.Fatalf("supervisor claims %+v", cl)
	}
	// A session running over still gets a link that lasts.
	h.clk.Advance(3*time.Hour + 30*time.Minute)
	c = h.login("zhang.san")
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/join-link", nil).want(http.StatusOK).decode(&link)
	if !link.ExpiresAt.Equal(h.clk.Now().Add(time.Hour)) {
		t.Fatalf("overrun link expires %v", link.ExpiresAt)
	}
}

func TestEventsPaging(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("事件")
	for i := range 5 {
		if _, err := h.store.AppendEvent(t.Context(), rooms.Event{SessionID: sess.ID, Actor: "system", Type: rooms.EventChat,
			Time: t0.Add(time.Duration(i) * time.Second), Data: map[string]string{rooms.DataText: fmt.Sprint("消息", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Events       []rooms.Event `json:"events"`
		NextAfterSeq int64         `json:"nextAfterSeq"`
		More         bool          `json:"more"`
	}
	var p page
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/events?limit=2", nil).want(http.StatusOK).decode(&p)
	if len(p.Events) != 2 || p.Events[0].Seq != 1 || p.NextAfterSeq != 2 || !p.More || p.Events[0].Data[rooms.DataText] != "消息0" {
		t.Fatalf("page 1 %+v", p)
	}
	c.do("GET", fmt.Sprintf("/api/v1/sessions/%s/events?afterSeq=%d&limit=2", sess.ID, p.NextAfterSeq), nil).want(http.StatusOK).decode(&p)
	if len(p.Events) != 2 || p.Events[0].Seq != 3 || p.NextAfterSeq != 4 || !p.More {
		t.Fatalf("page 2 %+v", p)
	}
	c.do("GET", fmt.Sprintf("/api/v1/sessions/%s/events?afterSeq=%d", sess.ID, p.NextAfterSeq), nil).want(http.StatusOK).decode(&p)
	if len(p.Events) != 1 || p.Events[0].Seq != 5 || p.NextAfterSeq != 5 || p.More {
		t.Fatalf("page 3 %+v", p)
	}
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/events?afterSeq=5", nil).want(http.StatusOK).decode(&p)
	if p.Events == nil || len(p.Events) != 0 || p.NextAfterSeq != 5 || p.More {
		t.Fatalf("past the end %+v", p)
	}
	for _, q := range []string{"afterSeq=-1", "afterSeq=x", "limit=0", "limit=1001"} {
		c.do("GET", "/api/v1/sessions/"+sess.ID+"/events?"+q, nil).wantError(http.StatusUnprocessableEntity, CodeValidation)
	}
}

func TestAttendanceJSON(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	h.account("li.si", "李四", rooms.RoleAuditor)
	c := h.login("zhang.san")
	sess := c.createSession("考勤")
	path := "/api/v1/sessions/" + sess.ID

	// Before the start nobody is late yet.
	var rep map[string]any
	c.do("GET", path+"/attendance", nil).want(http.StatusOK).decode(&rep)
	if s := rep["summary"].(map[string]any); s["pending"] != 2.0 || s["absent"] != 0.0 {
		t.Fatalf("before start %v", rep)
	}

	h.clk.Advance(time.Hour) // the scheduled start
	c.do("POST", path+"/moderation", map[string]string{"action": "start"}).want(http.StatusOK)
	county := rooms.Participant{ID: "P-KS", SessionID: sess.ID, Identity: "320583", Name: "昆山市信访局", Role: rooms.RoleCounty, UnitCode: "320583"}
	at := h.clk.Now().Add(8 * time.Minute) // three minutes past the grace
	if _, err := h.store.AppendEvent(t.Context(), rooms.ParticipantEvent(rooms.EventJoin, county, county.ID, at)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.AppendEvent(t.Context(), rooms.ParticipantEvent(rooms.EventRemove, county, sess.Supervisor, at.Add(20*time.Minute))); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(40 * time.Minute)
	c.do("POST", path+"/moderation", map[string]string{"action": "end"}).want(http.StatusOK)

	res := h.login("li.si").do("GET", path+"/attendance", nil).want(http.StatusOK)
	var got attendanceView
	res.decode(&got)
	start := t0.Add(time.Hour)
	want := attendanceView{
		SessionID: sess.ID, SessionStatus: rooms.StatusEnded, Reference: start, Until: start.Add(40 * time.Minute), GraceSeconds: 300,
		Units: []unitAttendanceView{
			{Unit: sess.InvitedUnits[0], Status: rooms.AttendanceLate, FirstArrival: at, LateSeconds: 480, PresentSeconds: 1200, Removed: true},
			{Unit: sess.InvitedUnits[1], Status: rooms.AttendanceAbsent},
		},
		Summary: map[string]int{"on_time": 0, "late": 1, "absent": 1, "pending": 0},
	}
	if fmt.Sprintf("%+v", normalize(got)) != fmt.Sprintf("%+v", normalize(want)) {
		t.Fatalf("attendance\n got %+v\nwant %+v\n%s", got, want, res.body)
	}
	// The field names the console reads.
	var raw map[string]any
	res.decode(&raw)
	u := raw["units"].([]any)[0].(map[string]any)
	for _, k := range []string{"unit", "status", "firstArrival", "lateSeconds", "presentSeconds", "reconnects", "removed", "connected"} {
		if _, ok := u[k]; !ok {
			t.Errorf("unit line lacks %q: %v", k, u)
		}
	}
	if _, ok := raw["units"].([]any)[1].(map[string]any)["firstArrival"]; ok {
		t.Error("absent unit has a firstArrival")
	}
}

// normalize puts times in UTC so views compare by instant.
func normalize(v attendanceView) attendanceView {
	v.Reference, v.Until = v.Reference.UTC(), v.Until.UTC()
	for i := range v.Units {
		v.Units[i].FirstArrival = v.Units[i].FirstArrival.UTC()
	}
	return v
}
