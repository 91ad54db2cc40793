package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
	"github.com/ducha-dev/ducha/rooms/memstore"
)

type apiClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func (a *apiClient) do(method, path string, body any, out any) int {
	a.t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// The console's API runs inside the real server: sign in, schedule, invite;
// the county's link from the API gets it into the lobby; cancelling the
// session sends it home.
func TestAPISessionCancelSendsLobbyHome(t *testing.T) {
	store := memstore.New(rooms.SystemClock{})
	svc, err := accounts.New(store, accounts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(context.Background(), "zhang", "张督查", rooms.RoleSupervisor, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, store)
	jar, _ := cookiejar.New(nil)
	a := &apiClient{t: t, base: "http://" + s.addr, http: &http.Client{Jar: jar}}
	var login struct{ CSRFToken string }
	if code := a.do("POST", "/api/v1/auth/login", map[string]string{"username": "zhang", "password": "correct horse battery"}, &login); code != 200 {
		t.Fatalf("login: %d", code)
	}
	a.csrf = login.CSRFToken
	start := time.Now().Add(10 * time.Minute)
	var sess struct{ ID string }
	if code := a.do("POST", "/api/v1/sessions", map[string]any{
		"title": "督查", "caseNumber": "XF-7", "scheduledStart": start.Format(time.RFC3339),
		"scheduledEnd": start.Add(time.Hour).Format(time.RFC3339),
		"invitedUnits": []map[string]string{{"code": "140105", "name": "小店区信访局"}},
	}, &sess); code != 201 {
		t.Fatalf("create session: %d", code)
	}
	var invs struct {
		Invitations []struct{ URL string }
	}
	if code := a.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations", nil, &invs); code != 201 || len(invs.Invitations) != 1 {
		t.Fatalf("invitations: %d %+v", code, invs)
	}
	u, err := url.Parse(invs.Invitations[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimPrefix(u.Fragment, "t=")
	cty, _, err := s.dialToken(t, sess.ID, tok)
	if err != nil {
		t.Fatalf("county link from the API: %v", err)
	}
	if !cty.Lobby() {
		t.Fatal("the county did not wait in the lobby before the start")
	}
	if code := a.do("POST", "/api/v1/sessions/"+sess.ID+"/cancel", nil, nil); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	waitFor(t, 10*time.Second, "the waiting county is sent home", func() bool { return cty.ClosedReason() == "session_ended" })
	// Without the CSRF header a state change is refused.
	a.csrf = ""
	if code := a.do("POST", "/api/v1/sessions/"+sess.ID+"/invitations", nil, nil); code != 403 {
		t.Fatalf("POST without CSRF: %d, want 403", code)
	}
}
