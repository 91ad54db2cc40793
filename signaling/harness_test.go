package signaling

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/token"
)

// Generous: the machine is shared and tests run under -race.
const waitLong = 10 * time.Second

// TestMain fails the run if goroutines outlive the tests: every connection
// must end its reader, writer and timers.
func TestMain(m *testing.M) {
	before := len(goroutines())
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(waitLong)
		for len(goroutines()) > before && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if g := goroutines(); len(g) > before {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after\n%s\n", before, len(g), strings.Join(g, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// goroutines returns the stacks of all goroutines except the testing
// machinery's own (the fuzzing engine's signal watcher).
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "os/signal.signal_recv") {
			continue
		}
		out = append(out, g)
	}
	return out
}

// fakeConf is a Conference that records what signaling asks of it.
type fakeConf struct {
	mu       sync.Mutex
	joinErr  error
	result   sfu.JoinResult
	lobby    bool // Join answers as if the participant waits in the lobby
	onJoin   func(info sfu.ParticipantInfo, n sfu.Notifier)
	errFor   func(method string) error
	sessions []*fakeSession
	joined   chan *fakeSession
}

func newFakeConf() *fakeConf { return &fakeConf{joined: make(chan *fakeSession, 16)} }

func (f *fakeConf) Join(room string, info sfu.ParticipantInfo, n Notifier) (Session, JoinResult, error) {
	f.mu.Lock()
	joinErr, res, onJoin, lobby := f.joinErr, f.result, f.onJoin, f.lobby
	f.mu.Unlock()
	if onJoin != nil {
		onJoin(info, n)
	}
	if joinErr != nil {
		return nil, JoinResult{}, joinErr
	}
	s := &fakeSession{conf: f, room: room, info: info, n: n, leaves: make(chan string, 4)}
	f.mu.Lock()
	f.sessions = append(f.sessions, s)
	f.mu.Unlock()
	f.joined <- s
	res.Self = sfu.ParticipantState{ParticipantInfo: info}
	return s, JoinResult{JoinResult: res, Lobby: lobby}, nil
}

func (f *fakeConf) err(method string) error {
	f.mu.Lock()
	fn := f.errFor
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(method)
}

func (f *fakeConf) joinCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

type fakeSession struct {
	conf   *fakeConf
	room   string
	info   sfu.ParticipantInfo
	n      Notifier
	leaves chan string

	mu    sync.Mutex
	calls []string
}

func (s *fakeSession) record(format string, args ...any) {
	s.mu.Lock()
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *fakeSession) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *fakeSession) HandleOffer(sdp string, sources map[string]string) error {
	s.record("offer %s %v", sdp, sources)
	return s.conf.err("offer")
}

func (s *fakeSession) HandleAnswer(sdp string) error {
	s.record("answer %s", sdp)
	return s.conf.err("answer")
}

func (s *fakeSession) AddCandidate(c webrtc.ICECandidateInit) error {
	s.record("candidate %s", c.Candidate)
	return s.conf.err("candidate")
}

func (s *fakeSession) SetMuted(kind string, muted bool) error {
	s.record("mute %s %v", kind, muted)
	return s.conf.err("mute")
}

func (s *fakeSession) SetVideoSize(track string, width, height int) error {
	s.record("video-size %s %dx%d", track, width, height)
	return s.conf.err("video-size")
}

func (s *fakeSession) Leave(reason string) { s.leaves <- reason }

func (s *fakeSession) Chat(text string) error {
	s.record("chat %s", text)
	return s.conf.err("chat")
}

func (s *fakeSession) Moderate(action, target string) error {
	s.record("moderate %s %s", action, target)
	return s.conf.err("moderate")
}

// waitLeave returns the reason of the next Leave call.
func (s *fakeSession) waitLeave(t *testing.T) string {
	t.Helper()
	select {
	case r := <-s.leaves:
		return r
	case <-time.After(waitLong):
		t.Fatal("Session.Leave was not called")
		return ""
	}
}

// noMoreLeaves checks that Leave was not called again.
func (s *fakeSession) noMoreLeaves(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.leaves:
		t.Fatalf("Session.Leave called again with %q", r)
	case <-time.After(200 * time.Millisecond):
	}
}

type env struct {
	t    *testing.T
	h    *Handler
	srv  *httptest.Server
	conf *fakeConf
	key  ed25519.PrivateKey
	iss  *token.Issuer
	url  string
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	conf := newFakeConf()
	cfg := Config{
		Conference: conf,
		Tokens:     token.NewVerifier(key.Public().(ed25519.PublicKey), nil),
		ICEServers: []webrtc.ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}},
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e := &env{t: t, h: h, srv: srv, conf: conf, key: key, iss: token.NewIssuer(key, nil),
		url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return e
}

// testWriter sends the handler's log to the test log, shown on failure.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) token(room, identity, role string) string {
	e.t.Helper()
	tok, err := e.iss.Issue(token.Claims{Room: room, Identity: identity, Name: "名字 " + identity, Role: role,
		ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) dialHeader(h http.Header) (*client, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitLong}
	ws, resp, err := d.Dial(e.url, h)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: e.t, ws: ws}
	e.t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

func (e *env) dial() *client {
	e.t.Helper()
	c, _, err := e.dialHeader(nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return c
}

// joinAs dials, joins and returns the client, its `joined` and the fake
// session the conference created.
func (e *env) joinAs(room, identity, role string) (*client, Joined, *fakeSession) {
	e.t.Helper()
	c := e.dial()
	c.send(TypeJoin, "j", Join{Version: 1, Room: room, Token: e.token(room, identity, role)})
	var j Joined
	c.expect(TypeJoined, &j)
	select {
	case s := <-e.conf.joined:
		return c, j, s
	case <-time.After(waitLong):
		e.t.Fatal("conference saw no join")
		return nil, Joined{}, nil
	}
}

func (c *client) send(typ, id string, data any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "id": id, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(waitLong))
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

type rawMsg struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// read returns the next message, or the error that ended the connection.
func (c *client) read() (rawMsg, error) {
	c.ws.SetReadDeadline(time.Now().Add(waitLong))
	typ, b, err := c.ws.ReadMessage()
	if err != nil {
		return rawMsg{}, err
	}
	if typ != websocket.TextMessage {
		return rawMsg{}, fmt.Errorf("frame type %d", typ)
	}
	var m rawMsg
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return rawMsg{}, fmt.Errorf("server sent %q: %v", b, err)
	}
	return m, nil
}

func (c *client) expect(typ string, into any) {
	c.t.Helper()
	m, err := c.read()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if m.Type != typ {
		c.t.Fatalf("got %s %s, want %s", m.Type, m.Data, typ)
	}
	if into != nil {
		if err := json.Unmarshal(m.Data, into); err != nil {
			c.t.Fatalf("%s data %s: %v", typ, m.Data, err)
		}
	}
}

func (c *client) expectError(code, ref string) ErrorMsg {
	c.t.Helper()
	var e ErrorMsg
	c.expect(TypeError, &e)
	if e.Code != code || e.Ref != ref {
		c.t.Fatalf("error %+v, want code %q ref %q", e, code, ref)
	}
	if e.Message == "" {
		c.t.Fatalf("error %q has no message", code)
	}
	return e
}

// expectClose reads until the connection ends and checks the close code;
// no further message may arrive first.
func (c *client) expectClose(code int) {
	c.t.Helper()
	m, err := c.read()
	if err == nil {
		c.t.Fatalf("got %s %s, want close %d", m.Type, m.Data, code)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		c.t.Fatalf("connection ended with %v, want close %d", err, code)
	}
	if ce.Code != code {
		c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
	}
}

func (c *client) ping(id string) {
	c.t.Helper()
	c.send(TypePing, id, map[string]any{})
	c.expect(TypePong, nil)
}

// waitFor polls cond; for conditions with no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
