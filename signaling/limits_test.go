package signaling

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/token"
)

// steppingClock advances by step at every reading: each message the server
// reads happens step after the previous one, with no sleeping.
func steppingClock(step time.Duration) func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)-1) * step) }
}

func TestFrameSizeLimit(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	// Exactly 512 KiB is allowed.
	prefix, suffix := `{"type":"ping","id":"big","data":{"pad":"`, `"}}`
	exact := prefix + strings.Repeat("x", 512<<10-len(prefix)-len(suffix)) + suffix
	if len(exact) != 512<<10 {
		t.Fatalf("built %d bytes", len(exact))
	}
	c.sendRaw(exact)
	c.expect(TypePong, nil)
	// One byte more is not.
	over := prefix + strings.Repeat("x", 512<<10-len(prefix)-len(suffix)+1) + suffix
	c.sendRaw(over)
	c.expectError(CodeMessageTooLarge, "")
	c.expectClose(websocket.CloseMessageTooBig)
}

// A frame far beyond the limit is refused without reading it all.
func TestHugeFrameRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.MaxMessageBytes = 1024 })
	c := e.dial()
	done := make(chan error, 1)
	go func() {
		c.ws.SetWriteDeadline(time.Now().Add(waitLong))
		done <- c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("y", 8<<20)))
	}()
	c.expectError(CodeMessageTooLarge, "")
	c.expectClose(websocket.CloseMessageTooBig)
	<-done // may fail: the server stops reading
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Now = steppingClock(250 * time.Millisecond)
		c.Limits.MessagesPerSecond = 1
		c.Limits.Burst = 2
		c.Limits.FloodClose = time.Hour
	})
	c := e.dial()
	for i := 1; i <= 9; i++ {
		c.send(TypePing, "", map[string]any{})
	}
	// Clock readings: 0 at connect, then +0.25 s per message, each adding
	// 0.25 token to a bucket of 2. Refused: messages 3, 4, 6, 7, 8. One
	// error per second of flooding at most: for 3 (flood starts) and 7.
	want := []string{TypePong, TypePong, CodeRateLimited, TypePong, CodeRateLimited, TypePong}
	for _, w := range want {
		if w == CodeRateLimited {
			c.expectError(CodeRateLimited, "")
		} else {
			c.expect(w, nil)
		}
	}
	if st := e.h.Stats(); st.RateLimited != 5 || st.MessagesIn != 9 {
		t.Fatalf("stats %+v, want 5 of 9 messages rate limited", st)
	}
}

func TestPersistentFloodCloses(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Now = steppingClock(500 * time.Millisecond)
		c.Limits.MessagesPerSecond = 0.001
		c.Limits.Burst = 1
		c.Limits.FloodClose = 3 * time.Second
		c.Limits.FloodGap = time.Second
	})
	c := e.dial()
	c.ping("first") // t=0.5: the one token
	for i := 0; i < 10; i++ {
		c.send(TypePing, "", map[string]any{})
	}
	// Refusals at t=1.0 ... ; errors reported at 1.0, 2.0, 3.0; at t=4.0
	// the flood has lasted 3 s.
	for i := 0; i < 3; i++ {
		c.expectError(CodeRateLimited, "")
	}
	c.expectError(CodeRateLimited, "")
	c.expectClose(CloseRateLimited)
}

func TestFloodGapEndsFlood(t *testing.T) {
	f := flood{gap: time.Second, limit: 3 * time.Second, errEvery: time.Second}
	t0 := time.Unix(0, 0)
	for _, at := range []time.Duration{0, 900 * time.Millisecond, 1800 * time.Millisecond} {
		if v := f.refused(t0.Add(at)); v.close {
			t.Fatalf("closed at %v", at)
		}
	}
	// A pause of a full gap starts a new flood: no close at 3.5 s.
	if v := f.refused(t0.Add(2800 * time.Millisecond)); v.close {
		t.Fatal("closed before the limit")
	}
	if v := f.refused(t0.Add(3800 * time.Millisecond)); !v.report || v.close {
		t.Fatalf("after a 1 s pause: %+v, want a new flood reported", v)
	}
	if v := f.refused(t0.Add(6800 * time.Millisecond)); v.close {
		t.Fatalf("refusal 3 s apart counted as continuous: %+v", v)
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	b := newBucket(50, 200, t0)
	for i := 0; i < 200; i++ {
		if !b.allow(t0) {
			t.Fatalf("burst refused at %d", i)
		}
	}
	if b.allow(t0) {
		t.Fatal("201st message allowed with no time passing")
	}
	if !b.allow(t0.Add(20*time.Millisecond)) || b.allow(t0.Add(20*time.Millisecond)) {
		t.Fatal("20 ms at 50/s should give exactly one token")
	}
	// A clock going backwards gives nothing and takes nothing.
	if b.allow(t0) {
		t.Fatal("backwards clock refilled the bucket")
	}
	if !b.allow(t0.Add(time.Hour)) {
		t.Fatal("no token after an hour")
	}
}

func TestOrigin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://Ducha.Example.cn"} })
	host := strings.TrimPrefix(e.srv.URL, "http://")
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://" + host, true},
		{"https://ducha.example.cn", true},
		{"http://evil.example", false},
		{"https://ducha.example.cn.evil.example", false},
		{"http://127.0.0.1:1", false},
		{"null", false},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, resp, err := e.dialHeader(h)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			c.ping("p")
			c.ws.Close()
			continue
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: err %v resp %v, want 403", tc.origin, err, resp)
		}
	}
	if st := e.h.Stats(); st.OriginRefused != 4 {
		t.Errorf("OriginRefused = %d", st.OriginRefused)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Conference: newFakeConf(), Tokens: nopVerifier{}}
	for name, cfg := range map[string]Config{
		"no conference":  {Tokens: nopVerifier{}},
		"no tokens":      {Conference: newFakeConf()},
		"bad origin":     {Conference: ok.Conference, Tokens: ok.Tokens, AllowedOrigins: []string{"ducha.example.cn"}},
		"origin path":    {Conference: ok.Conference, Tokens: ok.Tokens, AllowedOrigins: []string{"https://a.cn/ws"}},
		"negative limit": {Conference: ok.Conference, Tokens: ok.Tokens, Limits: Limits{Burst: -1}},
		"idle <= ping":   {Conference: ok.Conference, Tokens: ok.Tokens, Limits: Limits{PingInterval: time.Minute}},
	} {
		if _, err := NewHandler(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
	if _, err := NewHandler(ok); err != nil {
		t.Fatal(err)
	}
}

func TestKeepalive(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.PingInterval = 200 * time.Millisecond
		c.Limits.IdleTimeout = 1500 * time.Millisecond
	})
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	var pings atomic.Int32
	c.ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	// Answering pings (they are answered while reading) keeps the
	// connection open well past IdleTimeout, with no data sent.
	c.ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _, err := c.ws.ReadMessage()
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read ended with %v, want our own timeout", err)
	}
	if n := pings.Load(); n < 5 {
		t.Fatalf("%d pings in 3 s at 200 ms", n)
	}
	// The client's reads are now broken (a gorilla timeout is final); a
	// silent client is closed as idle.
	if r := s.waitLeave(t); r != ReasonDisconnected {
		t.Fatalf("Leave(%q)", r)
	}
	waitFor(t, "idle close", func() bool { return e.h.Stats().ConnectionsOpen == 0 })
}

// A client that sends nothing and does not read (so answers no ping) is
// closed with 1001 once IdleTimeout passes.
func TestIdleClose(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.PingInterval = 200 * time.Millisecond
		c.Limits.IdleTimeout = 500 * time.Millisecond
	})
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	if r := s.waitLeave(t); r != ReasonDisconnected {
		t.Fatalf("Leave(%q)", r)
	}
	// The server has closed the socket: answering its queued pings fails,
	// which must not hide the close frame behind them.
	c.ws.SetPingHandler(func(string) error { return nil })
	// Reading now: the queued pings are answered too late, then the close.
	var closeErr *websocket.CloseError
	for {
		_, _, err := c.ws.ReadMessage()
		if err != nil {
			if !errors.As(err, &closeErr) || closeErr.Code != websocket.CloseGoingAway {
				t.Fatalf("ended with %v, want close 1001", err)
			}
			break
		}
	}
}

func TestJoinTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.JoinTimeout = 2 * time.Second })
	c := e.dial()
	c.ping("not-a-join")
	c.expectError(CodeJoinTimeout, "")
	c.expectClose(CloseJoinTimeout)
	// A joined connection is not affected.
	j, _, _ := e.joinAs("r", "u", sfu.RoleCounty)
	time.Sleep(2500 * time.Millisecond)
	j.ping("alive")
}

func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.OutboundQueue = 16
		c.Limits.WriteTimeout = waitLong
	})
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	big := strings.Repeat("s", 64<<10)
	start := time.Now()
	for e.h.Stats().SlowConsumers == 0 {
		if time.Since(start) > waitLong {
			t.Fatal("queue never overflowed")
		}
		s.n.Offer(big) // must never block, however slow the client
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("notifier calls took %v", d)
	}
	var offers int
	for {
		m, err := c.read()
		if err == nil {
			if m.Type != TypeOffer {
				t.Fatalf("got %s", m.Type)
			}
			offers++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("ended with %v after %d offers, want close 1008", err, offers)
		}
		break
	}
	if r := s.waitLeave(t); r != ReasonDisconnected {
		t.Fatalf("Leave(%q)", r)
	}
	s.n.Offer(big) // after the end: ignored, no panic
	if st := e.h.Stats(); st.SlowConsumers != 1 {
		t.Fatalf("SlowConsumers = %d", st.SlowConsumers)
	}
}

// One client floods and sends garbage until it is thrown out; another in
// the same room carries on undisturbed.
func TestMisbehavingClientDoesNotAffectOthers(t *testing.T) {
	e := newEnv(t, nil)
	bad, _, badSess := e.joinAs("r", "bad", sfu.RoleCounty)
	good, _, goodSess := e.joinAs("r", "good", sfu.RoleCounty)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 150; i++ {
			goodSess.n.ParticipantUpdated(sfu.ParticipantState{ParticipantInfo: sfu.ParticipantInfo{ID: "Px"}})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// The flood: valid pings as fast as possible, until the server says
	// rate_limited. The reader runs beside the sender so that the server's
	// pongs never back up.
	limitedSeen := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		for {
			m, err := bad.read()
			if err != nil {
				readErr <- err
				return
			}
			if m.Type == TypeError {
				close(limitedSeen)
				readErr <- nil
				return
			}
		}
	}()
	sent := 0
flood:
	for ; sent < 5000; sent++ {
		select {
		case <-limitedSeen:
			break flood
		default:
		}
		bad.send(TypePing, "", map[string]any{})
	}
	if err := <-readErr; err != nil {
		t.Fatalf("flooding client: %v after %d messages", err, sent)
	}
	if st := e.h.Stats(); st.RateLimited == 0 {
		t.Fatalf("rate_limited sent but nothing counted")
	}
	// ... then, once the bucket has refilled (garbage that is rate limited
	// is never parsed), garbage until it is closed.
	time.Sleep(time.Second)
	for i := 0; i < 20; i++ {
		bad.sendRaw(`{"type":`)
	}
	for {
		if _, err := bad.read(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && (ce.Code == CloseProtocol || ce.Code == CloseRateLimited) {
				break
			}
			t.Fatalf("bad client ended with %v", err)
		}
	}
	badSess.waitLeave(t)
	wg.Wait()
	updates := 0
	for updates < 150 {
		m, err := good.read()
		if err != nil {
			t.Fatalf("good client lost after %d updates: %v", updates, err)
		}
		if m.Type != TypeParticipantUpdated {
			t.Fatalf("good client got %s", m.Type)
		}
		updates++
	}
	good.ping("alive")
	select {
	case r := <-goodSess.leaves:
		t.Fatalf("good session left: %s", r)
	default:
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	joined, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	waiting := e.dial()
	waiting.ping("p")
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.h.Shutdown(ctx) }()
	for _, c := range []*client{joined, waiting} {
		var cl Closed
		c.expect(TypeClosed, &cl)
		if cl.Reason != ReasonServerShutdown {
			t.Fatalf("closed %+v", cl)
		}
		c.expectClose(websocket.CloseGoingAway)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := s.waitLeave(t); r != ReasonDisconnected {
		t.Fatalf("Leave(%q)", r)
	}
	if st := e.h.Stats(); st.ConnectionsOpen != 0 {
		t.Fatalf("ConnectionsOpen = %d after Shutdown", st.ConnectionsOpen)
	}
	_, resp, err := e.dialHeader(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v", err, resp)
	}
}

// A client that never reads its close frame cannot hold Shutdown past its
// context.
func TestShutdownContextBoundsWait(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.CloseGrace = time.Minute
		c.Limits.WriteTimeout = time.Minute
	})
	c := e.dial()
	c.ping("p")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.h.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrShutdown) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	waitFor(t, "connection cut", func() bool { return e.h.Stats().ConnectionsOpen == 0 })
}

type nopVerifier struct{}

func (nopVerifier) Verify(string, string) (token.Claims, error) {
	return token.Claims{}, errors.New("no")
}
