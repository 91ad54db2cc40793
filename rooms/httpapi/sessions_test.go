package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func TestCreateSessionDefaults(t *testing.T) {
	h := newMemHarness(t)
	sup := h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	res := c.do("POST", "/api/v1/sessions", sessionBody("  昆山信访件督查  ")).want(http.StatusCreated)
	var v sessionView
	res.decode(&v)
	if v.Title != "昆山信访件督查" || v.Supervisor != sup.ID || v.SupervisorName != "张三" || !v.Recording ||
		v.Status != rooms.StatusScheduled || len(v.InvitedUnits) != 2 || !v.ScheduledStart.Equal(t0.Add(time.Hour)) {
		t.Fatalf("created %+v", v)
	}
	if loc := res.resp.Header.Get("Location"); loc != "/api/v1/sessions/"+v.ID {
		t.Fatalf("Location %q", loc)
	}
	body := sessionBody("不录制")
	body["recording"] = false
	var off sessionView
	c.do("POST", "/api/v1/sessions", body).want(http.StatusCreated).decode(&off)
	if off.Recording {
		t.Fatal("recording:false ignored")
	}
	stored, err := h.store.GetSession(t.Context(), off.ID)
	if err != nil || stored.Recording {
		t.Fatalf("stored %+v %v", stored, err)
	}
	c.do("GET", "/api/v1/sessions/"+v.ID, nil).want(http.StatusOK)
}

func TestBadBodies(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")

	big := `{"title":"` + strings.Repeat("长", MaxBodyBytes/3+10) + `"}`
	c.do("POST", "/api/v1/sessions", big).wantError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge)
	// Over the limit even though the JSON object itself would be fine: the
	// trailing padding still counts.
	c.do("POST", "/api/v1/sessions", `{"title":"x"}`+strings.Repeat(" ", MaxBodyBytes)).wantError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge)
	h.client().do("POST", "/api/v1/auth/login", big).wantError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge)

	for name, tc := range map[string]struct {
		body   string
		status int
		code   string
	}{
		"empty":     {"", http.StatusBadRequest, CodeBadJSON},
		"truncated": {`{"title":"x"`, http.StatusBadRequest, CodeBadJSON},
		"not json":  {`title=x`, http.StatusBadRequest, CodeBadJSON},
		"two docs":  {`{"title":"x"} {"title":"y"}`, http.StatusBadRequest, CodeBadJSON},
		"garbage":   {`{"title":"x"}}`, http.StatusBadRequest, CodeBadJSON},
		"array":     {`[1,2]`, http.StatusUnprocessableEntity, CodeValidation},
	} {
		t.Run(name, func(t *testing.T) {
			res := c.do("POST", "/api/v1/sessions", tc.body)
			res.t = t
			res.wantError(tc.status, tc.code)
		})
	}
	e := c.do("POST", "/api/v1/sessions", `{"title":"x","owner":"me"}`).wantError(http.StatusBadRequest, CodeUnknownField)
	if e["field"] != "owner" {
		t.Fatalf("unknown field named %v", e["field"])
	}
	body := sessionBody("x")
	body["invitedUnits"] = []map[string]string{{"code": "1", "name": "a", "phone": "1"}}
	c.do("POST", "/api/v1/sessions", body).wantError(http.StatusBadRequest, CodeUnknownField)
	e = c.do("POST", "/api/v1/sessions", `{"title":5}`).wantError(http.StatusUnprocessableEntity, CodeValidation)
	if e["field"] != "title" {
		t.Fatalf("type error field %v", e["field"])
	}
	c.do("POST", "/api/v1/sessions", `{"title":"x"}`, "Content-Type", "text/plain").wantError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia)
	c.do("POST", "/api/v1/sessions", `{"title":"x"}`, "Content-Type", "application/x-www-form-urlencoded").wantError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia)
	c.do("POST", "/api/v1/sessions", `{"title":"x"}`, "Content-Type", "application/json; charset=utf-8").wantError(http.StatusUnprocessableEntity, CodeValidation)
}

func TestSessionValidation(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	cases := []struct {
		name  string
		mod   func(map[string]any)
		field string
	}{
		{"empty title", func(b map[string]any) { b["title"] = "   " }, "title"},
		{"long title", func(b map[string]any) { b["title"] = strings.Repeat("题", rooms.MaxTitleLen+1) }, "title"},
		{"control in title", func(b map[string]any) { b["title"] = "a\x07b" }, "title"},
		{"long case number", func(b map[string]any) { b["caseNumber"] = strings.Repeat("1", 65) }, "caseNumber"},
		{"no start", func(b map[string]any) { delete(b, "scheduledStart") }, "scheduledStart"},
		{"bad start", func(b map[string]any) { b["scheduledStart"] = "2026-03-02 10:00" }, "scheduledStart"},
		{"end before start", func(b map[string]any) { b["scheduledEnd"] = t0.Add(30 * time.Minute).Format(time.RFC3339) }, "scheduledEnd"},
		{"too long", func(b map[string]any) { b["scheduledEnd"] = t0.Add(26 * time.Hour).Format(time.RFC3339) }, "scheduledEnd"},
		{"in the past", func(b map[string]any) {
			b["scheduledStart"] = t0.Add(-2 * time.Hour).Format(time.RFC3339)
			b["scheduledEnd"] = t0.Add(-time.Hour).Format(time.RFC3339)
		}, "scheduledEnd"},
		{"bad unit code", func(b map[string]any) { b["invitedUnits"] = []rooms.Unit{{Code: "32 05", Name: "a"}} }, "invitedUnits[0].code"},
		{"empty unit name", func(b map[string]any) { b["invitedUnits"] = []rooms.Unit{{Code: "3205", Name: " "}} }, "invitedUnits[0].name"},
		{"duplicate unit", func(b map[string]any) {
			b["invitedUnits"] = []rooms.Unit{{Code: "3205", Name: "a"}, {Code: "3205", Name: "b"}}
		}, "invitedUnits[1].code"},
		{"supervisor for someone else", func(b map[string]any) { b["supervisor"] = "SOMEONEELSE" }, "supervisor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := sessionBody("校验")
			tc.mod(b)
			res := c.do("POST", "/api/v1/sessions", b)
			res.t = t
			if e := res.wantError(http.StatusUnprocessableEntity, CodeValidation); e["field"] != tc.field {
				t.Fatalf("field %v, want %s", e["field"], tc.field)
			}
		})
	}
	if ss, _ := h.store.ListSessions(t.Context(), rooms.SessionFilter{}); len(ss) != 0 {
		t.Fatalf("%d sessions stored by refused requests", len(ss))
	}
}

func TestUnknownSessionAndPaths(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	const id = "NOSUCHSESSION234567ABCDEFG"
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/sessions/" + id},
		{"PATCH", "/api/v1/sessions/" + id},
		{"POST", "/api/v1/sessions/" + id + "/cancel"},
		{"POST", "/api/v1/sessions/" + id + "/invitations"},
		{"GET", "/api/v1/sessions/" + id + "/invitations"},
		{"POST", "/api/v1/sessions/" + id + "/invitations/X/revoke"},
		{"GET", "/api/v1/sessions/" + id + "/invitations/X/qr.svg"},
		{"GET", "/api/v1/sessions/" + id + "/join-link"},
		{"GET", "/api/v1/sessions/" + id + "/participants"},
		{"POST", "/api/v1/sessions/" + id + "/moderation"},
		{"GET", "/api/v1/sessions/" + id + "/events"},
		{"GET", "/api/v1/sessions/" + id + "/attendance"},
	} {
		var body any
		if r.method != "GET" {
			body = map[string]string{"title": "x", "action": "lock"}
			if strings.HasSuffix(r.path, "/moderation") || strings.HasSuffix(r.path, "/cancel") || strings.Contains(r.path, "/invitations") {
				body = map[string]string{"action": "lock"}
			}
		}
		c.do(r.method, r.path, body).wantError(http.StatusNotFound, CodeNotFound)
	}
	sess := c.createSession("存在的会话")
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/invitations/NOSUCH/qr.svg", nil).wantError(http.StatusNotFound, CodeNotFound)
	c.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations/NOSUCH/revoke", nil).wantError(http.StatusNotFound, CodeNotFound)

	c.do("GET", "/api/v1/nothing", nil).wantError(http.StatusNotFound, CodeNotFound)
	res := c.do("DELETE", "/api/v1/sessions/"+sess.ID, nil)
	res.wantError(http.StatusMethodNotAllowed, CodeMethodNotAllowed)
	if allow := res.resp.Header.Values("Allow"); strings.Join(allow, ",") != "GET,PATCH" {
		t.Fatalf("Allow %v", allow)
	}
}

func TestSupervisorIsolation(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	h.account("wang.wu", "王五", rooms.RoleSupervisor)
	own := h.login("zhang.san")
	other := h.login("wang.wu")
	sess := own.createSession("张三的会话")
	var invs struct{ Invitations []invitationView }
	own.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations", nil).want(http.StatusCreated).decode(&invs)
	inv := invs.Invitations[0].ID
	theirs := other.createSession("王五的会话")

	base := "/api/v1/sessions/" + sess.ID
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"GET", base, nil},
		{"PATCH", base, map[string]string{"title": "改掉"}},
		{"POST", base + "/cancel", nil},
		{"POST", base + "/invitations", nil},
		{"GET", base + "/invitations", nil},
		{"POST", base + "/invitations/" + inv + "/revoke", nil},
		{"GET", base + "/invitations/" + inv + "/qr.svg", nil},
		{"GET", base + "/join-link", nil},
		{"GET", base + "/participants", nil},
		{"POST", base + "/moderation", map[string]string{"action": "end"}},
		{"GET", base + "/events", nil},
		{"GET", base + "/attendance", nil},
	} {
		other.do(r.method, r.path, r.body).wantError(http.StatusForbidden, CodeForbidden)
	}
	if h.mod.callCount() != 0 {
		t.Fatalf("moderator called %d times", h.mod.callCount())
	}
	var list struct {
		Sessions []sessionView
		More     bool
	}
	other.do("GET", "/api/v1/sessions", nil).want(http.StatusOK).decode(&list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != theirs.ID {
		t.Fatalf("wang.wu lists %+v", list.Sessions)
	}
	// Asking for another supervisor's sessions does not widen the list.
	other.do("GET", "/api/v1/sessions?supervisor="+sess.Supervisor, nil).want(http.StatusOK).decode(&list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != theirs.ID {
		t.Fatalf("wang.wu lists with supervisor filter %+v", list.Sessions)
	}

	h.mod.setOverview([]LiveSession{
		{SessionID: sess.ID, Title: sess.Title, Status: "live"},
		{SessionID: theirs.ID, Title: theirs.Title, Status: "live", Participants: []LiveParticipant{{ID: "p1", Role: "county", RTTMillis: 42, LossPercent: -1}}},
	})
	var ov struct{ Sessions []liveSessionView }
	other.do("GET", "/api/v1/overview", nil).want(http.StatusOK).decode(&ov)
	if len(ov.Sessions) != 1 || ov.Sessions[0].SessionID != theirs.ID {
		t.Fatalf("overview for wang.wu %+v", ov.Sessions)
	}
	if p := ov.Sessions[0].Participants[0]; p.RTTMillis == nil || *p.RTTMillis != 42 || p.LossPercent != nil {
		t.Fatalf("quality %+v", p)
	}
}

func TestRoles(t *testing.T) {
	h := newMemHarness(t)
	sup := h.account("zhang.san", "张三", rooms.RoleSupervisor)
	h.account("li.si", "李四", rooms.RoleAuditor)
	h.account("admin", "管理员", rooms.RoleAdmin)
	s := h.login("zhang.san")
	aud := h.login("li.si")
	adm := h.login("admin")
	sess := s.createSession("角色检查")
	s.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations", nil).want(http.StatusCreated)
	base := "/api/v1/sessions/" + sess.ID

	// Auditors read everything and change nothing.
	aud.do("POST", "/api/v1/sessions", sessionBody("审计不能创建")).wantError(http.StatusForbidden, CodeForbidden)
	for _, p := range []string{base, base + "/events", base + "/attendance", base + "/participants", base + "/invitations", "/api/v1/overview", "/api/v1/sessions"} {
		aud.do("GET", p, nil).want(http.StatusOK)
	}
	var invs struct{ Invitations []invitationView }
	aud.do("GET", base+"/invitations", nil).want(http.StatusOK).decode(&invs)
	if len(invs.Invitations) != 2 || invs.Invitations[0].URL != "" {
		t.Fatalf("auditor sees invitation links: %+v", invs.Invitations)
	}
	aud.do("PATCH", base, map[string]string{"title": "x"}).wantError(http.StatusForbidden, CodeForbidden)
	aud.do("POST", base+"/moderation", map[string]string{"action": "end"}).wantError(http.StatusForbidden, CodeForbidden)
	aud.do("POST", base+"/invitations", nil).wantError(http.StatusForbidden, CodeForbidden)
	aud.do("GET", base+"/join-link", nil).wantError(http.StatusForbidden, CodeForbidden)
	aud.do("GET", "/api/v1/accounts", nil).wantError(http.StatusForbidden, CodeForbidden)
	s.do("GET", "/api/v1/accounts", nil).wantError(http.StatusForbidden, CodeForbidden)
	s.do("POST", "/api/v1/accounts", map[string]string{"username": "x", "displayName": "x", "role": "admin", "password": "12345678"}).wantError(http.StatusForbidden, CodeForbidden)

	// Admins manage any session but hold none: no supervisor join link.
	adm.do("PATCH", base, map[string]string{"title": "管理员改的"}).want(http.StatusOK)
	adm.do("GET", base+"/join-link", nil).wantError(http.StatusForbidden, CodeForbidden)
	adm.do("POST", "/api/v1/sessions", sessionBody("没有主持人")).wantError(http.StatusUnprocessableEntity, CodeValidation)
	b := sessionBody("管理员安排的")
	b["supervisor"] = must(h.store.GetAccount(t.Context(), "li.si")).ID
	adm.do("POST", "/api/v1/sessions", b).wantError(http.StatusUnprocessableEntity, CodeValidation)
	b["supervisor"] = sup.ID
	var v sessionView
	adm.do("POST", "/api/v1/sessions", b).want(http.StatusCreated).decode(&v)
	if v.Supervisor != sup.ID || v.SupervisorName != "张三" {
		t.Fatalf("admin-scheduled session %+v", v)
	}
	s.do("GET", "/api/v1/sessions/"+v.ID, nil).want(http.StatusOK)
}

func TestListFilters(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	h.account("li.si", "李四", rooms.RoleAuditor)
	c := h.login("zhang.san")
	a := c.createSession("昆山督查", rooms.Unit{Code: "320583", Name: "昆山市信访局"})
	bBody := sessionBody("太仓督查", rooms.Unit{Code: "320585", Name: "太仓市信访局"})
	bBody["caseNumber"] = "苏信2026-0999"
	bBody["scheduledStart"] = t0.Add(48 * time.Hour).Format(time.RFC3339)
	bBody["scheduledEnd"] = t0.Add(49 * time.Hour).Format(time.RFC3339)
	var b sessionView
	c.do("POST", "/api/v1/sessions", bBody).want(http.StatusCreated).decode(&b)
	c.do("POST", "/api/v1/sessions/"+b.ID+"/cancel", nil).want(http.StatusOK)

	aud := h.login("li.si")
	ids := func(q string) string {
		t.Helper()
		var list struct {
			Sessions []sessionView
			More     bool
		}
		aud.do("GET", "/api/v1/sessions"+q, nil).want(http.StatusOK).decode(&list)
		var out []string
		for _, s := range list.Sessions {
			out = append(out, s.Title)
		}
		if list.More {
			out = append(out, "+more")
		}
		return strings.Join(out, ",")
	}
	for q, want := range map[string]string{
		"":                                    "昆山督查,太仓督查",
		"?status=cancelled":                   "太仓督查",
		"?status=scheduled,lobby":             "昆山督查",
		"?q=0999":                             "太仓督查",
		"?q=%E6%98%86%E5%B1%B1":               "昆山督查", // 昆山
		"?unit=320585":                        "太仓督查",
		"?unit=%E5%A4%AA%E4%BB%93":            "太仓督查", // 太仓
		"?limit=1":                            "昆山督查,+more",
		"?from=" + fmtQ(t0.Add(24*time.Hour)): "太仓督查",
		"?to=" + fmtQ(t0.Add(24*time.Hour)):   "昆山督查",
	} {
		if got := ids(q); got != want {
			t.Errorf("list%s = %s, want %s", q, got, want)
		}
	}
	for _, q := range []string{"?status=running", "?from=yesterday", "?limit=0", "?limit=501"} {
		aud.do("GET", "/api/v1/sessions"+q, nil).wantError(http.StatusUnprocessableEntity, CodeValidation)
	}
	_ = a
}

func fmtQ(t time.Time) string { return strings.ReplaceAll(t.Format(time.RFC3339), "+", "%2B") }
