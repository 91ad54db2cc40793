package mux

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/ntp"
)

// record feeds clips through net into a fresh recorder and closes it.
func record(t *testing.T, cfg Config, net network, clips map[string]*encodedMedia) (*harness, []Segment) {
	t.Helper()
	h := newHarness(t, cfg)
	var arr []arrival
	ssrc := uint32(100)
	for mime, m := range clips {
		tr := h.track(t, mime)
		ssrc++
		a, _ := net.deliver(packetize(m, ssrc, ssrc*1000), tr)
		arr = append(arr, a...)
	}
	sortArrivals(arr)
	feed(t, h.rec, h.clk, testT0, arr, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return h, h.sink.all()
}

// checkContiguous: each segment starts where the previous one ended (to
// rounding), so the recording has no hole and no overlap.
func checkContiguous(t *testing.T, segs []Segment, frame time.Duration) {
	t.Helper()
	for i := 1; i < len(segs); i++ {
		if d := segs[i].Start.Sub(segs[i-1].End); d < -frame || d > frame {
			t.Errorf("segment %d starts %v after segment %d ends", segs[i].Index, d, segs[i-1].Index)
		}
	}
}

func TestRotationAtKeyframes(t *testing.T) {
	v := clip(t, CodecVP8, 13, 40) // keyframes every 2 s
	a := clip(t, CodecOpus, 13, 0)
	net := network{delay: 30 * time.Millisecond, jitter: 10 * time.Millisecond, seed: 5}
	h, segs := record(t, Config{MaxSegment: 5 * time.Second}, net,
		map[string]*encodedMedia{"video/VP8": v, "audio/opus": a})
	// Boundaries at the first keyframes at or after 5 s: 6 s and 12 s.
	want := []struct {
		dur    time.Duration
		frames int
	}{{6 * time.Second, 120}, {6 * time.Second, 120}, {time.Second, 20}}
	if len(segs) != len(want) {
		t.Fatalf("%d segments, want %d: %+v", len(segs), len(want), segs)
	}
	total := 0
	for i, s := range segs {
		checkSegment(t, s, "vp8", "opus", want[i].dur, want[i].frames)
		if s.Index != i+1 || !strings.HasSuffix(s.Path, ".webm") || filepath.Dir(s.Path) != h.dir {
			t.Errorf("segment %d: index %d path %s", i, s.Index, s.Path)
		}
		total += s.AudioFrames
	}
	if total != len(a.frames) {
		t.Errorf("%d audio frames over all segments, want %d", total, len(a.frames))
	}
	checkContiguous(t, segs, 2*time.Millisecond)
	// Asked at start and ahead of each boundary (KeyframeLead 1.25 s).
	if k := h.keys.get(); k < 3 {
		t.Errorf("%d keyframe requests, want at least 3", k)
	}
	left, _ := filepath.Glob(filepath.Join(h.dir, "*.part"))
	if len(left) != 0 {
		t.Errorf("unfinished files left: %v", left)
	}
}

func TestAudioOnlyRotatesAnywhere(t *testing.T) {
	a := clip(t, CodecOpus, 7, 0)
	net := network{delay: 30 * time.Millisecond, jitter: 10 * time.Millisecond, retxRate: 0.05, retxDelay: 100 * time.Millisecond, seed: 6}
	h, segs := record(t, Config{Name: "s_p_mic", MaxSegment: 3 * time.Second}, net, map[string]*encodedMedia{"audio/opus": a})
	if len(segs) != 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	total := 0
	for i, s := range segs {
		want := 3 * time.Second
		if i == 2 {
			want = time.Second
		}
		checkSegment(t, s, "", "opus", want, -1)
		total += s.AudioFrames
		if n := mkvCues(t, s.Path); n < 1 {
			t.Errorf("segment %d: no cue point", s.Index)
		}
	}
	if total != len(a.frames) {
		t.Errorf("%d audio frames, want %d", total, len(a.frames))
	}
	checkContiguous(t, segs, 2*time.Millisecond)
	if h.keys.get() != 0 {
		t.Errorf("keyframes requested for audio only")
	}
}

// TestLossIsCountedAndFileStaysDecodable: packets that never come are
// counted, the frames that depend on them are left out until the next
// keyframe (which is requested), and the file decodes without error.
func TestLossIsCountedAndFileStaysDecodable(t *testing.T) {
	v := clip(t, CodecVP8, 8, 40)
	a := clip(t, CodecOpus, 8, 0)
	net := network{delay: 30 * time.Millisecond, jitter: 10 * time.Millisecond,
		lossRate: 0.01, retxRate: 0.02, retxDelay: 900 * time.Millisecond, seed: 9}
	h := newHarness(t, Config{})
	vt := h.track(t, "video/VP8")
	at := h.track(t, "audio/opus")
	va, vLost := net.deliver(packetize(v, 1, 0), vt)
	aa, aLost := net.deliver(packetize(a, 2, 0), at)
	arr := append(va, aa...)
	sortArrivals(arr)
	keysBefore := h.keys.get()
	feed(t, h.rec, h.clk, testT0, arr, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs := h.sink.all()
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	s := segs[0]
	checkSegment(t, s, "vp8", "opus", 8*time.Second, -1)
	st := h.rec.Stats()
	// Retransmissions 900 ms late miss the 400 ms hold: lost, then late.
	if want := len(vLost) + len(aLost); st.PacketsLost < uint64(want) || st.PacketsLate == 0 {
		t.Errorf("stats %+v: want at least %d lost and some late", st, want)
	}
	if s.PacketsLost == 0 || s.FramesDropped == 0 || s.VideoFrames >= len(v.frames) {
		t.Errorf("segment %+v: losses not reported", s)
	}
	if h.keys.get() <= keysBefore+1 {
		t.Errorf("no keyframe requested after losses (%d requests)", h.keys.get())
	}
}

// TestSenderReportsAlignAudioAndVideo: audio reaches the server 180 ms after
// video sent at the same moment; with sender reports the file puts them
// together, without them it shows the network's skew.
func TestSenderReportsAlignAudioAndVideo(t *testing.T) {
	v := clip(t, CodecVP8, 4, 40)
	a := clip(t, CodecOpus, 4, 0)
	senderStart := time.Date(2026, 3, 2, 4, 0, 0, 0, time.UTC) // the sender's clock is far off
	toNTP := ntp.From
	for _, withSR := range []bool{false, true} {
		t.Run(map[bool]string{false: "arrival", true: "sender_reports"}[withSR], func(t *testing.T) {
			h := newHarness(t, Config{})
			vt := h.track(t, "video/VP8")
			at := h.track(t, "audio/opus")
			va, _ := network{delay: 20 * time.Millisecond}.deliver(packetize(v, 1, 90000), vt)
			aa, _ := network{delay: 200 * time.Millisecond}.deliver(packetize(a, 2, 48000), at)
			arr := append(va, aa...)
			sortArrivals(arr)
			srSent := false
			feed(t, h.rec, h.clk, testT0, arr, func(at time.Duration) {
				if withSR && !srSent && at >= 500*time.Millisecond {
					// Video's report first: audio must move back to it.
					srSent = true
					h.rec.SetSenderReport(KindVideo, toNTP(senderStart.Add(time.Second)), 90000+90000)
					h.rec.SetSenderReport(KindAudio, toNTP(senderStart.Add(time.Second)), 48000+48000)
				}
			})
			if err := h.rec.Close(); err != nil {
				t.Fatal(err)
			}
			segs := h.sink.all()
			if len(segs) != 1 {
				t.Fatalf("%d segments", len(segs))
			}
			checkSegment(t, segs[0], "vp8", "opus", 4*time.Second, -1)
			pk := ffprobePackets(t, segs[0].Path)
			var vpts, apts []time.Duration
			last := map[int]time.Duration{}
			for _, p := range pk {
				if p.pts < last[p.stream] {
					t.Fatalf("stream %d goes back in time: %v after %v", p.stream, p.pts, last[p.stream])
				}
				last[p.stream] = p.pts
				if p.stream == 0 {
					vpts = append(vpts, p.pts)
				} else {
					apts = append(apts, p.pts)
				}
			}
			// Video frame 60 and audio frame 150 were both sent at 3 s.
			skew := apts[150] - vpts[60]
			t.Logf("audio-video skew at 3 s: %v", skew)
			if withSR && math.Abs(float64(skew)) > float64(5*time.Millisecond) {
				t.Errorf("with sender reports audio is %v off video, want ~0", skew)
			}
			if !withSR && math.Abs(float64(skew-180*time.Millisecond)) > float64(5*time.Millisecond) {
				t.Errorf("by arrival audio is %v off video, want the 180 ms network skew", skew)
			}
		})
	}
}

// TestVideoAddedLater: the microphone publishes first, the camera 5 s later:
// an audio-only segment, then one with both starting on the first keyframe.
// Added within trackSettle, the first segment simply has both.
func TestVideoAddedLater(t *testing.T) {
	v := clip(t, CodecVP8, 4, 40)
	a := clip(t, CodecOpus, 9, 0)
	for _, tc := range []struct {
		delay    time.Duration
		segments int
	}{{5 * time.Second, 2}, {700 * time.Millisecond, 1}} {
		t.Run(tc.delay.String(), func(t *testing.T) {
			h := newHarness(t, Config{})
			at := h.track(t, "audio/opus")
			aa, _ := network{delay: 20 * time.Millisecond}.deliver(packetize(a, 2, 0), at)
			var vt *Track
			vpk := packetize(v, 1, 0)
			for i := range vpk {
				vpk[i].sendT += tc.delay
			}
			// The video track is added when its first packet is due.
			var va []arrival
			feedAll := append([]arrival(nil), aa...)
			sortArrivals(feedAll)
			feed(t, h.rec, h.clk, testT0, feedAll, func(at time.Duration) {
				if vt == nil && at >= tc.delay {
					vt = h.track(t, "video/VP8")
					va, _ = network{delay: 20 * time.Millisecond}.deliver(vpk, vt)
				}
				for len(va) > 0 && va[0].at <= at {
					if err := vt.WriteRTP(va[0].pkt); err != nil {
						t.Fatal(err)
					}
					va = va[1:]
				}
			})
			if err := h.rec.Close(); err != nil {
				t.Fatal(err)
			}
			segs := h.sink.all()
			if len(segs) != tc.segments {
				t.Fatalf("%d segments, want %d: %+v", len(segs), tc.segments, segs)
			}
			last := segs[len(segs)-1]
			if last.VideoCodec != CodecVP8 || last.VideoFrames != len(v.frames) {
				t.Errorf("last segment %+v: want all %d video frames", last, len(v.frames))
			}
			audio := 0
			for _, s := range segs {
				audio += s.AudioFrames
				checkSegment(t, s, string(s.VideoCodec), "opus", s.Duration, -1)
			}
			if audio != len(a.frames) {
				t.Errorf("%d audio frames, want %d", audio, len(a.frames))
			}
			if tc.segments == 2 && segs[0].VideoCodec != "" {
				t.Errorf("first segment should be audio only: %+v", segs[0])
			}
		})
	}
}

func TestRemoveTrack(t *testing.T) {
	h := newHarness(t, Config{})
	vt := h.track(t, "video/VP8")
	if _, err := h.rec.AddTrack("video/VP9"); !errors.Is(err, ErrTrackExists) {
		t.Fatalf("second video track: %v, want ErrTrackExists", err)
	}
	h.rec.RemoveTrack(KindVideo)
	pk := packetize(clip(t, CodecVP8, 1, 20), 1, 0)
	if err := vt.WriteRTP(pk[0].pkt); !errors.Is(err, ErrTrackRemoved) {
		t.Fatalf("WriteRTP after remove: %v, want ErrTrackRemoved", err)
	}
	vt2 := h.track(t, "video/VP8") // the kind is free again
	if err := h.rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vt2.WriteRTP(pk[0].pkt); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteRTP after Close: %v, want ErrClosed", err)
	}
	if _, err := h.rec.AddTrack("audio/opus"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddTrack after Close: %v, want ErrClosed", err)
	}
	if segs := h.sink.all(); len(segs) != 0 {
		t.Fatalf("segments without media: %+v", segs)
	}
}

func TestConfigAndNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", "..", "../x", "a/b", `a\b`, ".hidden", "a..b", "会话", "a b", "x\x00", strings.Repeat("a", 201)} {
		if err := CheckName(name); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("CheckName(%q) = %v, want ErrUnsafeName", name, err)
		}
		if _, err := New(Config{Dir: dir, Name: name}); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("New with name %q: %v, want ErrUnsafeName", name, err)
		}
	}
	for _, name := range []string{"s1_p2_camera", "S-1.p_2", "x"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
	bad := []Config{
		{Dir: filepath.Join(dir, "missing"), Name: "x"},
		{Dir: dir, Name: "x", MaxSegment: 500 * time.Millisecond},
		{Dir: dir, Name: "x", FlushInterval: 2 * time.Second},
		{Dir: dir, Name: "x", JitterHold: 3 * time.Second},
	}
	for _, c := range bad {
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", c, err)
		}
	}
	r, err := New(Config{Dir: dir, Name: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddTrack("video/AV1"); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("AV1: %v, want ErrUnsupportedCodec", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNeverOverwrites: a file of the same name already in the spool (a
// recording restarted under the same name) is skipped, not replaced.
func TestNeverOverwrites(t *testing.T) {
	h := newHarness(t, Config{})
	existing := filepath.Join(h.dir, "sess1_p1_camera-000001.webm")
	if err := os.WriteFile(existing, []byte("earlier evidence"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := h.track(t, "audio/opus")
	aa, _ := network{delay: 10 * time.Millisecond}.deliver(packetize(clip(t, CodecOpus, 2, 0), 1, 0), at)
	feed(t, h.rec, h.clk, testT0, aa, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(existing)
	if err != nil || string(b) != "earlier evidence" {
		t.Fatalf("existing file changed: %q %v", b, err)
	}
	segs := h.sink.all()
	if len(segs) != 1 || segs[0].Index != 2 {
		t.Fatalf("segments %+v, want one with index 2", segs)
	}
	checkSegment(t, segs[0], "", "opus", 2*time.Second, -1)
}

// TestResyncAfterUpstreamDrop: the SFU's queue for the recorder overflowed,
// dropped frames 10-19 and called Resync before the keyframe at frame 20.
// The skipped packets are counted lost at once and recording resumes on the
// keyframe without a broken frame.
func TestResyncAfterUpstreamDrop(t *testing.T) {
	v := clip(t, CodecVP8, 4, 20)
	h := newHarness(t, Config{Name: "s_p_screen"})
	vt := h.track(t, "video/VP8")
	var kept []sent
	dropped := 0
	for _, p := range packetize(v, 1, 0) {
		if p.frame >= 10 && p.frame < 20 {
			dropped++
			continue
		}
		kept = append(kept, p)
	}
	arr, _ := network{delay: 10 * time.Millisecond}.deliver(kept, vt)
	for i := range arr {
		if arr[i].pkt.Timestamp == 20*v.ticks {
			arr[i].resync = true
			break
		}
	}
	feed(t, h.rec, h.clk, testT0, arr, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs := h.sink.all()
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	s := segs[0]
	checkSegment(t, s, "vp8", "", 4*time.Second, len(v.frames)-10)
	if s.PacketsLost != dropped || s.FramesDropped != 0 {
		t.Errorf("lost %d dropped frames %d, want %d lost and no broken frame", s.PacketsLost, s.FramesDropped, dropped)
	}
}

// TestDurationIgnoresLossGaps: frames lost until a keyframe leave holes;
// the segment must still end one frame after its last frame, not one hole
// after it. With keyframes 0 and 80 broken and losses in frames 41 and 121,
// only the keyframes at 2 s and 6 s can be decoded.
func TestDurationIgnoresLossGaps(t *testing.T) {
	v := clip(t, CodecVP8, 8, 40)
	h := newHarness(t, Config{Name: "s_p_screen"})
	vt := h.track(t, "video/VP8")
	var kept []sent
	for _, p := range packetize(v, 1, 0) {
		if p.pkt.Marker && (p.frame == 0 || p.frame == 41 || p.frame == 80 || p.frame == 121) {
			continue
		}
		kept = append(kept, p)
	}
	arr, _ := network{delay: 10 * time.Millisecond}.deliver(kept, vt)
	feed(t, h.rec, h.clk, testT0, arr, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatal(err)
	}
	segs := h.sink.all()
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	s := segs[0]
	if s.Duration != 4050*time.Millisecond || s.VideoFrames != 2 {
		t.Errorf("duration %v with %d frames, want 4.05s with 2", s.Duration, s.VideoFrames)
	}
	checkSegment(t, s, "vp8", "", 4050*time.Millisecond, 2)
}
