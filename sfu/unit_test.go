package sfu

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func TestPacketCache(t *testing.T) {
	c := newPacketCache(20, 32*slotSize) // rounds to 32
	if c.size() != 32 {
		t.Fatalf("size = %d, want 32", c.size())
	}
	pkt := func(b byte) []byte { return []byte{0x80, 96, 0, 0, b} }
	buf := make([]byte, slotSize)
	if got := c.store(100, pkt(1), 0); got != stored {
		t.Fatalf("store = %v", got)
	}
	if got := c.store(100, pkt(1), 0); got != duplicate {
		t.Fatalf("second store = %v, want duplicate", got)
	}
	if n := c.get(100, buf); n != 5 || buf[4] != 1 {
		t.Fatalf("get = %d %v", n, buf[:n])
	}
	if n := c.get(101, buf); n != 0 {
		t.Fatalf("get of missing seq = %d", n)
	}
	// 132 shares 100's slot and is newer: it evicts 100.
	if got := c.store(132, pkt(2), 0); got != stored {
		t.Fatalf("store 132 = %v", got)
	}
	if n := c.get(100, buf); n != 0 {
		t.Fatal("evicted packet still returned")
	}
	// A late 100 must not overwrite the newer 132.
	if got := c.store(100, pkt(3), 0); got != tooOld {
		t.Fatalf("late store = %v, want tooOld", got)
	}
	if n := c.get(132, buf); n != 5 || buf[4] != 2 {
		t.Fatal("newer packet was overwritten")
	}
	// Wrap-around: 65535 then 0 are neighbours.
	c.store(65535, pkt(4), 0)
	c.store(31, pkt(5), 0) // same slot as 65535, newer across the wrap
	if n := c.get(31, buf); n == 0 {
		t.Fatal("seq 31 after wrap not stored")
	}
	if got := c.store(make16(65535), pkt(6), 0); got != tooOld {
		t.Fatalf("pre-wrap late packet = %v, want tooOld", got)
	}
	if got := c.store(1, make([]byte, slotSize+1), 0); got != tooLarge {
		t.Fatalf("oversized = %v", got)
	}
}

func make16(v int) uint16 { return uint16(v) }

func TestMunger(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		seq    uint16
		ts     uint32
		at     time.Duration
		resync bool
		want   uint16
		wantTS uint32
		ok     bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"passthrough keeps numbers", []step{
			{seq: 10, ts: 1000, want: 10, wantTS: 1000, ok: true},
			{seq: 11, ts: 4000, want: 11, wantTS: 4000, ok: true},
			{seq: 13, ts: 7000, want: 13, wantTS: 7000, ok: true},
			{seq: 12, ts: 7000, want: 12, wantTS: 7000, ok: true}, // late retransmission keeps its place
		}},
		{"resync continues after a gap", []step{
			{seq: 10, ts: 1000, want: 10, wantTS: 1000, ok: true},
			{seq: 11, ts: 4000, want: 11, wantTS: 4000, ok: true},
			// packets 12..49 dropped; resync at 50, 1 s later
			{seq: 50, ts: 90000, at: time.Second, resync: true, want: 12, wantTS: 4000 + 90000, ok: true},
			{seq: 51, ts: 93000, at: time.Second, want: 13, wantTS: 4000 + 93000, ok: true},
			{seq: 30, ts: 50000, at: time.Second, ok: false}, // from before the resync point
		}},
		{"wrap around", []step{
			{seq: 65534, ts: 10, want: 65534, wantTS: 10, ok: true},
			{seq: 65535, ts: 20, want: 65535, wantTS: 20, ok: true},
			{seq: 0, ts: 30, want: 0, wantTS: 30, ok: true},
			{seq: 2, ts: 50, resync: true, want: 1, wantTS: 31, ok: true}, // resync immediately: ts advances by 1
		}},
		{"timestamp wraps", []step{
			{seq: 1, ts: 0xFFFFFF00, want: 1, wantTS: 0xFFFFFF00, ok: true},
			{seq: 2, ts: 0x00000100, want: 2, wantTS: 0x00000100, ok: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m munger
			for i, s := range tc.steps {
				if s.resync {
					m.requestResync()
				}
				got, gotTS, ok := m.rewrite(s.seq, s.ts, t0.Add(s.at), 90000)
				if ok != s.ok || (ok && (got != s.want || gotTS != s.wantTS)) {
					t.Fatalf("step %d: rewrite(%d,%d) = %d,%d,%v want %d,%d,%v", i, s.seq, s.ts, got, gotTS, ok,
						s.want, s.wantTS, s.ok)
				}
			}
		})
	}
}

// A long stream crosses the sequence space many times; nothing may be
// refused for being "before" an epoch that started long ago.
func TestMungerLongStream(t *testing.T) {
	var m munger
	now := time.Unix(0, 0)
	for i := 0; i < 200000; i++ {
		seq := uint16(i)
		got, _, ok := m.rewrite(seq, uint32(i)*3000, now, 90000)
		if !ok || got != seq {
			t.Fatalf("packet %d: rewrite = %d,%v", i, got, ok)
		}
		if i > 10 {
			if orig, ok := m.unmap(seq - 5); !ok || orig != seq-5 {
				t.Fatalf("packet %d: unmap(%d) = %d,%v", i, seq-5, orig, ok)
			}
		}
	}
}

func TestMungerUnmap(t *testing.T) {
	var m munger
	now := time.Unix(0, 0)
	m.rewrite(100, 0, now, 90000)
	m.rewrite(101, 0, now, 90000)
	m.requestResync()
	m.rewrite(500, 0, now, 90000) // out 102
	m.rewrite(501, 0, now, 90000) // out 103
	if seq, ok := m.unmap(103); !ok || seq != 501 {
		t.Fatalf("unmap(103) = %d,%v want 501", seq, ok)
	}
	if _, ok := m.unmap(101); ok {
		t.Fatal("unmap of a previous epoch must fail")
	}
	if _, ok := m.unmap(104); ok {
		t.Fatal("unmap of a seq not yet sent must fail")
	}
	var fresh munger
	if _, ok := fresh.unmap(1); ok {
		t.Fatal("unmap before start must fail")
	}
}

func TestKeyframeDetection(t *testing.T) {
	tests := []struct {
		name    string
		codec   videoCodec
		payload []byte
		want    bool
	}{
		{"vp8 key, no ext", codecVP8, []byte{0x10, 0x00}, true},
		{"vp8 inter", codecVP8, []byte{0x10, 0x01}, false},
		{"vp8 continuation", codecVP8, []byte{0x00, 0x00}, false},
		{"vp8 key, 15-bit picture id", codecVP8, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 key, 7-bit pid + tl0 + tid", codecVP8, []byte{0x90, 0xE0, 0x12, 0x05, 0x40, 0x00}, true},
		{"vp8 inter with ext", codecVP8, []byte{0x90, 0x80, 0x12, 0x01}, false},
		{"vp8 truncated", codecVP8, []byte{0x90}, false},
		{"vp8 empty", codecVP8, nil, false},
		{"vp9 key start", codecVP9, []byte{0x08, 0x00}, true},
		{"vp9 inter", codecVP9, []byte{0x48, 0x00}, false},
		{"vp9 not start", codecVP9, []byte{0x00}, false},
		{"vp9 key with pid and layer sid0", codecVP9, []byte{0xA8, 0x81, 0x02, 0x00, 0x10}, true},
		{"vp9 key at spatial layer 1", codecVP9, []byte{0xA8, 0x81, 0x02, 0x02, 0x10}, false},
		{"h264 idr", codecH264, []byte{0x65, 0x88}, true},
		{"h264 sps", codecH264, []byte{0x67, 0x42}, true},
		{"h264 non-idr", codecH264, []byte{0x41, 0x9a}, false},
		{"h264 stap-a with sps", codecH264, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a without", codecH264, []byte{0x78, 0x00, 0x02, 0x41, 0x42}, false},
		{"h264 stap-a bad size", codecH264, []byte{0x78, 0x00, 0x09, 0x67}, false},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85, 0x00}, true},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05, 0x00}, false},
		{"audio never", codecNone, []byte{0x10, 0x00}, false},
	}
	for _, tc := range tests {
		if got := isKeyframeStart(tc.codec, tc.payload); got != tc.want {
			t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
		}
	}
	if codecOf("video/vp8") != codecVP8 || codecOf("video/H264") != codecH264 || codecOf("audio/opus") != codecNone {
		t.Error("codecOf")
	}
}

// manualClock is an injected clock for throttling tests.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (t *manualTimer) Stop() bool { s := !t.stopped; t.stopped = true; return s }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func TestKeyframeRequestThrottle(t *testing.T) {
	clk := &manualClock{now: time.Unix(100, 0)}
	var sent []time.Time
	var ctr counters
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 1, vp8Params(), 64, clk, discardLogger(),
		&ctr, fanoutOptions{queueLen: 8, perWriter: 8, maxWriters: 2, kfMinSpacing: 300 * time.Millisecond},
		func(uint32) { sent = append(sent, clk.Now()) })
	u.RequestKeyframe() // immediate
	u.RequestKeyframe() // deferred to +300ms
	u.RequestKeyframe() // folded into the deferred one
	if len(sent) != 1 {
		t.Fatalf("sent %d PLIs at once, want 1", len(sent))
	}
	clk.advance(299 * time.Millisecond)
	if len(sent) != 1 {
		t.Fatal("deferred PLI fired early")
	}
	clk.advance(time.Millisecond)
	if len(sent) != 2 {
		t.Fatalf("deferred PLI not sent: %d", len(sent))
	}
	clk.advance(time.Second)
	if len(sent) != 2 {
		t.Fatal("spurious PLI")
	}
	u.RequestKeyframe()
	if len(sent) != 3 {
		t.Fatal("PLI after quiet period not immediate")
	}
	if ctr.keyframeRequests.Load() != 3 {
		t.Fatalf("counter = %d", ctr.keyframeRequests.Load())
	}
	audio := newUpTrack(TrackInfo{ID: "A", Kind: "audio", MimeType: "audio/opus"}, 2, vp8Params(), 64, clk,
		discardLogger(), &ctr, fanoutOptions{kfMinSpacing: time.Second}, func(uint32) { t.Fatal("PLI for audio") })
	audio.RequestKeyframe()
	u.close()
	audio.close()
}

func TestRTXLimiter(t *testing.T) {
	var l rtxLimiter
	ms := int64(time.Millisecond)
	now := int64(1_000_000) * ms
	for i := 0; i < 100; i++ {
		l.forwarded(now)
	}
	now += rtxWindow // next window: budget = 100/2 + floor
	if !l.allow(7, now, 100*time.Millisecond) {
		t.Fatal("first resend refused")
	}
	if l.allow(7, now+50*ms, 100*time.Millisecond) {
		t.Fatal("duplicate NACK within the round trip answered")
	}
	if !l.allow(7, now+150*ms, 100*time.Millisecond) {
		t.Fatal("NACK after the round trip refused")
	}
	allowed := 2
	for seq := uint16(100); seq < 400; seq++ {
		if l.allow(seq, now+200*ms, 100*time.Millisecond) {
			allowed++
		}
	}
	if allowed != 100/2+rtxFloor {
		t.Fatalf("resent %d in a window after 100 forwarded, want %d", allowed, 100/2+rtxFloor)
	}
	// A quiet window resets the budget to the floor.
	now += 3 * rtxWindow
	n := 0
	for seq := uint16(1000); seq < 1100; seq++ {
		if l.allow(seq, now, 100*time.Millisecond) {
			n++
		}
	}
	if n != rtxFloor {
		t.Fatalf("after silence %d resends allowed, want the floor %d", n, rtxFloor)
	}
}

// The byte ring keeps what fits: older packets whose bytes were overwritten
// read as missing, packets straddling the ring's end read back whole, and
// when traffic outgrows the ring it doubles without losing what it held.
func TestPacketCacheByteRing(t *testing.T) {
	c := newPacketCache(1024, 4096)
	payload := func(seq uint16, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(seq) + byte(i)
		}
		return b
	}
	check := func(seq uint16, n int) bool {
		buf := make([]byte, slotSize)
		got := c.get(seq, buf)
		return got == n && string(buf[:got]) == string(payload(seq, n))
	}
	// 1000-byte packets: 4 fit, the 5th wraps and evicts the 1st.
	now := int64(1)
	for seq := uint16(0); seq < 5; seq++ {
		if r := c.store(seq, payload(seq, 1000), now); r != stored {
			t.Fatalf("store %d: %v", seq, r)
		}
	}
	if check(0, 1000) {
		t.Fatal("packet 0 still readable after its bytes were overwritten")
	}
	for seq := uint16(1); seq < 5; seq++ {
		if !check(seq, 1000) {
			t.Fatalf("packet %d (straddling the end: %v) not read back", seq, seq == 4)
		}
	}
	if c.store(0, payload(0, 1000), now) != tooOld && c.store(0, payload(0, 1000), now) != duplicate {
		t.Fatal("an evicted packet could be stored again")
	}
	// 100 kB/s for a second: the ring grows to hold keepFor of it.
	seq := uint16(5)
	for i := 0; i < 100; i++ {
		now += int64(10 * time.Millisecond)
		c.store(seq, payload(seq, 1000), now)
		seq++
	}
	if c.bytes() < 100_000*int(keepFor/time.Second) {
		t.Fatalf("ring %d bytes after 100 kB/s, want at least %d", c.bytes(), 100_000*int(keepFor/time.Second))
	}
	for s := seq - 60; s != seq; s++ {
		if !check(s, 1000) {
			t.Fatalf("packet %d lost across growth", s)
		}
	}
	if c.bytes() > 1024*slotSize {
		t.Fatalf("ring beyond its maximum: %d", c.bytes())
	}
}

// Every packet toward a subscriber carries the connection's next
// transport-wide sequence number under the negotiated extension id, and the
// estimator learns its size and time; without a negotiated id nothing is
// stamped.
func TestSendStampsTransportSequence(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	est := bwe.New(bwe.Config{Initial: 1_000_000}, now)
	var ctr counters
	var got []rtp.Header
	w := headerRecorder(func(h *rtp.Header) { got = append(got, h.Clone()) })
	o := rtpOut{writer: w, ssrc: 9, pt: 96, tw: est, twID: 5}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 100}, Payload: make([]byte, 1000)}
	for i := range 3 {
		if err := o.send(pkt, uint16(10+i), 0, now.Add(time.Duration(i)*time.Millisecond), &ctr); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range got {
		ext := h.GetExtension(5)
		if len(ext) != 2 || binary.BigEndian.Uint16(ext) != uint16(i) {
			t.Fatalf("packet %d: transport-wide extension %v, want sequence %d", i, ext, i)
		}
		if h.SequenceNumber != uint16(10+i) || h.SSRC != 9 {
			t.Fatalf("packet %d: header %+v", i, h)
		}
	}
	// The estimator knows the three packets: feedback reporting them
	// received counts three.
	rec := twcc.NewRecorder(1)
	for i := range 3 {
		rec.Record(9, uint16(i), int64(i*1000+20_000))
	}
	est.Feedback(rec.BuildFeedbackPacket()[0].(*rtcp.TransportLayerCC), now.Add(50*time.Millisecond))
	if s := est.Stats(); s.Received != 3 || s.Lost != 0 {
		t.Fatalf("estimator stats %+v, want 3 received", s)
	}

	o.twID = 0
	got = nil
	if err := o.send(pkt, 13, 0, now, &ctr); err != nil {
		t.Fatal(err)
	}
	if got[0].Extension {
		t.Fatalf("stamped without a negotiated id: %+v", got[0])
	}
}

// headerRecorder is a TrackLocalWriter that hands each header to a func.
type headerRecorder func(h *rtp.Header)

func (f headerRecorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	f(h)
	return h.MarshalSize() + len(payload), nil
}

func (f headerRecorder) Write(b []byte) (int, error) { return len(b), nil }

// The forwarding delay histogram: bucket edges, and the arrival ring's
// sequence check and 48-bit microsecond wrap.
func TestForwardDelay(t *testing.T) {
	var h fwdDelayHist
	for _, d := range []time.Duration{0, 100 * time.Microsecond, 101 * time.Microsecond, 3 * time.Millisecond, time.Second} {
		h.observe(d)
	}
	counts, sum := h.snapshot()
	want := make([]uint64, len(fwdDelayBounds)+1)
	want[0], want[1], want[5], want[len(want)-1] = 2, 1, 1, 1 // <=100µs, <=250µs, <=5ms, above 250ms
	if !slices.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if d := time.Duration(sum * 1e9); d != time.Second+3*time.Millisecond+201*time.Microsecond {
		t.Errorf("sum %v", d)
	}
	if b := ForwardDelayBounds(); len(b) != len(fwdDelayBounds) || b[0] != 0.0001 || b[len(b)-1] != 0.25 {
		t.Errorf("bounds %v", b)
	}

}

// ingest feeds a layer as its reader on Pion's path does.
func (l *upLayer) ingest(pkt []byte) {
	l.ingestAt(pkt, l.arrivedAt(pkt, l.track.clock.Now()))
}

// ingest feeds a track's first stream.
func (u *UpTrack) ingest(pkt []byte) { u.base().ingest(pkt) }
