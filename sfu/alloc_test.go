package sfu

import (
	"testing"
	"time"
)

func threeLayers() [maxLayers]layerOption {
	return [maxLayers]layerOption{
		{available: true, bitrate: 150_000, height: 180},
		{available: true, bitrate: 500_000, height: 360},
		{available: true, bitrate: 1_500_000, height: 720},
	}
}

func TestLayerForHeight(t *testing.T) {
	l := threeLayers()
	for _, tc := range []struct{ h, want int }{{0, -1}, {90, 0}, {180, 0}, {190, 0}, {200, 1}, {360, 1}, {500, 2}, {1080, 2}} {
		if got := layerForHeight(l, tc.h); got != tc.want {
			t.Errorf("height %d: layer %d, want %d", tc.h, got, tc.want)
		}
	}
	l[2].available = false
	if got := layerForHeight(l, 720); got != 1 {
		t.Errorf("top layer missing: layer %d, want 1", got)
	}
}

// A falling estimate below what is sent moves everyone down to what fits,
// the biggest tile first; the floor is the lowest layer, never nothing.
func TestAllocatorCongestionMovesDown(t *testing.T) {
	var a allocator
	now := time.Unix(1000, 0)
	items := []allocItem{
		{layers: threeLayers(), maxLayer: 2, cur: 2, order: 1},
		{layers: threeLayers(), maxLayer: 0, cur: 0, order: 2},
	}
	got := a.decide(now, 3_000_000, 64_000, items)
	if got[0] != 2 || got[1] != 0 {
		t.Fatalf("steady: %v", got)
	}
	items[0].cur, items[1].cur = got[0], got[1]
	got = a.decide(now.Add(500*time.Millisecond), 800_000, 64_000, items)
	if got[0] != 1 || got[1] != 0 {
		t.Fatalf("at 800 kbit/s: %v, want [1 0]", got)
	}
	items[0].cur = got[0]
	got = a.decide(now.Add(time.Second), 250_000, 64_000, items)
	if got[0] != 0 || got[1] != 0 {
		t.Fatalf("at 250 kbit/s: %v, want the floor [0 0]", got)
	}
}

// A low but steady estimate (GCC lagging behind what was just added) does
// not move anyone down.
func TestAllocatorSteadyLowEstimateKeeps(t *testing.T) {
	var a allocator
	now := time.Unix(1000, 0)
	items := []allocItem{{layers: threeLayers(), maxLayer: 2, cur: 2}}
	for i := 0; i < 10; i++ {
		got := a.decide(now.Add(time.Duration(i)*500*time.Millisecond), 1_000_000, 0, items)
		if got[0] != 2 {
			t.Fatalf("tick %d: layer %d, want 2 kept", i, got[0])
		}
	}
}

// After congestion the allocator probes one layer up once the link was
// calm for the hold time; a probe that meets congestion doubles the hold.
func TestAllocatorProbesWithBackoff(t *testing.T) {
	var a allocator
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	items := []allocItem{{layers: threeLayers(), maxLayer: 2, cur: 2}}
	a.decide(at(0), 2_000_000, 0, items)
	got := a.decide(at(500*time.Millisecond), 250_000, 0, items) // congestion
	if got[0] != 0 {
		t.Fatalf("congested: layer %d", got[0])
	}
	items[0].cur = 0
	// GCC caps its estimate near 1.5x what it sees: 225 kbit/s cannot
	// prove room for the 500 kbit/s layer, so nothing before the hold.
	if got := a.decide(at(2*time.Second), 225_000, 0, items); got[0] != 0 {
		t.Fatalf("before the hold: layer %d", got[0])
	}
	got = a.decide(at(2600*time.Millisecond), 225_000, 0, items)
	if got[0] != 1 {
		t.Fatalf("after the hold: layer %d, want a probe to 1", got[0])
	}
	items[0].cur = 1
	// The probe overloads the link: down again, and the hold doubles.
	if got := a.decide(at(3500*time.Millisecond), 200_000, 0, items); got[0] != 0 {
		t.Fatalf("failed probe: layer %d", got[0])
	}
	items[0].cur = 0
	if a.hold != 2*baseHold {
		t.Fatalf("hold %v after a failed probe, want %v", a.hold, 2*baseHold)
	}
	if got := a.decide(at(6*time.Second), 210_000, 0, items); got[0] != 0 {
		t.Fatalf("probed again before the doubled hold: layer %d", got[0])
	}
	if got := a.decide(at(7600*time.Millisecond), 210_000, 0, items); got[0] != 1 {
		t.Fatalf("no probe after the doubled hold: layer %d", got[0])
	}
	items[0].cur = 1
	// The probe holds (the estimate rises with what is delivered): the
	// next step is covered by the estimate and taken at once.
	if got := a.decide(at(8*time.Second), 2_500_000, 0, items); got[0] != 2 {
		t.Fatalf("with room: layer %d, want 2", got[0])
	}
}

// The page's tile size caps the layer, 0x0 stops the video, and a layer
// that is not available is never chosen.
func TestAllocatorSizeAndAvailability(t *testing.T) {
	var a allocator
	now := time.Unix(1000, 0)
	l := threeLayers()
	items := []allocItem{
		{layers: l, maxLayer: 1, cur: -1},
		{layers: l, maxLayer: -1, cur: 2},
		{layers: l, maxLayer: 2, cur: -1},
	}
	items[2].layers[2].available = false
	got := a.decide(now, 0, 0, items)
	if got[0] != 1 || got[1] != -1 || got[2] != 1 {
		t.Fatalf("got %v, want [1 -1 1]", got)
	}
	// Only the top layer is sent: even a thumbnail gets it.
	only := [maxLayers]layerOption{2: {available: true, bitrate: 1_500_000, height: 720}}
	got = a.decide(now, 0, 0, []allocItem{{layers: only, maxLayer: 0, cur: -1}})
	if got[0] != 2 {
		t.Fatalf("only the top layer: got %d", got[0])
	}
}

// What a subscriber receives besides its simulcast layers counts against its
// estimate: its other tracks (not audio held back) and its speaker slots.
func TestFixedRate(t *testing.T) {
	var ctr counters
	opts := fanoutOptions{queueLen: 16, perWriter: 2, maxWriters: 4, kfMinSpacing: time.Second}
	mk := func(id, kind string, bps int64) *UpTrack {
		u := newUpTrack(TrackInfo{ID: id, Kind: kind, MimeType: "audio/opus"}, 5, vp8Params(), 64, SystemClock{},
			discardLogger(), &ctr, opts, nil)
		t.Cleanup(u.close)
		u.base().rateBps.Store(bps)
		return u
	}
	screen, voice, quiet := mk("S", "video", 800_000), mk("A", "audio", 40_000), mk("B", "audio", 40_000)
	quiet.gated.Store(true)
	slotA, slotB := mk("C", "audio", 32_000), mk("D", "audio", 30_000)
	if got, want := fixedRate([]*UpTrack{screen, voice, quiet}, []*UpTrack{slotA, slotB}), 800_000+40_000+32_000+30_000; got != want {
		t.Fatalf("fixedRate = %d, want %d", got, want)
	}
	if got := fixedRate(nil, nil); got != 0 {
		t.Fatalf("nothing received: %d", got)
	}
}
