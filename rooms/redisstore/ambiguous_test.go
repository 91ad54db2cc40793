package redisstore

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// replyDropper is a TCP proxy to Redis that, when told to, lets commands
// through but drops Redis's replies and cuts the connection: the worst kind of
// failure for a writer, which cannot know whether its write happened.
type replyDropper struct {
	l      net.Listener
	target string
	drop   atomic.Bool
	pass   atomic.Int64 // replies still let through once drop is set
	wg     sync.WaitGroup
}

func newReplyDropper(t *testing.T, target string) *replyDropper {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropper{l: l, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.wg.Wait()
	})
	return p
}

func (p *replyDropper) addr() string { return p.l.Addr().String() }

func (p *replyDropper) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Go(func() {
			_, _ = io.Copy(s, c)
			s.Close()
		})
		p.wg.Go(func() {
			defer c.Close()
			defer s.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && p.drop.Load() && p.pass.Add(-1) < 0 {
					return // the command ran; its reply is lost
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// TestAmbiguousFailure loses the replies of writes that Redis did apply. The
// store queues them as failed and replays them; the event log must still
// hold each event once, and the session update must be applied once.
func TestAmbiguousFailure(t *testing.T) {
	shared, prefix := sharedClient(t)
	proxy := newReplyDropper(t, sharedRedisAddr())
	rdb := newClient(proxy.addr())
	defer rdb.Close()
	st, err := New(context.Background(), rdb, Options{
		Prefix: prefix, Logger: testLogger(t), MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sess, err := st.CreateSession(ctx, rooms.NewSession("督查", "XF-1", "sup", t0, t0.Add(time.Hour), nil, t0))
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.AppendEvent(ctx, rooms.Event{SessionID: sess.ID, Type: rooms.EventLobbyOpen, Time: t0})
	if err != nil || first.Seq != 1 {
		t.Fatalf("first event: %+v, %v", first, err)
	}

	proxy.drop.Store(true)
	lost, err := st.AppendEvent(ctx, rooms.Event{SessionID: sess.ID, Type: rooms.EventSessionStart, Time: t0.Add(time.Minute)})
	if err != nil {
		t.Fatalf("append with a lost reply: %v", err)
	}
	if lost.Seq != 0 || st.Healthy() {
		t.Fatalf("a lost reply was taken as success: %+v healthy=%v", lost, st.Healthy())
	}
	// The write did reach Redis (seen directly, not through the proxy).
	if n, err := shared.XLen(ctx, st.k.events(sess.ID)).Result(); err != nil || n != 2 {
		t.Fatalf("stream length seen directly %d, %v; want 2 (the write went through)", n, err)
	}
	proxy.drop.Store(false)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListEvents(ctx, sess.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[1].ID != lost.ID || evs[1].Seq != 2 {
		t.Fatalf("log after replay: %+v, want the lost-reply event once at seq 2", evs)
	}

	// Now a session update whose EXEC reply is lost: WATCH and GET replies
	// pass, the transaction runs, its reply is dropped. The update appends to
	// the title, which is not idempotent: replaying it blindly would append
	// twice.
	proxy.pass.Store(2)
	proxy.drop.Store(true)
	up, err := st.UpdateSession(ctx, sess.ID, func(s *rooms.Session) error {
		s.Title += "（补）"
		return nil
	})
	if err != nil {
		t.Fatalf("update with a lost reply: %v", err)
	}
	if st.Healthy() {
		t.Fatal("lost EXEC reply not noticed")
	}
	raw, err := shared.Get(ctx, st.k.session(sess.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	applied, _, _ := decode[rooms.Session](raw)
	if applied.Version != sess.Version+1 {
		t.Fatalf("the transaction did not run before its reply was lost (version %d); the test proxy needs a look", applied.Version)
	}
	proxy.drop.Store(false)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fresh, err := New(ctx, shared, Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	got, err := fresh.GetSession(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "督查（补）" || got.Version != sess.Version+1 || got.Version != up.Version {
		t.Fatalf("after replay: version %d title %q; want version %d and the suffix once", got.Version, got.Title, sess.Version+1)
	}
	if f := st.Stats().Failed; f != 0 {
		t.Fatalf("%d queued writes refused", f)
	}
}
