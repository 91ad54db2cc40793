package sfu

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// recordingSub keeps what it receives.
type recordingSub struct {
	mu      sync.Mutex
	seqs    []uint16
	ts      []uint32
	resyncs int
}

func (r *recordingSub) WriteRTP(p *rtp.Packet) error {
	r.mu.Lock()
	r.seqs = append(r.seqs, p.SequenceNumber)
	r.ts = append(r.ts, p.Timestamp)
	r.mu.Unlock()
	return nil
}

func (r *recordingSub) Resync() { r.mu.Lock(); r.resyncs++; r.mu.Unlock() }

func (r *recordingSub) snapshot() ([]uint16, []uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint16(nil), r.seqs...), append([]uint32(nil), r.ts...)
}

func newSimulcastTrack(t *testing.T, clk Clock) (*UpTrack, [maxLayers]*upLayer) {
	t.Helper()
	var ctr counters
	u := newTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, vp8Params(), clk, discardLogger(), &ctr,
		fanoutOptions{queueLen: 64, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond}, nil)
	u.simulcast = true
	var ls [maxLayers]*upLayer
	for i, rid := range []string{"q", "h", "f"} {
		ls[i] = u.addLayer(rid, i, uint32(10+i), 64)
	}
	t.Cleanup(u.close)
	return u, ls
}

// vp8LayerPacket is a VP8 packet of layer idx with sequence numbers and
// timestamps of that layer's own (different) bases, as browsers send.
func vp8LayerPacket(idx int, n uint16, key bool) []byte {
	raw := vp8Packet(uint16(idx)*10000+n, key)
	var p rtp.Packet
	_ = p.Unmarshal(raw)
	p.Timestamp = uint32(idx)*1_000_000 + uint32(n)*3000
	p.SSRC = uint32(10 + idx)
	out, _ := p.Marshal()
	return out
}

// The recorder's view of a simulcast track is one continuous stream of the
// highest layer; when that layer stops, it moves down at a keyframe of the
// next one without a jump in sequence numbers.
func TestSwitchContinuousForRecorder(t *testing.T) {
	clk := &manualClock{now: time.Unix(100, 0)}
	u, ls := newSimulcastTrack(t, clk)
	rec := &recordingSub{}
	u.Subscribe(rec)
	feed := func(idx int, from, to uint16, keyAt uint16) {
		for n := from; n < to; n++ {
			ls[idx].ingest(vp8LayerPacket(idx, n, n == keyAt))
		}
	}
	feed(2, 0, 5, 1) // packet 0 is not a keyframe start: skipped
	eventually(t, 2*time.Second, "top layer forwarded", func() bool { s, _ := rec.snapshot(); return len(s) == 4 })

	// The top layer stops; after layerIdle the tick moves the recorder to h.
	clk.advance(2 * time.Second)
	feed(1, 0, 3, 99) // no keyframe yet: nothing switches
	u.updateLayers(clk.Now())
	feed(1, 3, 6, 3)
	eventually(t, 2*time.Second, "switched to h", func() bool { s, _ := rec.snapshot(); return len(s) == 7 })
	seqs, _ := rec.snapshot()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("sequence numbers %v are not continuous", seqs)
		}
	}
	if sw := u.generic[rec]; sw.current() != 1 {
		t.Fatalf("current layer %d, want 1", sw.current())
	}
}

// switchUnderTest is a simulcast track with one switch, whose sink counts
// what it gets; notReady makes the sink's connection still coming up.
func switchUnderTest(t *testing.T, notReady bool) (*layerSwitch, *sinkRecorder, [maxLayers]*upLayer) {
	t.Helper()
	clk := &manualClock{now: time.Unix(100, 0)}
	u, ls := newSimulcastTrack(t, clk)
	sink := &sinkRecorder{}
	sink.notReady.Store(notReady)
	return u.addSwitch(sink), sink, ls
}

// A subscriber switching up keeps receiving the old layer until the new
// layer's keyframe, then only the new one.
func TestSwitchWaitsForKeyframe(t *testing.T) {
	sw, sink, ls := switchUnderTest(t, false)
	sw.setTarget(0)
	ls[0].ingest(vp8LayerPacket(0, 0, true))
	eventually(t, 2*time.Second, "low layer", func() bool { return sink.count(0) == 1 })
	sw.setTarget(2)
	ls[0].ingest(vp8LayerPacket(0, 1, false))
	ls[2].ingest(vp8LayerPacket(2, 0, false)) // not a keyframe: ignored
	eventually(t, 2*time.Second, "low layer still flows", func() bool { return sink.count(0) == 2 })
	if sink.count(2) != 0 || sw.current() != 0 {
		t.Fatalf("switched before a keyframe")
	}
	ls[2].ingest(vp8LayerPacket(2, 1, true))
	eventually(t, 2*time.Second, "switched at the keyframe", func() bool { return sink.count(2) == 1 })
	ls[0].ingest(vp8LayerPacket(0, 2, false))
	ls[2].ingest(vp8LayerPacket(2, 2, false))
	eventually(t, 2*time.Second, "top layer flows", func() bool { return sink.count(2) == 2 })
	if sink.count(0) != 2 || ls[0].subscriberCount() != 0 {
		t.Fatalf("low layer still attached: %d packets, %d subscribers", sink.count(0), ls[0].subscriberCount())
	}
	sw.setTarget(-1)
	ls[2].ingest(vp8LayerPacket(2, 3, true))
	time.Sleep(50 * time.Millisecond)
	if sink.count(2) != 2 {
		t.Fatalf("paused subscription still receives")
	}
}

// A keyframe that comes while the subscriber cannot take media yet does
// not cut the switch over (the sink would drop it, and the subscriber wait
// for the next one); the first one after it is up does.
func TestSwitchWaitsForReadySink(t *testing.T) {
	sw, sink, ls := switchUnderTest(t, true)
	sw.setTarget(2)
	ls[2].ingest(vp8LayerPacket(2, 0, true))
	ls[2].ingest(vp8LayerPacket(2, 1, false))
	time.Sleep(50 * time.Millisecond) // the fan-out writer's goroutine
	if sw.current() != -1 || sink.count(2) != 0 {
		t.Fatalf("cut over to layer %d (%d packets) before the sink was ready", sw.current(), sink.count(2))
	}
	sink.notReady.Store(false)
	ls[2].ingest(vp8LayerPacket(2, 2, false))
	ls[2].ingest(vp8LayerPacket(2, 3, true))
	eventually(t, 2*time.Second, "cut over at the first keyframe once ready", func() bool { return sink.count(2) == 1 })
	if sw.current() != 2 {
		t.Fatalf("current layer %d, want 2", sw.current())
	}
}

// A subscription starts on one layer and is moved to another before its
// first picture (the page's tile size comes a moment after the track): the
// keyframe of the layer asked for first is the first picture, and the
// switch then goes on to the new target at its keyframe.
func TestSwitchFirstPictureFromEarlierTarget(t *testing.T) {
	sw, sink, ls := switchUnderTest(t, false)
	sw.setTarget(2)
	sw.setTarget(1) // before anything was forwarded
	ls[2].ingest(vp8LayerPacket(2, 0, false))
	ls[2].ingest(vp8LayerPacket(2, 1, true))
	eventually(t, 2*time.Second, "the top layer's keyframe shown first", func() bool { return sink.count(2) == 1 })
	if sw.current() != 2 || sw.wanted() != 1 {
		t.Fatalf("current %d, wanted %d; want 2 and 1", sw.current(), sw.wanted())
	}
	ls[2].ingest(vp8LayerPacket(2, 2, false))
	ls[1].ingest(vp8LayerPacket(1, 0, false)) // not a keyframe: the top layer flows on
	eventually(t, 2*time.Second, "the top layer flows until the target's keyframe", func() bool { return sink.count(2) == 2 })
	ls[1].ingest(vp8LayerPacket(1, 1, true))
	eventually(t, 2*time.Second, "switched to the target at its keyframe", func() bool { return sink.count(1) == 1 })
	ls[2].ingest(vp8LayerPacket(2, 3, false))
	ls[1].ingest(vp8LayerPacket(1, 2, false))
	eventually(t, 2*time.Second, "the target flows", func() bool { return sink.count(1) == 2 })
	if sink.count(2) != 2 || ls[2].subscriberCount() != 0 || sw.current() != 1 {
		t.Fatalf("after the switch: %d top-layer packets (want 2), %d top-layer subscribers (want 0), current %d",
			sink.count(2), ls[2].subscriberCount(), sw.current())
	}
	// Once a picture was shown, a change of target keeps no earlier layer.
	sw.setTarget(0)
	sw.setTarget(2)
	if ls[0].subscriberCount() != 0 {
		t.Errorf("a target left after the first picture is still subscribed")
	}
}

// sinkRecorder is a switchSink that counts packets per layer (by SSRC).
type sinkRecorder struct {
	mu       sync.Mutex
	perLayer [maxLayers]int
	switches int
	notReady atomic.Bool // its connection is still coming up
}

func (s *sinkRecorder) WriteRTP(p *rtp.Packet) error {
	s.mu.Lock()
	s.perLayer[p.SSRC-10]++
	s.mu.Unlock()
	return nil
}
func (s *sinkRecorder) Resync()              {}
func (s *sinkRecorder) mediaReady() bool     { return !s.notReady.Load() }
func (s *sinkRecorder) switchLayer(*upLayer) { s.mu.Lock(); s.switches++; s.mu.Unlock() }
func (s *sinkRecorder) count(i int) int      { s.mu.Lock(); defer s.mu.Unlock(); return s.perLayer[i] }

// srSub reads the track's sender report from inside WriteRTP, as the
// recorder does.
type srSub struct {
	recordingSub
	u *UpTrack
}

func (s *srSub) WriteRTP(p *rtp.Packet) error {
	time.Sleep(100 * time.Microsecond) // a muxer's work, with the switch's lock held
	_ = s.u.LastSenderReport()
	return s.recordingSub.WriteRTP(p)
}

// Regression: the room tick (updateLayers) and a recorder reading the
// sender report on the packet path once took the track's and a switch's
// locks in opposite orders and deadlocked a 1+117 session.
func TestSwitchNoDeadlockWithRoomTick(t *testing.T) {
	u, ls := newSimulcastTrack(t, SystemClock{})
	sub := &srSub{u: u}
	u.Subscribe(sub)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := uint16(0); n < 1000; n++ {
			ls[2].ingest(vp8LayerPacket(2, n, n%30 == 0))
			time.Sleep(150 * time.Microsecond) // paced: the fan-out queue is short
		}
	}()
	ticks := make(chan struct{})
	go func() {
		defer close(ticks)
		for {
			select {
			case <-done:
				return
			default:
			}
			u.updateLayers(time.Now())
		}
	}()
	for _, ch := range []chan struct{}{done, ticks} {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatal("deadlock between the packet path and the room tick")
		}
	}
	eventually(t, 5*time.Second, "packets reached the recorder", func() bool { s, _ := sub.snapshot(); return len(s) > 100 })
}

// A publisher is never told to pause a layer the server has not received:
// browsers start their upper layers seconds into a call, and a layer paused
// before it was ever sent could never be asked for.
func TestLayersListsLayersNotYetReceived(t *testing.T) {
	clk := &manualClock{now: time.Unix(100, 0)}
	var ctr counters
	u := newTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, vp8Params(), clk, discardLogger(), &ctr,
		fanoutOptions{queueLen: 64, perWriter: 8, maxWriters: 1, kfMinSpacing: time.Millisecond}, nil)
	u.simulcast = true
	t.Cleanup(u.close)
	told := &layersTold{}
	u.notifyLayers = told.add
	u.addLayer("q", 0, 10, 64) // only q has arrived
	u.updateLayers(clk.Now())  // nobody watches q
	sw := u.addSwitch(&sinkRecorder{})
	sw.setTarget(0)
	u.updateLayers(clk.Now()) // somebody watches q
	want := "[[h f] [q h f]]"
	eventually(t, 5*time.Second, "q resumed", func() bool { return told.String() == want })
}

// layersTold records what a track tells its publisher with `layers`; a
// resume announces from its own goroutine.
type layersTold struct {
	mu   sync.Mutex
	told [][]string
}

func (l *layersTold) add(active []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.told = append(l.told, active)
}

func (l *layersTold) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.told)
}

// A layer paused because nobody watched it is resumed as soon as a
// subscriber chooses it, not at the next room tick: the subscriber waits
// for its keyframe, and a browser ignores keyframe requests for a layer it
// does not encode. Resuming never pauses anything; that is the tick's job.
func TestLayerResumedWhenChosen(t *testing.T) {
	clk := &manualClock{now: time.Unix(100, 0)}
	u, _ := newSimulcastTrack(t, clk)
	told := &layersTold{}
	u.notifyLayers = told.add
	a, b := u.addSwitch(&sinkRecorder{}), u.addSwitch(&sinkRecorder{})
	u.updateLayers(clk.Now()) // nobody watches anything yet
	a.setTarget(1)
	eventually(t, 5*time.Second, "h resumed without a tick", func() bool { return told.String() == "[[] [h]]" })
	b.setTarget(2)
	eventually(t, 5*time.Second, "f resumed, h kept", func() bool { return told.String() == "[[] [h] [h f]]" })
	a.setTarget(0) // h is unwatched now, but only the tick pauses it
	eventually(t, 5*time.Second, "q resumed, h kept", func() bool { return told.String() == "[[] [h] [h f] [q h f]]" })
	a.setTarget(2) // f is announced already: nothing to say
	u.updateLayers(clk.Now())
	if got, want := told.String(), "[[] [h] [h f] [q h f] [f]]"; got != want {
		t.Fatalf("told %s, want %s (the tick pauses what nobody watches)", got, want)
	}
}
