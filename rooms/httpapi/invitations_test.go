package httpapi

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/signaling/token"
)

type invitationList struct {
	Invitations []invitationView `json:"invitations"`
}

func (c *client) invitations(method, sessionID string, status int) []invitationView {
	c.h.t.Helper()
	var l invitationList
	c.do(method, "/api/v1/sessions/"+sessionID+"/invitations", nil).want(status).decode(&l)
	return l.Invitations
}

func byUnit(invs []invitationView, unit string) []invitationView {
	var out []invitationView
	for _, v := range invs {
		if v.UnitCode == unit {
			out = append(out, v)
		}
	}
	return out
}

func TestInvitationsIssueListRevoke(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("邀请测试")

	issued := c.invitations("POST", sess.ID, http.StatusCreated)
	if len(issued) != 2 {
		t.Fatalf("issued %+v", issued)
	}
	wantFrom, wantUntil := t0.Add(30*time.Minute), t0.Add(2*time.Hour)
	for i, v := range issued {
		unit := sess.InvitedUnits[i]
		if v.UnitCode != unit.Code || v.UnitName != unit.Name || !v.New || v.Status != InvitationNotYetValid ||
			!v.ValidFrom.Equal(wantFrom) || !v.ValidUntil.Equal(wantUntil) || v.URL == "" {
			t.Fatalf("invitation %d: %+v", i, v)
		}
	}
	// The link's token names the session, the unit and the invitation, and
	// is valid until two hours after the end.
	h.clk.Advance(30 * time.Minute)
	cl, err := h.tokenOf(issued[0].URL, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := token.Claims{Room: sess.ID, Identity: "320583", Name: "昆山市信访局", Role: token.RoleCounty,
		ExpiresAt: wantUntil.Add(DefaultLinkOverrun), ID: issued[0].ID, Invitation: issued[0].ID, Unit: "320583"}
	// No not-before beyond the issue time: the window is the invitation's.
	if cl.NotBefore.After(h.clk.Now()) || !cl.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("token times nbf %v exp %v", cl.NotBefore, cl.ExpiresAt)
	}
	cl.NotBefore, cl.ExpiresAt = want.NotBefore, want.ExpiresAt
	if cl != want {
		t.Fatalf("claims %+v\nwant %+v", cl, want)
	}
	if got := must(h.store.GetInvitation(t.Context(), cl.Invitation)); rooms.CheckInvitation(got, must(h.store.GetSession(t.Context(), sess.ID)), h.clk.Now()) != nil {
		t.Fatalf("fresh invitation refused: %+v", got)
	}

	// Issuing again creates nothing and lists the same ones, now valid.
	again := c.invitations("POST", sess.ID, http.StatusOK)
	if len(again) != 2 || again[0].ID != issued[0].ID || again[1].ID != issued[1].ID || again[0].New || again[0].Status != InvitationValid {
		t.Fatalf("second issue %+v", again)
	}

	// Revoke county A: its token still verifies as a signature, but the
	// invitation it names is refused.
	var rv invitationView
	c.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations/"+issued[0].ID+"/revoke", nil).want(http.StatusOK).decode(&rv)
	if rv.Status != InvitationRevoked || !rv.RevokedAt.Equal(h.clk.Now()) || rv.URL != "" {
		t.Fatalf("revoked %+v", rv)
	}
	cl, err = h.tokenOf(issued[0].URL, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	inv := must(h.store.GetInvitation(t.Context(), cl.Invitation))
	if err := rooms.CheckInvitation(inv, must(h.store.GetSession(t.Context(), sess.ID)), h.clk.Now()); !errors.Is(err, rooms.ErrRevoked) {
		t.Fatalf("revoked invitation check: %v", err)
	}
	// Revoking twice keeps the first time.
	h.clk.Advance(time.Minute)
	c.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations/"+issued[0].ID+"/revoke", nil).want(http.StatusOK).decode(&rv)
	if !rv.RevokedAt.Equal(h.clk.Now().Add(-time.Minute)) {
		t.Fatalf("second revoke moved the time: %v", rv.RevokedAt)
	}
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/invitations/"+issued[0].ID+"/qr.svg", nil).wantError(http.StatusConflict, CodeConflict)

	// A new issue replaces only A's.
	third := c.invitations("POST", sess.ID, http.StatusCreated)
	if len(third) != 2 || third[0].ID == issued[0].ID || !third[0].New || third[1].ID != issued[1].ID || third[1].New {
		t.Fatalf("re-issue %+v", third)
	}
	list := c.invitations("GET", sess.ID, http.StatusOK)
	a, b := byUnit(list, "320583"), byUnit(list, "320585")
	if len(list) != 3 || len(a) != 2 || len(b) != 1 || b[0].URL == "" {
		t.Fatalf("list %+v", list)
	}
	for _, v := range a {
		if (v.ID == issued[0].ID) != (v.Status == InvitationRevoked) || (v.URL == "") != (v.Status == InvitationRevoked) {
			t.Fatalf("unit A listed %+v", v)
		}
	}

	// The event log has the invitations and the revocation, unit-tagged.
	evs := must(h.store.ListEvents(t.Context(), sess.ID, 0, 0))
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Type)+":"+e.Data[rooms.DataUnit])
	}
	if fmt.Sprint(kinds) != "[invite:320583 invite:320585 revoke:320583 invite:320583]" {
		t.Fatalf("events %v", kinds)
	}
}

func TestRemovingUnitRevokesItsInvitation(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("撤销单位")
	issued := c.invitations("POST", sess.ID, http.StatusCreated)
	h.clk.Advance(45 * time.Minute)

	var v sessionView
	c.do("PATCH", "/api/v1/sessions/"+sess.ID, map[string]any{
		"invitedUnits": []rooms.Unit{{Code: "320583", Name: "昆山市信访局"}, {Code: "320581", Name: "常熟市信访局"}},
	}).want(http.StatusOK).decode(&v)
	if len(v.RevokedInvitations) != 1 || v.RevokedInvitations[0] != (revokedInvitation{ID: issued[1].ID, UnitCode: "320585", Reason: "unit_removed"}) {
		t.Fatalf("revoked %+v", v.RevokedInvitations)
	}
	cl, err := h.tokenOf(issued[1].URL, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	inv := must(h.store.GetInvitation(t.Context(), cl.Invitation))
	if err := rooms.CheckInvitation(inv, must(h.store.GetSession(t.Context(), sess.ID)), h.clk.Now()); !errors.Is(err, rooms.ErrRevoked) {
		t.Fatalf("removed unit's invitation: %v", err)
	}
	// The unit that stayed keeps its link.
	if inv := must(h.store.GetInvitation(t.Context(), issued[0].ID)); inv.Revoked() {
		t.Fatal("kept unit's invitation revoked")
	}
	list := c.invitations("GET", sess.ID, http.StatusOK)
	if b := byUnit(list, "320585"); len(b) != 1 || b[0].Status != InvitationRevoked || b[0].UnitName != "" {
		t.Fatalf("removed unit listed %+v", b)
	}
	// The added unit gets one on the next issue.
	next := c.invitations("POST", sess.ID, http.StatusCreated)
	if len(next) != 2 || next[1].UnitCode != "320581" || !next[1].New {
		t.Fatalf("after adding a unit %+v", next)
	}
}

func TestRescheduleRevokesLinks(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("改期")
	issued := c.invitations("POST", sess.ID, http.StatusCreated)

	// A title change leaves links alone.
	var v sessionView
	c.do("PATCH", "/api/v1/sessions/"+sess.ID, map[string]any{"title": "改期（新标题）"}).want(http.StatusOK).decode(&v)
	if len(v.RevokedInvitations) != 0 || v.Title != "改期（新标题）" {
		t.Fatalf("title change %+v", v)
	}
	res := c.do("PATCH", "/api/v1/sessions/"+sess.ID, map[string]any{"scheduledEnd": t0.Add(3 * time.Hour).Format(time.RFC3339)},
		"If-Match", `"`+strconv.FormatInt(v.Version, 10)+`"`).want(http.StatusOK)
	res.decode(&v)
	if len(v.RevokedInvitations) != 2 || v.RevokedInvitations[0].Reason != "rescheduled" {
		t.Fatalf("reschedule revoked %+v", v.RevokedInvitations)
	}
	if res.resp.Header.Get("ETag") != `"`+strconv.FormatInt(v.Version, 10)+`"` {
		t.Fatalf("ETag %q for version %d", res.resp.Header.Get("ETag"), v.Version)
	}
	next := c.invitations("POST", sess.ID, http.StatusCreated)
	if next[0].ID == issued[0].ID || !next[0].ValidUntil.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("new links %+v", next)
	}
	// A stale version is refused and changes nothing.
	c.do("PATCH", "/api/v1/sessions/"+sess.ID, map[string]any{"title": "旧版本"}, "If-Match", `"1"`).
		wantError(http.StatusPreconditionFailed, CodePreconditionFailed)
	if got := must(h.store.GetSession(t.Context(), sess.ID)); got.Title != "改期（新标题）" {
		t.Fatalf("stale PATCH stored: %q", got.Title)
	}
}

func TestPatchRules(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("修改规则")
	base := "/api/v1/sessions/" + sess.ID
	c.do("PATCH", base, map[string]any{"scheduledEnd": t0.Add(30 * time.Minute).Format(time.RFC3339)}).wantError(http.StatusUnprocessableEntity, CodeValidation)
	c.do("PATCH", base, map[string]any{"recording": false}).want(http.StatusOK)
	c.do("POST", base+"/moderation", map[string]string{"action": "open-lobby"}).want(http.StatusOK)
	c.do("PATCH", base, map[string]any{"recording": true}).wantError(http.StatusConflict, CodeConflict)
	c.do("POST", base+"/moderation", map[string]string{"action": "start"}).want(http.StatusOK)
	c.do("PATCH", base, map[string]any{"scheduledEnd": t0.Add(5 * time.Hour).Format(time.RFC3339)}).wantError(http.StatusConflict, CodeConflict)
	// Units can still be added while live.
	c.do("PATCH", base, map[string]any{"invitedUnits": []rooms.Unit{{Code: "320583", Name: "昆山市信访局"}, {Code: "320582", Name: "张家港市信访局"}, {Code: "320585", Name: "太仓市信访局"}}}).want(http.StatusOK)
	c.do("POST", base+"/cancel", nil).wantError(http.StatusConflict, CodeInvalidTransition)
	c.do("POST", base+"/moderation", map[string]string{"action": "end"}).want(http.StatusOK)
	c.do("PATCH", base, map[string]any{"title": "结束后"}).wantError(http.StatusConflict, CodeConflict)
	c.do("POST", base+"/invitations", nil).wantError(http.StatusConflict, CodeConflict)
	c.do("GET", base+"/join-link", nil).wantError(http.StatusConflict, CodeConflict)

	other := c.createSession("取消")
	var v sessionView
	c.do("POST", "/api/v1/sessions/"+other.ID+"/cancel", nil).want(http.StatusOK).decode(&v)
	if v.Status != rooms.StatusCancelled || v.EndedAt.IsZero() {
		t.Fatalf("cancelled %+v", v)
	}
	evs := must(h.store.ListEvents(t.Context(), other.ID, 0, 0))
	if len(evs) != 1 || evs[0].Type != EventSessionCancel || evs[0].Actor != sess.Supervisor {
		t.Fatalf("cancel events %+v", evs)
	}
	c.do("POST", "/api/v1/sessions/"+other.ID+"/cancel", nil).wantError(http.StatusConflict, CodeInvalidTransition)
}

// svgBitmap reads the modules back from the SVG the API drew.
func svgBitmap(t *testing.T, svg []byte) [][]bool {
	t.Helper()
	var doc struct {
		ViewBox string `xml:"viewBox,attr"`
		Path    struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	var n int
	if _, err := fmt.Sscanf(doc.ViewBox, "0 0 %d %d", &n, &n); err != nil || n < 21+8 {
		t.Fatalf("viewBox %q", doc.ViewBox)
	}
	bm := make([][]bool, n)
	for i := range bm {
		bm[i] = make([]bool, n)
	}
	re := regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-(\d+)z`)
	rest := re.ReplaceAllStringFunc(doc.Path.D, func(m string) string {
		p := re.FindStringSubmatch(m)
		x, _ := strconv.Atoi(p[1])
		y, _ := strconv.Atoi(p[2])
		w, _ := strconv.Atoi(p[3])
		for i := x; i < x+w; i++ {
			bm[y][i] = true
		}
		return ""
	})
	if rest != "" {
		t.Fatalf("unparsed path data %q", rest)
	}
	return bm
}

func TestInvitationQR(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("二维码")
	issued := c.invitations("POST", sess.ID, http.StatusCreated)

	res := c.do("GET", "/api/v1/sessions/"+sess.ID+"/invitations/"+issued[0].ID+"/qr.svg", nil).want(http.StatusOK)
	if ct := res.resp.Header.Get("Content-Type"); ct != "image/svg+xml" || res.resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", res.resp.Header)
	}
	// The clock has not moved, so the link is the very one the list gave;
	// the drawing must be that link's QR code, module for module.
	want := must(qrcode.New(issued[0].URL, qrcode.Medium)).Bitmap()
	got := svgBitmap(t, res.body)
	if len(got) != len(want) {
		t.Fatalf("QR size %d, want %d", len(got), len(want))
	}
	for y := range want {
		for x := range want[y] {
			if got[y][x] != want[y][x] {
				t.Fatalf("module %d,%d differs", x, y)
			}
		}
	}
	// The quiet zone is there: a scanner needs it.
	for i := range 4 {
		for x := range got {
			if got[i][x] || got[x][i] {
				t.Fatalf("dark module in the quiet zone at %d,%d", x, i)
			}
		}
	}
}

func TestLinkOverrunConfig(t *testing.T) {
	h := newMemHarness(t)
	sess := rooms.NewSession("t", "", "SUP", t0.Add(time.Hour), t0.Add(2*time.Hour), []rooms.Unit{{Code: "1", Name: "一"}}, t0)
	inv := must(rooms.NewInvitation(sess, "1", 30*time.Minute, t0))
	// Verify at a time inside every window, to read exp.
	v := token.NewVerifier(h.pub, func() time.Time { return t0.Add(90 * time.Minute) })
	for _, tc := range []struct {
		overrun time.Duration
		wantExp time.Time
	}{
		{0, t0.Add(2*time.Hour + DefaultLinkOverrun)},
		{-1, t0.Add(2 * time.Hour)},
		{10 * time.Minute, t0.Add(2*time.Hour + 10*time.Minute)},
	} {
		cfg := h.api.cfg
		cfg.LinkOverrun = tc.overrun
		link := must(must(New(cfg)).invitationURL(sess, inv))
		cl, err := v.Verify(link[strings.Index(link, "#t=")+3:], sess.ID)
		if err != nil || !cl.ExpiresAt.Equal(tc.wantExp) {
			t.Fatalf("overrun %v: exp %v (%v), want %v", tc.overrun, cl.ExpiresAt, err, tc.wantExp)
		}
	}
}
