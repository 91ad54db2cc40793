package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func sessionCookie(t *testing.T, res *result) *http.Cookie {
	t.Helper()
	for _, c := range res.resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie set; headers %v", CookieName, res.resp.Header)
	return nil
}

func TestLogin(t *testing.T) {
	h := newMemHarness(t)
	a := h.account("Zhang.San", "张三", rooms.RoleSupervisor)

	c := h.client()
	res := c.do("POST", "/api/v1/auth/login", map[string]string{"username": " ZHANG.SAN ", "password": testPassword}).want(http.StatusOK)
	var got authResponse
	res.decode(&got)
	if got.Account != (accountView{ID: a.ID, Username: "zhang.san", DisplayName: "张三", Role: rooms.RoleSupervisor}) {
		t.Fatalf("account %+v", got.Account)
	}
	if len(got.CSRFToken) < 40 || !got.ExpiresAt.Equal(t0.Add(12*time.Hour)) {
		t.Fatalf("csrf %q expires %v", got.CSRFToken, got.ExpiresAt)
	}
	if strings.Contains(string(res.body), "passwordHash") || strings.Contains(string(res.body), "argon2") {
		t.Fatalf("login answer leaks the hash: %s", res.body)
	}
	ck := sessionCookie(t, res)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" || ck.MaxAge != 12*3600 {
		t.Fatalf("cookie attributes %+v", ck)
	}
	c.csrf = got.CSRFToken
	var me authResponse
	c.do("GET", "/api/v1/auth/me", nil).want(http.StatusOK).decode(&me)
	if me.Account.ID != a.ID || me.CSRFToken != got.CSRFToken {
		t.Fatalf("me %+v", me)
	}

	// Wrong password, unknown user: the same answer.
	for _, body := range []map[string]string{
		{"username": "zhang.san", "password": "wrong-password"},
		{"username": "nobody", "password": testPassword},
	} {
		res := h.client().do("POST", "/api/v1/auth/login", body)
		res.wantError(http.StatusUnauthorized, CodeBadCredentials)
		for _, ck := range res.resp.Cookies() {
			if ck.Name == CookieName && ck.Value != "" {
				t.Fatal("failed sign-in set a cookie")
			}
		}
	}
	h.client().do("POST", "/api/v1/auth/login", map[string]string{"username": "zhang.san"}).wantError(http.StatusUnprocessableEntity, CodeValidation)
}

func TestLoginLockout(t *testing.T) {
	h := newMemHarness(t)
	h.account("li.si", "李四", rooms.RoleAuditor)
	wrong := map[string]string{"username": "li.si", "password": "wrong-password"}
	// One failure is forgotten after a success: the count is of failures in
	// a row.
	h.client().do("POST", "/api/v1/auth/login", wrong).wantError(http.StatusUnauthorized, CodeBadCredentials)
	h.login("li.si")
	for i := 1; i <= 4; i++ {
		h.client().do("POST", "/api/v1/auth/login", wrong).wantError(http.StatusUnauthorized, CodeBadCredentials)
	}
	res := h.client().do("POST", "/api/v1/auth/login", wrong)
	res.wantError(http.StatusLocked, CodeAccountLocked)
	if ra := res.resp.Header.Get("Retry-After"); ra != strconv.Itoa(15*60) {
		t.Fatalf("Retry-After %q, want 900", ra)
	}
	// The right password is refused while locked, with the time left.
	h.clk.Advance(10 * time.Minute)
	res = h.client().do("POST", "/api/v1/auth/login", map[string]string{"username": "li.si", "password": testPassword})
	res.wantError(http.StatusLocked, CodeAccountLocked)
	if ra := res.resp.Header.Get("Retry-After"); ra != strconv.Itoa(5*60) {
		t.Fatalf("Retry-After %q, want 300", ra)
	}
	h.clk.Advance(5 * time.Minute)
	h.login("li.si")
}

func TestCSRF(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	body := sessionBody("CSRF 检查")
	c.do("POST", "/api/v1/sessions", body, CSRFHeader, "").wantError(http.StatusForbidden, CodeCSRF)
	// A token with its first character changed (to "x", or to "y" if it
	// was an "x": a random token starts with "x" now and then, and then
	// the "changed" one was the real one).
	forged := "x" + c.csrf[1:]
	if c.csrf[0] == 'x' {
		forged = "y" + c.csrf[1:]
	}
	c.do("POST", "/api/v1/sessions", body, CSRFHeader, forged).wantError(http.StatusForbidden, CodeCSRF)
	// Another sign-in's token does not fit this cookie.
	other := h.login("zhang.san")
	c.do("POST", "/api/v1/sessions", body, CSRFHeader, other.csrf).wantError(http.StatusForbidden, CodeCSRF)
	sess := c.createSession("CSRF 检查")
	c.do("PATCH", "/api/v1/sessions/"+sess.ID, map[string]string{"title": "x"}, CSRFHeader, "").wantError(http.StatusForbidden, CodeCSRF)
	c.do("POST", "/api/v1/sessions/"+sess.ID+"/cancel", nil, CSRFHeader, "").wantError(http.StatusForbidden, CodeCSRF)
	// Reads need no token.
	c.do("GET", "/api/v1/sessions/"+sess.ID, nil, CSRFHeader, "").want(http.StatusOK)

	// Logout needs it too, then the cookie is gone.
	c.do("POST", "/api/v1/auth/logout", nil, CSRFHeader, "").wantError(http.StatusForbidden, CodeCSRF)
	c.do("GET", "/api/v1/auth/me", nil).want(http.StatusOK)
	res := c.do("POST", "/api/v1/auth/logout", nil).want(http.StatusNoContent)
	if ck := sessionCookie(t, res); ck.MaxAge >= 0 || ck.Value != "" {
		t.Fatalf("logout cookie %+v", ck)
	}
	c.do("GET", "/api/v1/auth/me", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
}

func TestUnauthenticated(t *testing.T) {
	h := newMemHarness(t)
	sup := h.account("zhang.san", "张三", rooms.RoleSupervisor)
	c := h.login("zhang.san")
	sess := c.createSession("令牌检查")

	anon := h.client()
	for _, path := range []string{"/api/v1/auth/me", "/api/v1/sessions", "/api/v1/sessions/" + sess.ID, "/api/v1/overview", "/api/v1/accounts"} {
		anon.do("GET", path, nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	}
	anon.do("POST", "/api/v1/sessions", sessionBody("x")).wantError(http.StatusUnauthorized, CodeUnauthenticated)

	// A valid join token (county or even supervisor) never opens the API,
	// as a cookie or as a bearer token.
	var inv struct{ Invitations []invitationView }
	c.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations", nil).want(http.StatusCreated).decode(&inv)
	countyTok := strings.SplitN(inv.Invitations[0].URL, "#t=", 2)[1]
	var link struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	c.do("GET", "/api/v1/sessions/"+sess.ID+"/join-link", nil).want(http.StatusOK).decode(&link)
	supTok := strings.SplitN(link.URL, "#t=", 2)[1]
	// County links open 30 minutes before the start.
	h.clk.Advance(31 * time.Minute)
	for _, tok := range []string{countyTok, supTok} {
		if _, err := h.verifier.Verify(tok, sess.ID); err != nil {
			t.Fatalf("test token does not verify: %v", err)
		}
		for _, path := range []string{"/api/v1/sessions/" + sess.ID, "/api/v1/sessions/" + sess.ID + "/participants", "/api/v1/auth/me"} {
			anon.do("GET", path, nil, "Cookie", CookieName+"="+tok).wantError(http.StatusUnauthorized, CodeUnauthenticated)
			anon.do("GET", path, nil, "Authorization", "Bearer "+tok).wantError(http.StatusUnauthorized, CodeUnauthenticated)
		}
		anon.do("POST", "/api/v1/sessions/"+sess.ID+"/moderation", map[string]string{"action": "end"},
			"Cookie", CookieName+"="+tok, CSRFHeader, "x").wantError(http.StatusUnauthorized, CodeUnauthenticated)
	}

	// A cookie signed with another key, or tampered with, is refused.
	forged := cookieCodec{key: []byte(strings.Repeat("k", 32))}
	v := must(forged.encode(cookieSession{V: 1, Sub: sup.ID, Role: rooms.RoleAdmin, Exp: t0.Add(time.Hour).Unix(), CSRF: "c", PW: "p"}))
	anon.do("GET", "/api/v1/auth/me", nil, "Cookie", CookieName+"="+v).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	real := cookieCodec{key: h.cookieKy}
	good := must(real.encode(cookieSession{V: 1, Sub: sup.ID, Role: rooms.RoleSupervisor, Exp: t0.Add(time.Hour).Unix(), CSRF: "c",
		PW: real.passwordFingerprint(must(h.store.GetAccount(context.Background(), "zhang.san")).PasswordHash)}))
	anon.do("GET", "/api/v1/auth/me", nil, "Cookie", CookieName+"="+good).want(http.StatusOK)
	payload, sig, _ := strings.Cut(good, ".")
	anon.do("GET", "/api/v1/auth/me", nil, "Cookie", CookieName+"="+payload[:len(payload)-2]+"xx."+sig).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	// Claiming a role the account does not have fails even when signed.
	admin := must(real.encode(cookieSession{V: 1, Sub: sup.ID, Role: rooms.RoleAdmin, Exp: t0.Add(time.Hour).Unix(), CSRF: "c",
		PW: real.passwordFingerprint(must(h.store.GetAccount(context.Background(), "zhang.san")).PasswordHash)}))
	anon.do("GET", "/api/v1/accounts", nil, "Cookie", CookieName+"="+admin).wantError(http.StatusUnauthorized, CodeUnauthenticated)

	// Twelve hours later the sign-in has expired.
	h.clk.Advance(12 * time.Hour)
	c.do("GET", "/api/v1/auth/me", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
}

func TestPasswordResetEndsSignIns(t *testing.T) {
	h := newMemHarness(t)
	h.account("admin", "管理员", rooms.RoleAdmin)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	admin := h.login("admin")
	sup := h.login("zhang.san")
	sup.do("GET", "/api/v1/auth/me", nil).want(http.StatusOK)
	admin.do("POST", "/api/v1/accounts/zhang.san/password", map[string]string{"password": "短"}).wantError(http.StatusUnprocessableEntity, CodeValidation)
	admin.do("POST", "/api/v1/accounts/nobody/password", map[string]string{"password": "long-enough-1"}).wantError(http.StatusNotFound, CodeNotFound)
	admin.do("POST", "/api/v1/accounts/zhang.san/password", map[string]string{"password": "新的密码-2026"}).want(http.StatusOK)
	sup.do("GET", "/api/v1/auth/me", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	h.client().do("POST", "/api/v1/auth/login", map[string]string{"username": "zhang.san", "password": "新的密码-2026"}).want(http.StatusOK)
}

func TestSecureCookieAndLanguage(t *testing.T) {
	h := newMemHarness(t)
	h.account("zhang.san", "张三", rooms.RoleSupervisor)
	secure, err := New(Config{
		Store: h.store, Accounts: h.svc, Moderator: h.mod, Tokens: h.api.cfg.Tokens,
		PublicURL: "https://ducha.example.cn", CookieKey: h.cookieKy, SecureCookies: true, Clock: h.clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(secure, "POST", "/api/v1/auth/login", `{"username":"zhang.san","password":"`+testPassword+`"}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Set-Cookie"), "; Secure") {
		t.Fatalf("secure login: %d %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}

	c := h.client()
	e := c.do("GET", "/api/v1/sessions", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated)
	if e["message"] != "请先登录" {
		t.Fatalf("default message %q, want Chinese", e["message"])
	}
	c.lang = "en-GB,en;q=0.9,zh-CN;q=0.5"
	if e := c.do("GET", "/api/v1/sessions", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated); e["message"] != "sign in first" {
		t.Fatalf("English message %q", e["message"])
	}
	c.lang = "zh-CN,en;q=0.5"
	if e := c.do("GET", "/api/v1/sessions", nil).wantError(http.StatusUnauthorized, CodeUnauthenticated); e["message"] != "请先登录" {
		t.Fatalf("zh-first message %q", e["message"])
	}
}

func TestNewValidatesConfig(t *testing.T) {
	h := newMemHarness(t)
	good := Config{Store: h.store, Accounts: h.svc, Moderator: h.mod, Tokens: h.api.cfg.Tokens, PublicURL: "http://127.0.0.1:8080", CookieKey: h.cookieKy}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no store":     func(c *Config) { c.Store = nil },
		"no accounts":  func(c *Config) { c.Accounts = nil },
		"no moderator": func(c *Config) { c.Moderator = nil },
		"no tokens":    func(c *Config) { c.Tokens = nil },
		"short key":    func(c *Config) { c.CookieKey = c.CookieKey[:31] },
		"relative URL": func(c *Config) { c.PublicURL = "/join" },
		"ftp URL":      func(c *Config) { c.PublicURL = "ftp://h" },
		"empty URL":    func(c *Config) { c.PublicURL = "" },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
