package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// layerTrailed is a payload with the trailer a simulcast Synth layer writes.
func layerTrailed(counter uint32, layer, n int) []byte {
	p := trailed(time.Unix(1000, 0), counter, n)
	binary.BigEndian.PutUint32(p[n-16:], 0x44554300|uint32('0'+layer))
	return p
}

// vp8Key720 starts a 1280x720 keyframe: descriptor, frame tag, start code,
// size. It carries no trailer, as the start of a large keyframe does not.
func vp8Key720() []byte {
	p := make([]byte, 1100)
	copy(p, []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02})
	return p
}

// A layer switch closes one counter segment and opens the next, whose
// untrailered first packets (the keyframe's start) count in the new one:
// loss on both sides of the switch is found, and none is invented.
func TestRecvTrackLayerSwitch(t *testing.T) {
	now := time.Unix(1000, 0)
	rt := newRecvTrack("V", true, &delayHist{}, &delayHist{}, nil, func() time.Time { return now })
	if rt.layer.Load() != layerUnknown {
		t.Fatalf("layer %d before any packet", rt.layer.Load())
	}
	// Layer q (0): counters 1..10 on sequence numbers 100..109; 104 lost.
	for seq := uint16(100); seq < 110; seq++ {
		if seq != 104 {
			rt.onPacket(rtpPacket(seq, true, layerTrailed(uint32(seq-99), 0, 200), 0, -1, 0), now)
		}
	}
	if c := rt.counts(); c.layer != 0 || c.ctrExpected != 10 || c.ctrUnique != 9 {
		t.Fatalf("on q: layer %d, counters %d of %d; want 0, 9 of 10", c.layer, c.ctrUnique, c.ctrExpected)
	}
	// The SFU switches to f (2) at a keyframe: 110 and 111 are its
	// untrailered start (counters 40, 41), 112..115 carry 42..45; 111 is lost.
	rt.onPacket(rtpPacket(110, false, vp8Key720(), 0, -1, 0), now)
	for seq := uint16(112); seq < 116; seq++ {
		rt.onPacket(rtpPacket(seq, seq == 115, layerTrailed(uint32(seq-70), 2, 200), 0, -1, 0), now)
	}
	c := rt.counts()
	if c.layer != 2 || c.layerSwitches != 1 || c.keyWidth != 1280 || c.keyHeight != 720 {
		t.Errorf("after the switch: layer %d, %d switches, keyframe %dx%d; want 2, 1, 1280x720", c.layer,
			c.layerSwitches, c.keyWidth, c.keyHeight)
	}
	if c.ctrExpected != 16 || c.ctrUnique != 14 {
		t.Errorf("counters %d of %d, want 14 of 16 (one lost on each layer)", c.ctrUnique, c.ctrExpected)
	}
	if c.expected != 16 || c.unique != 14 {
		t.Errorf("sequence numbers %d of %d, want 14 of 16", c.unique, c.expected)
	}
	// A late repair of the old layer neither switches back nor counts.
	rt.onPacket(rtpPacket(104, true, layerTrailed(5, 0, 200), 0, -1, 0), now)
	if c2 := rt.counts(); c2.layer != 2 || c2.layerSwitches != 1 || c2.ctrExpected != 16 || c2.unique != 15 {
		t.Errorf("after a late repair: layer %d, %d switches, counters %d of %d, unique seq %d", c2.layer,
			c2.layerSwitches, c2.ctrUnique, c2.ctrExpected, c2.unique)
	}

	// A plain stream is "single"; names follow the default rids.
	plain := newRecvTrack("P", true, &delayHist{}, &delayHist{}, nil, func() time.Time { return now })
	plain.onPacket(rtpPacket(1, true, trailed(now, 1, 100), 0, -1, 0), now)
	for layer, want := range map[int64]string{plain.layer.Load(): "single", 0: "q", 1: "h", 2: "f", 3: "layer3",
		layerUnknown: "unknown"} {
		if got := layerName(layer); got != want {
			t.Errorf("layerName(%d) = %q, want %q", layer, got, want)
		}
	}
}

// Layer bitrates follow --video-kbps unless given; tiles parse as WxH.
func TestSimulcastFlags(t *testing.T) {
	c, err := parseConfig([]string{"--spawn", "--video-kbps", "1500"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.layersFor(c.VideoKbps, c.LayerKbps)
	want := []layerSpec{{"q", 150, 320, 180}, {"h", 500, 640, 360}, {"f", 1500, 1280, 720}}
	if !slices.Equal(got, want) {
		t.Errorf("derived layers %v, want %v", got, want)
	}
	if c.S1Tile != (tileSize{640, 360}) || c.S2SupervisorTile != (tileSize{320, 180}) ||
		c.S2CountyTile != (tileSize{1280, 720}) {
		t.Errorf("default tiles %v %v %v", c.S1Tile, c.S2SupervisorTile, c.S2CountyTile)
	}
	c, err = parseConfig([]string{"--spawn", "--layer-kbps", "100,300,900", "--s2-supervisor-tile", "160x90",
		"--s1-tile", "0x0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if l := c.layersFor(c.VideoKbps, c.LayerKbps); l[0].Kbps != 100 || l[1].Kbps != 300 || l[2].Kbps != 900 {
		t.Errorf("explicit layers %v", l)
	}
	if c.S2SupervisorTile != (tileSize{160, 90}) || c.S1Tile != (tileSize{}) {
		t.Errorf("tiles %v %v", c.S2SupervisorTile, c.S1Tile)
	}
	b, _ := json.Marshal(c)
	if !bytes.Contains(b, []byte(`"s2_supervisor_tile":"160x90"`)) || !bytes.Contains(b, []byte(`"layer_kbps":[100,300,900]`)) {
		t.Errorf("config JSON: %s", b)
	}
	c, _ = parseConfig([]string{"--spawn", "--simulcast=false"}, &bytes.Buffer{})
	if c.layersFor(1000, nil) != nil {
		t.Error("layers planned with --simulcast=false")
	}
	for _, args := range [][]string{
		{"--spawn", "--layer-kbps", "100,200"},
		{"--spawn", "--layer-kbps", "100,x,300"},
		{"--spawn", "--small-layer-kbps", "0,1,2"},
		{"--spawn", "--s1-tile", "640"},
		{"--spawn", "--s2-county-tile", "640x0"},
		{"--spawn", "--s2-peer-tile", "-1x-1"},
	} {
		if code := realMain(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage error)", args, code)
		}
	}
}
