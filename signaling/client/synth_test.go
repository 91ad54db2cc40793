package client

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// capture keeps copies of the packets a Synth writes; onPacket, if set,
// runs on the Synth's goroutine after each one.
type capture struct {
	pkts     []rtp.Packet
	onPacket func(n int)
}

func (c *capture) WriteRTP(p *rtp.Packet) error {
	cp := *p
	cp.Payload = append([]byte(nil), p.Payload...)
	c.pkts = append(c.pkts, cp)
	if c.onPacket != nil {
		c.onPacket(len(c.pkts))
	}
	return nil
}

// runTicks drives s for n ticks without sleeping and returns what it sent.
func runTicks(t *testing.T, s *Synth, n int) []rtp.Packet {
	t.Helper()
	return runCapture(t, s, n, &capture{})
}

func runCapture(t *testing.T, s *Synth, n int, c *capture) []rtp.Packet {
	t.Helper()
	runWriter(t, s, n, c)
	return c.pkts
}

// depacketize joins VP8 RTP payloads into frames (one-byte descriptors, as
// Synth writes them) and checks the framing on the way.
func depacketize(t *testing.T, pkts []rtp.Packet) [][]byte {
	t.Helper()
	var frames [][]byte
	var cur []byte
	for i, p := range pkts {
		start := p.Payload[0]&0x10 != 0
		if start != (cur == nil) {
			t.Fatalf("packet %d: start bit %v but frame in progress %v", i, start, cur != nil)
		}
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		cur = append(cur, p.Payload[1:]...)
		if p.Marker {
			frames = append(frames, cur)
			cur = nil
		}
	}
	return frames
}

func writeIVF(t *testing.T, path string, w, h int, frames [][]byte) {
	t.Helper()
	var b bytes.Buffer
	hdr := make([]byte, 32)
	copy(hdr, "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], "VP80")
	binary.LittleEndian.PutUint16(hdr[12:], uint16(w))
	binary.LittleEndian.PutUint16(hdr[14:], uint16(h))
	binary.LittleEndian.PutUint32(hdr[16:], 30)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], uint32(len(frames)))
	b.Write(hdr)
	for i, f := range frames {
		fh := make([]byte, 12)
		binary.LittleEndian.PutUint32(fh, uint32(len(f)))
		binary.LittleEndian.PutUint64(fh[4:], uint64(i))
		b.Write(fh)
		b.Write(f)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (install ffmpeg; `make test` does it through scripts/test-deps.sh)", name)
		}
		t.Skipf("%s not installed; `make test` installs it", name)
	}
	return p
}

// What Synth sends is VP8 that ffmpeg decodes without an error, at the
// chosen size, frame for frame, with keyframes where asked for.
func TestSynthVideoDecodes(t *testing.T) {
	ffmpeg := needTool(t, "ffmpeg")
	ffprobe := needTool(t, "ffprobe")
	for _, size := range []struct{ w, h, wantW, wantH int }{
		{320, 180, 320, 180}, {0, 0, 640, 360}, {1920, 1080, 1280, 720}, {100, 100, 320, 180},
	} {
		s := &Synth{Video: true, Width: size.w, Height: size.h, KeyEvery: 20, FrameBytes: 1500}
		pkts := runTicks(t, s, 45)
		frames := depacketize(t, pkts)
		if len(frames) != 45 {
			t.Fatalf("%dx%d: %d frames, want 45", size.w, size.h, len(frames))
		}
		if got := s.Keyframes.Load(); got != 3 {
			t.Errorf("%dx%d: %d keyframes, want 3 (frames 0, 20, 40)", size.w, size.h, got)
		}
		for i, f := range frames {
			key := f[0]&1 == 0
			if key != (i%20 == 0) {
				t.Errorf("frame %d: keyframe %v", i, key)
			}
			if want := 1500; !key && len(f) != want {
				t.Errorf("frame %d: %d bytes, want %d", i, len(f), want)
			}
		}
		path := filepath.Join(t.TempDir(), "synth.ivf")
		writeIVF(t, path, size.wantW, size.wantH, frames)
		if out, err := exec.Command(ffmpeg, "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Fatalf("%dx%d: ffmpeg decode: %v\n%s", size.w, size.h, err, out)
		}
		// The picture never changes: every decoded frame must be the same
		// grey image, which corrupt VP8 data would not give.
		out, err := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "framemd5", "-").CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg framemd5: %v\n%s", err, out)
		}
		hashes := map[string]int{}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Split(line, ","); len(f) == 6 && !strings.HasPrefix(line, "#") {
				hashes[strings.TrimSpace(f[5])]++
			}
		}
		if len(hashes) != 1 {
			t.Errorf("%dx%d: decoded frames differ (%d distinct pictures): %v", size.w, size.h, len(hashes), hashes)
		}
		out, err = exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries",
			"stream=nb_read_frames,width,height", "-of", "csv=p=0", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe: %v\n%s", err, out)
		}
		want := strings.Join([]string{strconv.Itoa(size.wantW), strconv.Itoa(size.wantH), "45"}, ",")
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%dx%d: ffprobe says %q, want %q", size.w, size.h, got, want)
		}
	}
}

// Trailers carry the injected send time and a counter of every packet;
// only packets over VP8 data go without, and a PLI makes the next frame a
// keyframe.
func TestSynthTrailers(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	s := &Synth{Video: true, Width: 1280, Height: 720, FrameBytes: 3000, KeyEvery: 1000,
		Now: func() time.Time { return at }}
	pkts := runTicks(t, s, 3)
	var missing int
	for i, p := range pkts {
		ns, counter, ok := ReadTrailer(p.Payload)
		if !ok {
			missing++
			continue
		}
		if ns != at.UnixNano() || counter != uint32(i+1) {
			t.Errorf("packet %d: trailer (%d, %d), want (%d, %d)", i, ns, counter, at.UnixNano(), i+1)
		}
		if !SendTime(p.Payload, true).Equal(at) {
			t.Errorf("packet %d: SendTime %v", i, SendTime(p.Payload, true))
		}
	}
	// The 1280x720 keyframe is ~1.6 kB: its first two packets carry VP8
	// data to their end; every other packet has a trailer.
	if missing == 0 || missing > 2 {
		t.Errorf("%d packets without a trailer, want 1 or 2", missing)
	}
	// A PLI arriving while frame 1 is sent makes frame 2 a keyframe.
	s = &Synth{Video: true, FrameBytes: 2000, KeyEvery: 1000}
	frameNo := 0
	c := &capture{}
	c.onPacket = func(int) {
		if c.pkts[len(c.pkts)-1].Marker {
			if frameNo++; frameNo == 2 {
				s.keyframeWanted.Store(true)
			}
		}
	}
	frames := depacketize(t, runCapture(t, s, 4, c))
	for i, f := range frames {
		if key := f[0]&1 == 0; key != (i == 0 || i == 2) {
			t.Errorf("frame %d: keyframe %v; want keyframes at 0 and 2 (after the PLI)", i, key)
		}
	}

	audio := &Synth{Now: func() time.Time { return at }}
	pkts = runTicks(t, audio, 5)
	for i, p := range pkts {
		if len(p.Payload) != 80 || p.Payload[0] != 0xf8 || !p.Marker {
			t.Errorf("audio packet %d: %d bytes, TOC %#x, marker %v", i, len(p.Payload), p.Payload[0], p.Marker)
		}
		if _, c, ok := ReadTrailer(p.Payload); !ok || c != uint32(i+1) {
			t.Errorf("audio packet %d: trailer %v counter %d", i, ok, c)
		}
	}
}

func TestReadTrailerRejects(t *testing.T) {
	for _, p := range [][]byte{nil, make([]byte, TrailerLen-1), make([]byte, 100), bytes.Repeat([]byte{0x44}, 40)} {
		if _, _, ok := ReadTrailer(p); ok {
			t.Errorf("trailer found in %d bytes of %#x", len(p), p)
		}
	}
}
