package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
	"github.com/ducha-dev/ducha/rooms/live"
	"github.com/ducha-dev/ducha/rooms/memstore"
	"github.com/ducha-dev/ducha/rooms/redisstore"
	"github.com/ducha-dev/ducha/rooms/storetest"
	"github.com/ducha-dev/ducha/signaling/token"
)

// t0 is a Monday morning in Beijing time.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))

// fastParams keep argon2 cheap in tests; production uses the defaults.
var fastParams = accounts.Params{Time: 1, Memory: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

const testPassword = "督查密码-2026"

var errTestBadAction = errors.New("live: bad action (test)")

type modCall struct {
	session, actorID, actorHash, action, target string
}

// fakeModerator stands in for the live controller: it records calls, moves
// the session through the status machine for open-lobby/start/end like the
// real one, and reports the participants it was given.
type fakeModerator struct {
	store rooms.Store
	clock rooms.Clock

	mu       sync.Mutex
	calls    []modCall
	live     map[string][]LiveParticipant
	overview []LiveSession
	next     error // returned (once) by the next Moderate
}

func (m *fakeModerator) Moderate(ctx context.Context, sessionID string, actor rooms.Account, action, target string) error {
	m.mu.Lock()
	m.calls = append(m.calls, modCall{sessionID, actor.ID, actor.PasswordHash, action, target})
	err := m.next
	m.next = nil
	m.mu.Unlock()
	if err != nil {
		return err
	}
	to := map[string]rooms.Status{live.ActionOpenLobby: rooms.StatusLobby, live.ActionStart: rooms.StatusLive, live.ActionEnd: rooms.StatusEnded}
	if st, ok := to[action]; ok {
		now := m.clock.Now()
		_, err := m.store.UpdateSession(ctx, sessionID, func(s *rooms.Session) error { return s.Transition(st, now) })
		if err != nil {
			return err
		}
		typ := map[string]rooms.EventType{live.ActionOpenLobby: rooms.EventLobbyOpen, live.ActionStart: rooms.EventSessionStart, live.ActionEnd: rooms.EventSessionEnd}[action]
		_, err = m.store.AppendEvent(ctx, rooms.Event{SessionID: sessionID, Time: now, Actor: actor.ID, Type: typ})
		return err
	}
	return nil
}

func (m *fakeModerator) Live(sessionID string) []LiveParticipant {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[sessionID]
}

func (m *fakeModerator) Overview() []LiveSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.overview
}

func (m *fakeModerator) setNext(err error) {
	m.mu.Lock()
	m.next = err
	m.mu.Unlock()
}

func (m *fakeModerator) setLive(sessionID string, ps []LiveParticipant) {
	m.mu.Lock()
	m.live[sessionID] = ps
	m.mu.Unlock()
}

func (m *fakeModerator) setOverview(ss []LiveSession) {
	m.mu.Lock()
	m.overview = ss
	m.mu.Unlock()
}

func (m *fakeModerator) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

func (m *fakeModerator) lastCall() modCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.calls) == 0 {
		return modCall{}
	}
	return m.calls[len(m.calls)-1]
}

type harness struct {
	t        *testing.T
	srv      *httptest.Server
	api      *Server
	store    rooms.Store
	clk      *storetest.FakeClock
	svc      *accounts.Service
	mod      *fakeModerator
	verifier *token.Verifier
	pub      ed25519.PublicKey
	cookieKy []byte
}

// newHarness serves the API over real HTTP on 127.0.0.1 with store.
func newHarness(t *testing.T, store rooms.Store, clk *storetest.FakeClock) *harness {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := accounts.New(store, accounts.Options{Params: fastParams, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	mod := &fakeModerator{store: store, clock: clk, live: map[string][]LiveParticipant{}}
	ck := make([]byte, 32)
	_, _ = rand.Read(ck)
	api, err := New(Config{
		Store:        store,
		Accounts:     svc,
		Moderator:    mod,
		ErrBadAction: errTestBadAction,
		Tokens:       token.NewIssuer(key, clk.Now),
		PublicURL:    "https://ducha.example.cn/",
		CookieKey:    ck,
		Clock:        clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &harness{
		t: t, srv: srv, api: api, store: store, clk: clk, svc: svc, mod: mod,
		verifier: token.NewVerifier(key.Public().(ed25519.PublicKey), clk.Now),
		pub:      key.Public().(ed25519.PublicKey),
		cookieKy: ck,
	}
}

func newMemHarness(t *testing.T) *harness {
	clk := storetest.NewFakeClock(t0)
	return newHarness(t, memstore.New(clk), clk)
}

// redisStore opens a store with a key prefix of its own on the shared Redis
// (127.0.0.1:6379 unless DUCHA_TEST_REDIS_ADDR), deleted when the test ends.
// Under CI=true a missing Redis fails the test.
func redisStore(t *testing.T, clk rooms.Clock) rooms.Store {
	t.Helper()
	addr := os.Getenv("DUCHA_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	o := &redis.Options{Addr: addr}
	redisstore.Tune(o)
	rdb := redis.NewClient(o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s unavailable (CI=true, so this is a failure): %v", addr, err)
		}
		t.Skipf("redis at %s unavailable: %v; run `make test` to start it", addr, err)
	}
	prefix := "ducha-test:httpapi:" + rooms.NewID() + ":"
	st, err := redisstore.New(ctx, rdb, redisstore.Options{Prefix: prefix, Clock: clk})
	if err != nil {
		rdb.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close redis store: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return st
}

// account creates an account directly in the store.
func (h *harness) account(username, name string, role rooms.Role) rooms.Account {
	h.t.Helper()
	a, err := h.svc.Create(context.Background(), username, name, role, testPassword)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// client is a browser: a cookie jar and the CSRF token from sign-in.
type client struct {
	h    *harness
	http *http.Client
	csrf string
	lang string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// login signs in and fails the test unless it works.
func (h *harness) login(username string) *client {
	h.t.Helper()
	c := h.client()
	res := c.do("POST", "/api/v1/auth/login", map[string]string{"username": username, "password": testPassword})
	res.want(http.StatusOK)
	c.csrf = res.json()["csrfToken"].(string)
	return c
}

type result struct {
	t    *testing.T
	resp *http.Response
	body []byte
}

// do sends body as JSON (a string or []byte is sent as is) with the CSRF
// token on state-changing requests.
func (c *client) do(method, path string, body any, hdr ...string) *result {
	c.h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.h.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.h.srv.URL+path, rd)
	if err != nil {
		c.h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" && method != "GET" {
		req.Header.Set(CSRFHeader, c.csrf)
	}
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.h.t.Fatal(err)
	}
	return &result{t: c.h.t, resp: resp, body: b}
}

func (r *result) want(status int) *result {
	r.t.Helper()
	if r.resp.StatusCode != status {
		r.t.Fatalf("%s %s: status %d, want %d; body %s", r.resp.Request.Method, r.resp.Request.URL.Path, r.resp.StatusCode, status, r.body)
	}
	return r
}

// wantError checks status and the stable error code.
func (r *result) wantError(status int, code string) map[string]any {
	r.t.Helper()
	r.want(status)
	if ct := r.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.t.Fatalf("error content type %q", ct)
	}
	e, ok := r.json()["error"].(map[string]any)
	if !ok || e["code"] != code || e["message"] == "" {
		r.t.Fatalf("error body %s, want code %s", r.body, code)
	}
	return e
}

func (r *result) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		r.t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r *result) decode(v any) {
	r.t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		r.t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
}

// sessionBody is a valid create request starting in an hour.
func sessionBody(title string, units ...rooms.Unit) map[string]any {
	if units == nil {
		units = []rooms.Unit{{Code: "320583", Name: "昆山市信访局"}, {Code: "320585", Name: "太仓市信访局"}}
	}
	return map[string]any{
		"title":          title,
		"caseNumber":     "苏信2026-0117",
		"scheduledStart": t0.Add(time.Hour).Format(time.RFC3339),
		"scheduledEnd":   t0.Add(2 * time.Hour).Format(time.RFC3339),
		"invitedUnits":   units,
	}
}

// createSession creates a session as c and returns it.
func (c *client) createSession(title string, units ...rooms.Unit) sessionView {
	c.h.t.Helper()
	var v sessionView
	c.do("POST", "/api/v1/sessions", sessionBody(title, units...)).want(http.StatusCreated).decode(&v)
	return v
}

// tokenOf extracts and verifies the join token of a link.
func (h *harness) tokenOf(link, room string) (token.Claims, error) {
	h.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		h.t.Fatal(err)
	}
	if u.Path != "/join/"+room || !strings.HasPrefix(u.Fragment, "t=") {
		h.t.Fatalf("link %s is not a join link for %s", link, room)
	}
	return h.verifier.Verify(strings.TrimPrefix(u.Fragment, "t="), room)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("must: %v", err))
	}
	return v
}

// newRecorder serves one request in process, for handlers built outside the
// harness.
func newRecorder(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
