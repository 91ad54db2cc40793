package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func TestAccountsAPI(t *testing.T) {
	h := newMemHarness(t)
	h.account("admin", "管理员", rooms.RoleAdmin)
	adm := h.login("admin")

	var a adminAccountView
	res := adm.do("POST", "/api/v1/accounts", map[string]string{"username": " Wang.Wu ", "displayName": " 王五 ", "role": "auditor", "password": "审计密码-2026"})
	res.want(http.StatusCreated).decode(&a)
	if a.Username != "wang.wu" || a.DisplayName != "王五" || a.Role != rooms.RoleAuditor || a.ID == "" {
		t.Fatalf("created %+v", a)
	}
	if strings.Contains(string(res.body), "argon2") || strings.Contains(string(res.body), "passwordHash") {
		t.Fatalf("hash leaked: %s", res.body)
	}
	h.client().do("POST", "/api/v1/auth/login", map[string]string{"username": "wang.wu", "password": "审计密码-2026"}).want(http.StatusOK)

	e := adm.do("POST", "/api/v1/accounts", map[string]string{"username": "WANG.WU", "displayName": "x", "role": "auditor", "password": "long-enough-1"}).
		wantError(http.StatusConflict, CodeConflict)
	if e["field"] != "username" {
		t.Fatalf("conflict field %v", e["field"])
	}
	for field, body := range map[string]map[string]string{
		"username":    {"username": "王五", "displayName": "x", "role": "auditor", "password": "long-enough-1"},
		"displayName": {"username": "a", "displayName": "", "role": "auditor", "password": "long-enough-1"},
		"role":        {"username": "a", "displayName": "x", "role": "county", "password": "long-enough-1"},
		"password":    {"username": "a", "displayName": "x", "role": "auditor", "password": "short"},
	} {
		if e := adm.do("POST", "/api/v1/accounts", body).wantError(http.StatusUnprocessableEntity, CodeValidation); e["field"] != field {
			t.Errorf("bad %s: field %v", field, e["field"])
		}
	}

	// A locked account shows as locked, and a reset lifts it.
	for range 5 {
		h.client().do("POST", "/api/v1/auth/login", map[string]string{"username": "wang.wu", "password": "wrong-password"})
	}
	var list struct{ Accounts []adminAccountView }
	adm.do("GET", "/api/v1/accounts", nil).want(http.StatusOK).decode(&list)
	if len(list.Accounts) != 2 || list.Accounts[1].Username != "wang.wu" || !list.Accounts[1].LockedUntil.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("list %+v", list.Accounts)
	}
	adm.do("POST", "/api/v1/accounts/wang.wu/password", map[string]string{"password": "新密码-2026-3"}).want(http.StatusOK).decode(&a)
	if !a.LockedUntil.IsZero() {
		t.Fatalf("still locked %+v", a)
	}
	h.client().do("POST", "/api/v1/auth/login", map[string]string{"username": "wang.wu", "password": "新密码-2026-3"}).want(http.StatusOK)
}
