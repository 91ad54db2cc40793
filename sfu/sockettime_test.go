package sfu

import (
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/arrival"
)

// The socket times only registered streams' RTP, the first registrant of
// an SSRC keeps it, and only the ring's owner can take it back.
func TestSocketTimes(t *testing.T) {
	clk := &manualClock{now: time.Unix(100, 0)}
	st := newSocketTimes()
	st.observe(vp8Packet(10, false), clk.Now()) // SSRC 5, not registered: nothing kept
	if len(st.rings) != 0 {
		t.Fatal("an unregistered SSRC got a ring")
	}
	var r, other arrival.Ring
	st.register(5, &r)
	st.register(5, &other)
	st.observe(vp8Packet(11, false), clk.Now())
	if !r.Holds(11) || other.Holds(11) {
		t.Fatalf("first registrant %v, second %v: want the first only", r.Holds(11), other.Holds(11))
	}
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 5}
	st.observe(append(rr, make([]byte, 8)...), clk.Now()) // RTCP
	st.observe([]byte{22, 0xfe, 0xfd}, clk.Now())         // DTLS
	st.unregister(5, &other)
	st.observe(vp8Packet(12, false), clk.Now())
	if !r.Holds(12) {
		t.Fatal("another ring's unregister took the SSRC")
	}
	st.unregister(5, &r)
	st.observe(vp8Packet(13, false), clk.Now())
	if r.Holds(13) {
		t.Fatal("timed after unregister")
	}
	var nilTimes *socketTimes // arrivals timed at ingest only
	nilTimes.register(5, &r)
	nilTimes.unregister(5, &r)
}

// Ingest keeps the socket's arrival time: the forwarding delay then
// covers Pion's receive chain. A packet the socket did not time gets the
// ingest time.
func TestIngestKeepsSocketArrival(t *testing.T) {
	clk := &manualClock{now: time.Unix(100, 0)}
	st := newSocketTimes()
	var ctr counters
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 5, vp8Params(), 64, clk,
		discardLogger(), &ctr, fanoutOptions{queueLen: 8, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond,
			socket: st}, func(uint32) {})
	l := u.layers[0]
	st.observe(vp8Packet(1, true), clk.Now())
	clk.advance(7 * time.Millisecond) // Pion's receive chain
	l.ingest(vp8Packet(1, true))
	l.ingest(vp8Packet(2, false))
	if d, ok := l.arrived.Since(1, clk.Now()); !ok || d != 7*time.Millisecond {
		t.Errorf("packet 1: arrived %v ago (%v), want the socket's 7ms", d, ok)
	}
	if d, ok := l.arrived.Since(2, clk.Now()); !ok || d != 0 {
		t.Errorf("packet 2: arrived %v ago (%v), want the ingest time", d, ok)
	}
	u.close()
	if len(st.rings) != 0 {
		t.Error("a closed track's layer is still registered")
	}
}
