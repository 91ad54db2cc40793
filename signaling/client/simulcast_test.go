package client

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/peertest"
	"github.com/ducha-dev/ducha/signaling"
)

// The mid and rid extensions land in the marshalled header where a
// receiver reads them, are replaced in place on the next packet, and cost
// no allocation per packet.
func TestStampSimulcast(t *testing.T) {
	s := &Simulcast{mid: "c3"}
	s.ids.Store(4<<8 | 10)
	var got capture
	l := &SimulcastLayer{sim: s, rid: "h", midBytes: []byte("c3"), ridBytes: []byte("h"), out: &got}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7}, Payload: []byte{0x10, 1, 2, 3}}
	for i := 0; i < 3; i++ {
		if err := l.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
	}
	if len(pkt.Header.Extensions) != 2 {
		t.Errorf("%d extensions after three packets, want 2 (replaced in place)", len(pkt.Header.Extensions))
	}
	b, err := got.pkts[2].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back rtp.Packet
	if err := back.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if m, r := string(back.GetExtension(4)), string(back.GetExtension(10)); m != "c3" || r != "h" {
		t.Errorf("extensions mid %q rid %q, want c3 and h", m, r)
	}
	if back.SequenceNumber != 7 || len(back.Payload) != 4 {
		t.Errorf("packet changed: seq %d, %d payload bytes", back.SequenceNumber, len(back.Payload))
	}

	discard := &SimulcastLayer{sim: s, rid: "h", midBytes: []byte("c3"), ridBytes: []byte("h"), out: nopWriter{}}
	if n := testing.AllocsPerRun(1000, func() { _ = discard.WriteRTP(pkt) }); n != 0 {
		t.Errorf("%.1f allocations per stamped packet, want 0", n)
	}

	// Paused, or before the ids are negotiated: nothing goes out.
	l.paused.Store(true)
	_ = l.WriteRTP(pkt)
	s2 := &Simulcast{}
	early := &SimulcastLayer{sim: s2, rid: "q", out: &got}
	_ = early.WriteRTP(pkt)
	if len(got.pkts) != 3 || l.Written.Load() != 3 || l.Dropped.Load() != 1 || early.Dropped.Load() != 1 {
		t.Errorf("%d packets out, written %d dropped %d (+%d before negotiation)", len(got.pkts), l.Written.Load(),
			l.Dropped.Load(), early.Dropped.Load())
	}
}

type nopWriter struct{}

func (nopWriter) WriteRTP(*rtp.Packet) error { return nil }

// fakeLayer is a LayerWriter the test steers from hooks that run on the
// Synth's goroutine.
type fakeLayer struct {
	capture
	paused, keyframe bool
}

func (f *fakeLayer) Paused() bool { return f.paused }
func (f *fakeLayer) KeyframeRequested() bool {
	k := f.keyframe
	f.keyframe = false
	return k
}

// frameInfo is one frame a fake layer received.
type frameInfo struct {
	index         int // tick number
	key           bool
	width, height int
	bytes         int
}

// layerFrames depacketizes a layer's packets and checks its trailers.
func layerFrames(t *testing.T, pkts []rtp.Packet, layer int) []frameInfo {
	t.Helper()
	var out []frameInfo
	for i, p := range pkts {
		if tr, ok := ParseTrailer(p.Payload); ok && (tr.Layer != layer || tr.Counter != uint32(i+1)) {
			t.Errorf("layer %d packet %d: trailer layer %d counter %d", layer, i, tr.Layer, tr.Counter)
		}
	}
	for _, f := range depacketize(t, pkts) {
		fi := frameInfo{key: f[0]&1 == 0, bytes: len(f)}
		if fi.key {
			var ok bool
			if fi.width, fi.height, ok = VP8KeyframeSize(append([]byte{0x10}, f...)); !ok {
				t.Errorf("layer %d: a keyframe without a readable size", layer)
			}
		}
		out = append(out, fi)
	}
	// The RTP timestamp says which tick a frame belongs to.
	for i := range out {
		out[i].index = -1
	}
	var ts []uint32
	for _, p := range pkts {
		if p.Marker {
			ts = append(ts, p.Timestamp)
		}
	}
	for i := range out {
		out[i].index = int(ts[i]/(90000/30)) - 1
	}
	return out
}

// Each layer sends its own picture size and bitrate; a paused layer sends
// nothing and comes back with a keyframe; a keyframe request reaches only
// its layer.
func TestSynthLayersPauseResume(t *testing.T) {
	q, h := &fakeLayer{}, &fakeLayer{}
	s := &Synth{Video: true, KeyEvery: 1000, Layers: []SynthLayer{
		{Out: q, Width: 320, Height: 180, FrameBytes: 300},
		{Out: h, Width: 640, Height: 360, FrameBytes: 1000},
	}}
	qFrames := 0
	q.onPacket = func(n int) {
		if !q.pkts[n-1].Marker {
			return
		}
		qFrames++
		switch qFrames {
		case 3: // after frame 2 of q, before frame 2 of h
			h.paused = true
		case 6: // frame 5 of h is the first again
			h.paused = false
		case 7:
			q.keyframe = true // frame 7 of q
		}
	}
	runCapture(t, s, 9, &capture{})
	qf, hf := layerFrames(t, q.pkts, 0), layerFrames(t, h.pkts, 1)

	var qIdx, qKeys, hIdx, hKeys []int
	for _, f := range qf {
		qIdx = append(qIdx, f.index)
		if f.key {
			qKeys = append(qKeys, f.index)
			if f.width != 320 || f.height != 180 {
				t.Errorf("q keyframe %dx%d, want 320x180", f.width, f.height)
			}
		} else if f.bytes != 300 {
			t.Errorf("q frame %d: %d bytes, want 300", f.index, f.bytes)
		}
	}
	for _, f := range hf {
		hIdx = append(hIdx, f.index)
		if f.key {
			hKeys = append(hKeys, f.index)
			if f.width != 640 || f.height != 360 {
				t.Errorf("h keyframe %dx%d, want 640x360", f.width, f.height)
			}
		} else if f.bytes != 1000 {
			t.Errorf("h frame %d: %d bytes, want 1000", f.index, f.bytes)
		}
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(qIdx, want) {
		t.Errorf("q sent frames %v, want %v", qIdx, want)
	}
	if want := []int{0, 7}; !slices.Equal(qKeys, want) {
		t.Errorf("q keyframes at %v, want %v (start, request)", qKeys, want)
	}
	if want := []int{0, 1, 5, 6, 7, 8}; !slices.Equal(hIdx, want) {
		t.Errorf("h sent frames %v, want %v (paused for 2..4)", hIdx, want)
	}
	if want := []int{0, 5}; !slices.Equal(hKeys, want) {
		t.Errorf("h keyframes at %v, want %v (start, resume)", hKeys, want)
	}
	// Both layers carry the tick's timestamp: same capture instant.
	if q.pkts[len(q.pkts)-1].Timestamp != h.pkts[len(h.pkts)-1].Timestamp {
		t.Error("layers of one frame have different timestamps")
	}
}

// A `layers` message pauses the layers it does not list on the sender
// with that mid, and resumes them when they are listed again.
func TestClientLayersMessage(t *testing.T) {
	s := &Simulcast{mid: "c1"}
	for _, rid := range DefaultRIDs() {
		s.layers = append(s.layers, &SimulcastLayer{sim: s, rid: rid})
	}
	c := &Client{simulcasts: map[string]*Simulcast{"c1": s}, log: slog.New(slog.DiscardHandler)}
	msg := func(mid string, active ...string) {
		data, _ := json.Marshal(signaling.Layers{Track: "T1", Mid: mid, Active: active})
		c.handle(signaling.Envelope{Type: signaling.TypeLayers, Data: data})
	}
	paused := func() (out []string) {
		for _, l := range s.Layers() {
			if l.Paused() {
				out = append(out, l.RID())
			}
		}
		return out
	}
	if p := paused(); p != nil || s.Active() != nil {
		t.Fatalf("paused %v active %v before any message", p, s.Active())
	}
	msg("c1", "q")
	if p := paused(); !slices.Equal(p, []string{"h", "f"}) {
		t.Errorf("after [q]: paused %v", p)
	}
	msg("c9", "h") // another sender's: ignored
	msg("c1", "q", "f")
	if p := paused(); !slices.Equal(p, []string{"h"}) || !slices.Equal(s.Active(), []string{"q", "f"}) {
		t.Errorf("after [q f]: paused %v active %v", p, s.Active())
	}
	msg("c1")
	if p := paused(); len(p) != 3 || s.Active() == nil {
		t.Errorf("after []: paused %v, active %v", p, s.Active())
	}
	if n := s.LayersMessages.Load(); n != 3 {
		t.Errorf("%d layers messages applied, want 3", n)
	}
}

// loopbackAPI is a Pion API for a receiving peer in tests: default codecs
// and interceptors (the simulcast extensions among them).
// publisherPC is a PeerConnection built the way the load tool's clients
// build theirs (NewAPI), closed at the end of the test.
func publisherPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	api, err := NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
}

// ridStats is what the receiving peer saw of one layer.
type ridStats struct {
	packets       atomic.Int64
	width, height atomic.Int64 // of the last keyframe
	layer         atomic.Int64 // from the trailers
	// watch: the test waits for the layer's first packet after a resume;
	// resumedKey says whether it started a keyframe.
	watch, resumedKey, resumed atomic.Bool
}

// With real Pion peers: the three layers arrive as three tracks of one
// media section named by their rids (Pion drops an SSRC whose packets lack
// the mid and rid extensions, so this also proves the stamping), each with
// its own picture size; pausing stops a layer's packets and resuming
// starts it again with a keyframe.
func TestSimulcastPionLoopback(t *testing.T) {
	pub := publisherPC(t)
	sub, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	var mu sync.Mutex
	stats := map[string]*ridStats{}
	var readers sync.WaitGroup
	sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		st := &ridStats{}
		st.layer.Store(-2)
		mu.Lock()
		stats[tr.RID()] = st
		mu.Unlock()
		readers.Add(1)
		defer readers.Done()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			st.packets.Add(1)
			w, h, key := VP8KeyframeSize(p.Payload)
			if key {
				st.width.Store(int64(w))
				st.height.Store(int64(h))
			}
			if tr, ok := ParseTrailer(p.Payload); ok {
				st.layer.Store(int64(tr.Layer))
			}
			if st.watch.Swap(false) {
				st.resumedKey.Store(key)
				st.resumed.Store(true)
			}
		}
	})

	sim, err := newSimulcast(pub, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		"video", "pub", "c0", DefaultRIDs())
	if err != nil {
		t.Fatal(err)
	}
	peertest.Negotiate(t, pub, sub)
	sim.refreshIDs()
	if !sim.Negotiated() {
		t.Fatalf("no mid/rid extension ids after negotiation: %+v", sim.Sender.GetParameters().HeaderExtensions)
	}
	sim.watchRTCP()

	synth := &Synth{Video: true, FPS: 30, KeyEvery: 1000}
	for _, l := range sim.Layers() {
		w, h := LayerSize(l.RID())
		synth.Layers = append(synth.Layers, SynthLayer{Out: l, Width: w, Height: h, FrameBytes: 400})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); synth.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func(rid string) *ridStats {
		mu.Lock()
		defer mu.Unlock()
		return stats[rid]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, rid := range DefaultRIDs() {
		waitFor("layer "+rid, func() bool { st := get(rid); return st != nil && st.width.Load() > 0 && st.layer.Load() >= 0 })
		st := get(rid)
		w, h := LayerSize(rid)
		if int(st.width.Load()) != w || int(st.height.Load()) != h || int(st.layer.Load()) != i {
			t.Errorf("rid %s: keyframe %dx%d trailer layer %d, want %dx%d layer %d", rid, st.width.Load(),
				st.height.Load(), st.layer.Load(), w, h, i)
		}
	}

	sim.setActive([]string{"q"})
	time.Sleep(300 * time.Millisecond) // what was in flight arrives
	hBefore, fBefore, qBefore := get("h").packets.Load(), get("f").packets.Load(), get("q").packets.Load()
	time.Sleep(500 * time.Millisecond)
	if h, f := get("h").packets.Load()-hBefore, get("f").packets.Load()-fBefore; h != 0 || f != 0 {
		t.Errorf("paused layers still arrive: h %d, f %d packets in 500 ms", h, f)
	}
	if get("q").packets.Load() == qBefore {
		t.Error("the active layer q stopped too")
	}

	get("h").watch.Store(true)
	sim.setActive([]string{"q", "h"})
	waitFor("h to resume", func() bool { return get("h").resumed.Load() })
	if !get("h").resumedKey.Load() {
		t.Error("h resumed without a keyframe")
	}
	if n := get("f").packets.Load(); n != fBefore {
		t.Errorf("f, still paused, sent %d packets", n-fBefore)
	}
	cancel()
	<-done
	_ = pub.Close()
	_ = sub.Close()
	readers.Wait()
}

// An API whose MediaEngine lacks the mid and rid extensions could never
// send a layer the server accepts: publishing says so at once.
func TestSimulcastNeedsExtensions(t *testing.T) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	// An empty registry: without one NewAPI adds the default
	// interceptors, and the extensions with them.
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(&interceptor.Registry{})).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = newSimulcast(pc, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		"video", "s", "c0", DefaultRIDs())
	if !errors.Is(err, ErrSimulcast) {
		t.Errorf("err %v, want ErrSimulcast", err)
	}
	if _, err := newSimulcast(pc, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		"video", "s", "c1", []string{"q", "q"}); !errors.Is(err, ErrSimulcast) {
		t.Errorf("repeated rids: err %v", err)
	}
}
