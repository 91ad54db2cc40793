package mux

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// segmentSink collects OnSegment reports.
type segmentSink struct {
	mu   sync.Mutex
	segs []Segment
}

func (s *segmentSink) add(seg Segment) {
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
}

func (s *segmentSink) all() []Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Segment(nil), s.segs...)
}

type keyCounter struct {
	mu sync.Mutex
	n  int
}

func (k *keyCounter) inc() { k.mu.Lock(); k.n++; k.mu.Unlock() }
func (k *keyCounter) get() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n
}

var testT0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

type harness struct {
	rec  *Recorder
	clk  *fakeClock
	sink *segmentSink
	keys *keyCounter
	dir  string
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{clk: &fakeClock{t: testT0}, sink: &segmentSink{}, keys: &keyCounter{}, dir: t.TempDir()}
	if keep := os.Getenv("MUX_KEEP_DIR"); keep != "" {
		// Debugging aid: keep the segments of a failing test.
		h.dir = filepath.Join(keep, t.Name())
		if err := os.MkdirAll(h.dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Name == "" {
		cfg.Name = "sess1_p1_camera"
	}
	cfg.Dir = h.dir
	cfg.Now = h.clk.Now
	cfg.OnSegment = h.sink.add
	cfg.RequestKeyframe = h.keys.inc
	r, err := newRecorder(cfg)
	if err != nil {
		t.Fatalf("newRecorder: %v", err)
	}
	h.rec = r
	return h
}

func (h *harness) track(t *testing.T, mime string) *Track {
	t.Helper()
	tr, err := h.rec.AddTrack(mime)
	if err != nil {
		t.Fatalf("AddTrack %s: %v", mime, err)
	}
	return tr
}

// checkSegment runs the outside tools on a finished segment.
func checkSegment(t *testing.T, seg Segment, wantVideo, wantAudio string, wantDur time.Duration, wantFrames int) {
	t.Helper()
	if seg.Err != nil {
		t.Fatalf("segment %d: %v", seg.Index, seg.Err)
	}
	p := ffprobe(t, seg.Path)
	if d := p.duration() - wantDur; d > time.Second || d < -time.Second {
		t.Errorf("segment %d: ffprobe duration %v, want %v ±1s (%+v)", seg.Index, p.duration(), wantDur, seg)
		pk := ffprobePackets(t, seg.Path)
		for i, x := range pk {
			if i < 6 || i >= len(pk)-10 {
				t.Logf("packet %d: %+v", i, x)
			}
		}
	}
	if d := seg.Duration - wantDur; d > time.Second || d < -time.Second {
		t.Errorf("segment %d: reported duration %v, want %v ±1s", seg.Index, seg.Duration, wantDur)
	}
	if wantVideo != "" {
		c, w, hh, n, ok := p.stream("video")
		if !ok || c != wantVideo || w != 640 || hh != 480 {
			t.Errorf("segment %d: video %q %dx%d, want %s 640x480", seg.Index, c, w, hh, wantVideo)
		}
		if wantFrames >= 0 && n != wantFrames {
			t.Errorf("segment %d: %d video frames decoded, want %d", seg.Index, n, wantFrames)
		}
		if n != seg.VideoFrames {
			t.Errorf("segment %d: reported %d video frames, ffprobe read %d", seg.Index, seg.VideoFrames, n)
		}
	} else if _, _, _, _, ok := p.stream("video"); ok {
		t.Errorf("segment %d: unexpected video stream", seg.Index)
	}
	if wantAudio != "" {
		if c, _, _, _, ok := p.stream("audio"); !ok || c != wantAudio {
			t.Errorf("segment %d: audio %q, want %s", seg.Index, c, wantAudio)
		}
	}
	if e := decodeErrors(t, seg.Path); e != "" {
		t.Errorf("segment %d: decoding reported errors:\n%s", seg.Index, e)
	}
	pk := ffprobePackets(t, seg.Path)
	for i := 1; i < len(pk); i++ {
		// Interleaved in time order: nothing far behind what came before.
		if pk[i].pts < pk[i-1].pts-60*time.Millisecond {
			t.Errorf("segment %d: packet %d (stream %d) at %v follows one at %v", seg.Index, i, pk[i].stream, pk[i].pts, pk[i-1].pts)
			break
		}
	}
	if wantVideo != "" {
		for _, x := range pk {
			if x.stream == 0 {
				if !x.key {
					t.Errorf("segment %d: first video packet is not a keyframe", seg.Index)
				}
				break
			}
		}
	}
}

// mkvCues returns how many cue points mkvinfo shows.
func mkvCues(t *testing.T, path string) int {
	t.Helper()
	bin := requireTool(t, "mkvinfo")
	out, err := exec.Command(bin, "-a", path).CombinedOutput()
	if err != nil {
		t.Fatalf("mkvinfo %s: %v\n%s", path, err, out)
	}
	s := string(out)
	if !strings.Contains(s, "|+ Cues") {
		t.Errorf("mkvinfo shows no Cues in %s", path)
	}
	return strings.Count(s, "Cue point")
}

// TestRecordCodecs records each video codec with Opus through a network
// that reorders, duplicates and loses packets that NACK then repairs: the
// file must hold every frame.
func TestRecordCodecs(t *testing.T) {
	for _, tc := range []struct {
		mime  string
		codec Codec
		probe string
	}{
		{"video/VP8", CodecVP8, "vp8"},
		{"video/VP9", CodecVP9, "vp9"},
		{"video/H264", CodecH264, "h264"},
	} {
		t.Run(string(tc.codec), func(t *testing.T) {
			v := clip(t, tc.codec, 8, 40)
			a := clip(t, CodecOpus, 8, 0)
			h := newHarness(t, Config{})
			vt := h.track(t, tc.mime)
			at := h.track(t, "audio/opus")
			net := network{delay: 30 * time.Millisecond, jitter: 25 * time.Millisecond,
				retxRate: 0.03, retxDelay: 120 * time.Millisecond, dupRate: 0.02, seed: 1}
			va, _ := net.deliver(withPadding(packetize(v, 1111, 5000), 10), vt)
			aa, _ := net.deliver(packetize(a, 2222, 7000), at)
			arr := append(va, aa...)
			sortArrivals(arr)
			feed(t, h.rec, h.clk, testT0, arr, nil)
			if err := h.rec.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			segs := h.sink.all()
			if len(segs) != 1 {
				t.Fatalf("%d segments, want 1: %+v", len(segs), segs)
			}
			seg := segs[0]
			checkSegment(t, seg, tc.probe, "opus", 8*time.Second, len(v.frames))
			if seg.AudioFrames != len(a.frames) {
				t.Errorf("%d audio frames written, want %d", seg.AudioFrames, len(a.frames))
			}
			st := h.rec.Stats()
			if st.PacketsLost != 0 || st.FramesDropped != 0 || seg.PacketsLost != 0 {
				t.Errorf("stats %+v: want nothing lost", st)
			}
			if st.Duplicates == 0 {
				t.Errorf("stats %+v: duplicates were sent but none counted", st)
			}
			if n := mkvCues(t, seg.Path); n < 4 {
				t.Errorf("%d cue points, want one per keyframe (4)", n)
			}
			if d := seg.Start.Sub(testT0); d < 0 || d > 200*time.Millisecond {
				t.Errorf("segment starts %v after the first packet was sent, want about the network delay", d)
			}
			if h.keys.get() == 0 {
				t.Errorf("no keyframe was requested at start")
			}
		})
	}
}
