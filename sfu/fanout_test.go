package sfu

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// blockingSub stalls in WriteRTP until released: the slow subscriber.
type blockingSub struct {
	release chan struct{}
	got     atomic.Int64
	resyncs atomic.Int64
}

func (b *blockingSub) WriteRTP(*rtp.Packet) error {
	<-b.release
	b.got.Add(1)
	return nil
}
func (b *blockingSub) Resync() { b.resyncs.Add(1) }

type countingSub struct {
	mu      sync.Mutex
	seqs    []uint16
	resyncs int
}

func (c *countingSub) WriteRTP(p *rtp.Packet) error {
	c.mu.Lock()
	c.seqs = append(c.seqs, p.SequenceNumber)
	c.mu.Unlock()
	return nil
}
func (c *countingSub) Resync() { c.mu.Lock(); c.resyncs++; c.mu.Unlock() }
func (c *countingSub) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seqs)
}

func vp8Packet(seq uint16, key bool) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 5},
		Payload: []byte{0x10, 0x01, 0, 0}}
	if key {
		p.Payload[1] = 0x00
	}
	b, _ := p.Marshal()
	return b
}

// A subscriber that stops reading must not stall the publisher's reader,
// nor subscribers on other writers; its drops are counted, and after the
// stall it resumes cleanly at a keyframe.
func TestSlowSubscriberDoesNotBlockReader(t *testing.T) {
	var ctr counters
	var plis atomic.Int64
	opts := fanoutOptions{queueLen: 64, perWriter: 1, maxWriters: 4, kfMinSpacing: time.Millisecond}
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 5, vp8Params(), 256, SystemClock{},
		discardLogger(), &ctr, opts, func(uint32) { plis.Add(1) })
	defer u.close()
	slow := &blockingSub{release: make(chan struct{})}
	fast := &countingSub{}
	u.Subscribe(slow)
	u.Subscribe(fast)
	if n := len(*u.base().writers.Load()); n != 2 {
		t.Fatalf("writers = %d, want one per subscriber with perWriter=1", n)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		// Paced like real media, so only a stall of 64 ms would make
		// the fast subscriber's writer drop.
		for i := 0; i < 200; i++ {
			u.ingest(vp8Packet(uint16(i), i == 0))
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader blocked on a slow subscriber")
	}
	if ctr.queueDrops.Load() == 0 {
		t.Fatal("no drops counted for the stalled subscriber")
	}
	eventually(t, 10*time.Second, "the fast subscriber gets every packet", func() bool { return fast.count() == 200 })

	// Release the slow one: it drains its queue, then skips to a keyframe.
	before := plis.Load()
	close(slow.release)
	for i := 200; i < 260; i++ {
		u.ingest(vp8Packet(uint16(i), false))
		time.Sleep(time.Millisecond)
	}
	eventually(t, 10*time.Second, "a keyframe request after the drop", func() bool { return plis.Load() > before })
	got := slow.got.Load()
	u.ingest(vp8Packet(260, true))
	u.ingest(vp8Packet(261, false))
	eventually(t, 10*time.Second, "the slow subscriber resumes at the keyframe", func() bool {
		return slow.got.Load() >= got+2 && slow.resyncs.Load() == 1
	})
	if ctr.keyframeSkips.Load() == 0 {
		t.Fatal("no packets skipped while waiting for the keyframe")
	}
}

// Writers come and go with their subscribers.
func TestFanoutUnsubscribeStopsWriter(t *testing.T) {
	var ctr counters
	opts := fanoutOptions{queueLen: 16, perWriter: 2, maxWriters: 4, kfMinSpacing: time.Second}
	u := newUpTrack(TrackInfo{ID: "A", Kind: "audio", MimeType: "audio/opus"}, 5, vp8Params(), 64, SystemClock{},
		discardLogger(), &ctr, opts, nil)
	defer u.close()
	subs := []*countingSub{{}, {}, {}}
	for _, s := range subs {
		u.Subscribe(s)
	}
	if n := len(*u.base().writers.Load()); n != 2 {
		t.Fatalf("writers = %d, want 2 for 3 subscribers at 2 per writer", n)
	}
	u.Unsubscribe(subs[2])
	if n := len(*u.base().writers.Load()); n != 1 {
		t.Fatalf("writers = %d after the lone subscriber left, want 1", n)
	}
	if u.SubscriberCount() != 2 {
		t.Fatalf("subscribers = %d", u.SubscriberCount())
	}
	u.ingest(vp8Packet(1, false))
	eventually(t, 5*time.Second, "remaining subscribers receive", func() bool {
		return subs[0].count() == 1 && subs[1].count() == 1
	})
	if subs[2].count() != 0 {
		t.Fatal("an unsubscribed subscriber still receives")
	}
}

// keyframeProbe is one VP8 track with one bound downTrack, counting the
// keyframe requests that reach the publisher, on a manual clock.
type keyframeProbe struct {
	clk   *manualClock
	ctr   counters
	plis  atomic.Int64
	ready atomic.Bool
	w     *countingWriter
	dt    *downTrack
	pkt   rtp.Packet
}

func newKeyframeProbe(t *testing.T, ready bool) *keyframeProbe {
	t.Helper()
	k := &keyframeProbe{clk: &manualClock{now: time.Unix(100, 0)}, w: &countingWriter{}}
	k.ready.Store(ready)
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 5, vp8Params(), 64, k.clk,
		discardLogger(), &k.ctr, fanoutOptions{queueLen: 8, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond},
		func(uint32) { k.plis.Add(1) })
	t.Cleanup(u.close)
	k.dt = newDownTrack(u, &k.ctr, discardLogger(), &k.ready, nil, nil)
	k.dt.bound, k.dt.writer, k.dt.ssrc, k.dt.pt = true, k.w, 9, 96
	return k
}

// send hands the downTrack one VP8 packet, as its fan-out writer would.
func (k *keyframeProbe) send(t *testing.T, seq uint16, key bool) {
	t.Helper()
	if err := k.pkt.Unmarshal(vp8Packet(seq, key)); err != nil {
		t.Fatal(err)
	}
	if err := k.dt.WriteRTP(&k.pkt); err != nil {
		t.Fatal(err)
	}
}

// A subscriber waiting for its first keyframe keeps asking the publisher
// (a browser never asks for a stream it has not received), at most every
// keyframeRetry, and stops once a keyframe went out.
func TestWaitingSubscriberKeepsAskingForKeyframe(t *testing.T) {
	k := newKeyframeProbe(t, true)
	for i := 0; i < 30; i++ { // 3 s of inter frames at 100 ms
		k.send(t, uint16(i), false)
		time.Sleep(2 * time.Millisecond) // the request runs on its own goroutine
		k.clk.advance(100 * time.Millisecond)
	}
	eventually(t, 5*time.Second, "repeated keyframe requests", func() bool {
		t.Logf("plis %d reqs %d ask %v", k.plis.Load(), k.ctr.keyframeRequests.Load(), k.dt.kfAsk)
		return k.plis.Load() >= 5
	})
	if n, most := k.plis.Load(), int64(3*time.Second/keyframeRetry)+1; n > most {
		t.Fatalf("%d requests in 3 s, want about one per %v", n, keyframeRetry)
	}
	if k.w.n.Load() != 0 {
		t.Fatal("inter frames forwarded before the first keyframe")
	}
	k.send(t, 30, true)
	before := k.plis.Load()
	for i := 31; i < 60; i++ {
		k.send(t, uint16(i), false)
		k.clk.advance(100 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if k.plis.Load() != before {
		t.Fatal("still asking after the keyframe was forwarded")
	}
	if k.w.n.Load() != 30 {
		t.Fatalf("forwarded %d packets after the keyframe, want 30", k.w.n.Load())
	}
}

// gatedSub blocks until released, then records what it gets.
type gatedSub struct {
	release chan struct{}
	mu      sync.Mutex
	pkts    []rtp.Packet
	resyncs int
}

func (g *gatedSub) WriteRTP(p *rtp.Packet) error {
	<-g.release
	g.mu.Lock()
	g.pkts = append(g.pkts, rtp.Packet{Header: p.Header, Payload: append([]byte(nil), p.Payload...)})
	g.mu.Unlock()
	return nil
}
func (g *gatedSub) Resync() { g.mu.Lock(); g.resyncs++; g.mu.Unlock() }

// A writer that lags further behind than the byte ring holds (a keyframe
// burst into a new, still small ring) finds its packets overwritten: it
// must cut cleanly to the next keyframe, never forward a broken frame, and
// the ring must grow.
func TestFanoutOverwrittenPacketsCutToKeyframe(t *testing.T) {
	var ctr counters
	opts := fanoutOptions{queueLen: 512, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond}
	u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 5, vp8Params(), 512, SystemClock{},
		discardLogger(), &ctr, opts, nil)
	defer u.close()
	before := u.base().cache.bytes()
	g := &gatedSub{release: make(chan struct{})}
	u.Subscribe(g)
	big := func(seq uint16, key bool) []byte {
		var p rtp.Packet
		_ = p.Unmarshal(vp8Packet(seq, key))
		p.Payload = append(p.Payload, make([]byte, 1000)...)
		b, _ := p.Marshal()
		return b
	}
	// Packet 0 (a keyframe) is taken by the writer, which then blocks in
	// WriteRTP; 200 kB arrive behind it, more than the ring holds.
	for seq := uint16(0); seq < 200; seq++ {
		u.ingest(big(seq, seq == 0))
	}
	close(g.release)
	u.ingest(big(200, true))
	u.ingest(big(201, false))
	eventually(t, 5*time.Second, "the next keyframe arrives", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.pkts) > 0 && g.pkts[len(g.pkts)-1].SequenceNumber == 201
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resyncs == 0 || ctr.queueDrops.Load() == 0 {
		t.Fatalf("no clean cut: %d resyncs, %d drops", g.resyncs, ctr.queueDrops.Load())
	}
	// After the first packet, every packet forwarded must come from an
	// unbroken run that starts at a keyframe: find the cut.
	for i := 1; i < len(g.pkts); i++ {
		if g.pkts[i].SequenceNumber != g.pkts[i-1].SequenceNumber+1 {
			if !isKeyframeStart(codecVP8, g.pkts[i].Payload) {
				t.Fatalf("after a gap at %d the stream resumes with a non-keyframe (seq %d)", g.pkts[i-1].SequenceNumber, g.pkts[i].SequenceNumber)
			}
		}
	}
	u.ingest(big(202, false)) // the ring grows at the store after the writer found it short
	if after := u.base().cache.bytes(); after <= before {
		t.Fatalf("ring did not grow: %d -> %d bytes", before, after)
	}
}

// A subscription made while the subscriber's connection is still coming up
// asks the publisher for no keyframe (it would reach nobody and cost the
// layer's other subscribers one); the subscriber asks once it is ready, and
// then gets the keyframe.
func TestNotReadySubscriberAsksForKeyframeWhenReady(t *testing.T) {
	k := newKeyframeProbe(t, false)
	k.dt.attach(0)
	for i := 0; i < 10; i++ {
		k.send(t, uint16(i), false)
		k.clk.advance(100 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // requests run on their own goroutines
	if n := k.plis.Load(); n != 0 {
		t.Fatalf("%d keyframe requests while the connection was not ready, want 0", n)
	}
	k.ready.Store(true) // what the participant does on "connected", then requestKeyframes
	k.dt.askKeyframe()
	eventually(t, 5*time.Second, "a keyframe request once ready", func() bool { return k.plis.Load() == 1 })
	k.send(t, 10, true)
	if k.w.n.Load() != 1 {
		t.Fatalf("forwarded %d packets after the keyframe, want 1", k.w.n.Load())
	}
}

// inlineSub is a countingSub that says its writes never wait; with gate
// set, its first write waits for the gate to close (a writer with a packet
// in hand).
type inlineSub struct {
	countingSub
	gate chan struct{}
}

func (*inlineSub) writesInline() bool { return true }

func (s *inlineSub) WriteRTP(p *rtp.Packet) error {
	if s.gate != nil {
		<-s.gate
	}
	return s.countingSub.WriteRTP(p)
}

func (s *inlineSub) seqs() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint16(nil), s.countingSub.seqs...)
}

// A small group of subscribers that never wait is written by the reader
// itself, in order with what its writer still has in hand; a subscriber
// that may wait gets a writer of its own; a larger group, or any group
// while the reader lags the socket, is left to its writer.
func TestInlineFanout(t *testing.T) {
	var ctr counters
	var behind atomic.Bool
	opts := fanoutOptions{queueLen: 16, perWriter: 8, maxWriters: 1, inlineMax: 2, kfMinSpacing: time.Second,
		behind: &behind}
	u := newUpTrack(TrackInfo{ID: "A", Kind: "audio", MimeType: "audio/opus"}, 5, vp8Params(), 64, SystemClock{},
		discardLogger(), &ctr, opts, nil)
	defer u.close()
	fast := &inlineSub{gate: make(chan struct{})}
	u.Subscribe(fast)
	rec := &countingSub{} // may wait, as the recorder
	u.Subscribe(rec)
	ws := *u.base().writers.Load()
	if len(ws) != 2 {
		t.Fatalf("%d writers for a browser and a subscriber that may wait, want one each", len(ws))
	}
	w := ws[0]
	if !w.inline.Load() || ws[1].inline.Load() {
		t.Fatalf("inline: browser's group %v, the other's %v; want true, false", w.inline.Load(), ws[1].inline.Load())
	}

	// Behind the socket: packet 1 goes to the writer, which stalls in it.
	behind.Store(true)
	u.ingest(vp8Packet(1, false))
	eventually(t, 5*time.Second, "the writer holds packet 1", func() bool { return len(w.queue) == 0 })
	behind.Store(false)
	// The writer still has packet 1 in hand: these must queue behind it.
	u.ingest(vp8Packet(2, false))
	u.ingest(vp8Packet(3, false))
	if n := fast.count(); n != 0 {
		t.Fatalf("%d packets reached the subscriber ahead of packet 1", n)
	}
	close(fast.gate)
	eventually(t, 5*time.Second, "the writer delivers what it had", func() bool {
		return fast.count() == 3 && w.pending.Load() == 0
	})
	before := ctr.inlinePackets.Load()
	u.ingest(vp8Packet(4, false))
	if n := fast.count(); n != 4 { // written before ingest returned
		t.Fatalf("after an inline write the subscriber has %d packets, want 4", n)
	}
	if got := ctr.inlinePackets.Load() - before; got != 1 {
		t.Fatalf("inline packets counted %d, want 1", got)
	}
	for i, seq := range fast.seqs() {
		if seq != uint16(i+1) {
			t.Fatalf("packets arrived as %v, want 1 2 3 4", fast.seqs())
		}
	}
	eventually(t, 5*time.Second, "the other writer delivers to the one that may wait", func() bool {
		return rec.count() == 4
	})

	more := []*inlineSub{{}, {}}
	for _, s := range more {
		u.Subscribe(s)
	}
	if w.inline.Load() {
		t.Fatal("a group of 3 is written inline with inlineMax 2")
	}
	u.ingest(vp8Packet(5, false))
	eventually(t, 5*time.Second, "the writer delivers to the group of 3", func() bool {
		return fast.count() == 5 && more[0].count() == 1 && more[1].count() == 1
	})
	if ctr.queueDrops.Load() != 0 || ctr.writeErrors.Load() != 0 {
		t.Fatalf("drops %d, write errors %d", ctr.queueDrops.Load(), ctr.writeErrors.Load())
	}
}

// nopInline is an inliner that keeps nothing.
type nopInline struct{ n int }

func (s *nopInline) WriteRTP(*rtp.Packet) error { s.n++; return nil }
func (*nopInline) Resync()                      {}
func (*nopInline) writesInline() bool           { return true }

// The reader's own write of a small group allocates nothing per packet,
// as the writers' path does (BenchmarkForward).
func TestInlineWriteAllocatesNothing(t *testing.T) {
	var ctr counters
	opts := fanoutOptions{queueLen: 16, perWriter: 8, maxWriters: 1, inlineMax: 4, kfMinSpacing: time.Second}
	u := newUpTrack(TrackInfo{ID: "V", Kind: "video", MimeType: "video/VP8"}, 5, vp8Params(), 512, SystemClock{},
		discardLogger(), &ctr, opts, func(uint32) {})
	defer u.close()
	subs := []*nopInline{{}, {}}
	for _, s := range subs {
		u.Subscribe(s)
	}
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = vp8Packet(uint16(i), i == 0)
	}
	seq := 0
	next := func() {
		p := pkts[seq%len(pkts)]
		binary.BigEndian.PutUint16(p[2:4], uint16(seq))
		u.ingest(p)
		seq++
	}
	for range 100 {
		next()
	}
	if allocs := testing.AllocsPerRun(1000, next); allocs != 0 {
		t.Fatalf("%.2f allocations per packet written inline", allocs)
	}
	if got := ctr.inlinePackets.Load(); got < 1000 || subs[0].n != seq {
		t.Fatalf("%d packets written inline, subscriber got %d of %d", got, subs[0].n, seq)
	}
}
