package mux

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// TestSPSDimensions reads the size from SPSs that x264 wrote, with and
// without cropping, in baseline and high profile.
func TestSPSDimensions(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	for _, tc := range []struct {
		size, profile string
		w, h          int
	}{
		{"640x480", "baseline", 640, 480},
		{"640x360", "baseline", 640, 360}, // 368 coded, cropped
		{"1280x720", "high", 1280, 720},
		{"320x180", "high", 320, 180},
	} {
		t.Run(tc.size+"_"+tc.profile, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.h264")
			out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
				"-i", "testsrc=size="+tc.size+":rate=20", "-frames:v", "1", "-pix_fmt", "yuv420p",
				"-c:v", "libx264", "-profile:v", tc.profile, "-f", "h264", path).CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg: %v %s", err, out)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := h264reader.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			for {
				nal, err := r.NextNAL()
				if errors.Is(err, io.EOF) {
					t.Fatal("no SPS")
				}
				if err != nil {
					t.Fatal(err)
				}
				if nal.UnitType != h264reader.NalUnitTypeSPS {
					continue
				}
				w, h, err := spsDimensions(nal.Data)
				if err != nil || w != tc.w || h != tc.h {
					t.Fatalf("spsDimensions = %dx%d %v, want %dx%d", w, h, err, tc.w, tc.h)
				}
				return
			}
		})
	}
	if _, _, err := spsDimensions([]byte{0x67, 0x42}); err == nil {
		t.Error("truncated SPS accepted")
	}
}

// TestH264Depacketize checks the RTP forms WebRTC uses against the
// length-prefixed output by hand.
func TestH264Depacketize(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xaa}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := append([]byte{0x65}, bytes.Repeat([]byte{0x11, 0x22, 0x33}, 10)...)
	stap := []byte{0x78, 0, byte(len(sps))}
	stap = append(stap, sps...)
	stap = append(stap, 0, byte(len(pps)))
	stap = append(stap, pps...)
	// FU-A: indicator keeps F/NRI with type 28, header has S/E and type 5.
	fu1 := append([]byte{0x7c, 0x85}, idr[1:11]...)
	fu2 := append([]byte{0x7c, 0x05}, idr[11:21]...)
	fu3 := append([]byte{0x7c, 0x45}, idr[21:]...)

	var h h264State
	h.beginFrame()
	var frame []byte
	var ok bool
	for i, p := range [][]byte{stap, fu1, fu2, fu3} {
		if frame, ok = h.depacketize(frame, p); !ok {
			t.Fatalf("packet %d rejected", i)
		}
	}
	var want []byte
	for _, n := range [][]byte{sps, pps, idr} {
		want = append(want, 0, 0, 0, byte(len(n)))
		want = append(want, n...)
	}
	if !bytes.Equal(frame, want) {
		t.Fatalf("frame\n%x\nwant\n%x", frame, want)
	}
	if !h.idr || !bytes.Equal(h.sps, sps) || !bytes.Equal(h.pps, pps) {
		t.Fatalf("state idr=%v sps=%x pps=%x", h.idr, h.sps, h.pps)
	}
	cfg := avcConfig(h.sps, h.pps)
	wantCfg := append([]byte{1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, byte(len(sps))}, sps...)
	wantCfg = append(append(wantCfg, 1, 0, byte(len(pps))), pps...)
	if !bytes.Equal(cfg, wantCfg) {
		t.Fatalf("avcC %x, want %x", cfg, wantCfg)
	}

	// A continuation without its start, a truncated STAP-A and interleaved
	// mode packets are refused.
	for name, p := range map[string][]byte{
		"fu without start": fu2,
		"short stap-a":     {0x78, 0, 9, 0x67},
		"stap-b":           {0x79, 0, 0},
		"fu-b":             {0x7d, 0x85, 0},
	} {
		h.beginFrame()
		if _, ok := h.depacketize(nil, p); ok {
			t.Errorf("%s accepted", name)
		}
	}
}
