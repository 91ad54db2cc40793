package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/live"
	"github.com/ducha-dev/ducha/rooms/redisstore"
	"github.com/ducha-dev/ducha/rooms/redisstore/redistest"
	"github.com/ducha-dev/ducha/sfu"
)

func metricValue(t *testing.T, addr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// Redis goes away in the middle of a live session: media keeps flowing,
// nobody is dropped, /metrics says so, and every state change made while
// it was down is in the event log once it is back.
func TestRedisOutageMidSession(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	store, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: "ducha-test:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() }) // after the server (cleanups run last-in first-out)
	now := time.Now()
	units := []rooms.Unit{{Code: "140105", Name: "小店区信访局"}}
	sess := rooms.NewSession("督查", "XF-1", "acc-sup", now.Add(-time.Minute), now.Add(time.Hour), units, now)
	if err := sess.Transition(rooms.StatusLive, now); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	inv, _ := rooms.NewInvitation(sess, "140105", 30*time.Minute, now)
	if _, err := store.CreateInvitation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, store)

	sup, supRx, err := s.dialToken(t, sess.ID, s.token(t, sess.ID, "acc-sup", sfu.RoleSupervisor, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cty, _, err := s.dialToken(t, sess.ID, s.countyToken(t, sess, inv, "小店区信访局"))
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	publishSynth(t, cty, mctx, "video")
	publishSynth(t, cty, mctx, "audio")
	ctyID := cty.Self().ID
	var vid string
	waitFor(t, 30*time.Second, "media from the county", func() bool {
		vid = trackOf(sup, ctyID, "video")
		return vid != "" && supRx.count(vid) > 20
	})
	if v := metricValue(t, s.addr, "ducha_store_healthy"); v != "1" {
		t.Fatalf("ducha_store_healthy = %q before the outage", v)
	}

	srv.Kill()
	// State changes while Redis is down.
	if err := cty.Chat("网络正常吗？"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "chat delivered while Redis is down", func() bool { return len(sup.Chats()) == 1 })
	if err := sup.Moderate(live.ActionMute, ctyID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "mute applied while Redis is down", func() bool {
		return sup.Participants()[ctyID].ModMuted
	})
	if err := sup.Moderate(live.ActionUnmute, ctyID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "unmute applied", func() bool { return !sup.Participants()[ctyID].ModMuted })
	if err := cty.Mute("video", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "/metrics reports the store down", func() bool {
		return metricValue(t, s.addr, "ducha_store_healthy") == "0"
	})
	before := supRx.count(vid)
	waitFor(t, 10*time.Second, "media keeps flowing", func() bool { return supRx.count(vid) > before+30 })
	for _, c := range []interface{ Done() <-chan struct{} }{sup, cty} {
		select {
		case <-c.Done():
			t.Fatal("a participant was dropped during the outage")
		default:
		}
	}

	srv.Start()
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	defer fcancel()
	if err := store.Flush(fctx); err != nil {
		t.Fatalf("flush after Redis returned: %v", err)
	}
	waitFor(t, 10*time.Second, "/metrics reports the store healthy", func() bool {
		return metricValue(t, s.addr, "ducha_store_healthy") == "1"
	})
	// A fresh reader (another node) sees every event, once, in order.
	fresh, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: "ducha-test:"})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	events, err := fresh.ListEvents(ctx, sess.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var order []rooms.EventType
	for i, e := range events {
		seen[e.ID]++
		if i > 0 && e.Seq <= events[i-1].Seq {
			t.Fatalf("events out of order at %d: %d after %d", i, e.Seq, events[i-1].Seq)
		}
		order = append(order, e.Type)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("event %s stored %d times", id, n)
		}
	}
	want := []rooms.EventType{rooms.EventChat, rooms.EventMute, rooms.EventUnmute, rooms.EventMute}
	if !containsInOrder(order, want) {
		t.Fatalf("events %v lack, in order, %v", order, want)
	}
}

func containsInOrder(have, want []rooms.EventType) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}
