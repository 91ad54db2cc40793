package mux

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// requireTool returns the path of an outside program the test needs. With
// CI=true a missing tool fails the test; locally it skips, naming make test.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true): install it (see /work/shared/RECIPES.md) and run `make test`", name)
	}
	t.Skipf("%s not found: install it and run `make test` to run this test", name)
	return ""
}

// encodedMedia is real encoded media: frames in decode order, fixed rate.
type encodedMedia struct {
	codec    Codec
	frames   [][]byte
	keyframe []bool
	ticks    uint32 // RTP ticks per frame
}

// mediaCache keeps encoded clips for the whole test binary: encoding is the
// slow part and clips are read-only once made.
type mediaCache struct {
	mu    sync.Mutex
	dir   string
	clips map[string]*encodedMedia
}

var testMedia = &mediaCache{clips: map[string]*encodedMedia{}}

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		os.Exit(crashHelper())
	}
	dir, err := os.MkdirTemp("", "mux-media-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testMedia.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// clip encodes (once) seconds of 640x480 test pattern at 20 fps with a
// keyframe every gop frames, or of a sine tone for Opus.
func clip(t testing.TB, c Codec, seconds, gop int) *encodedMedia {
	t.Helper()
	ffmpeg := requireTool(t, "ffmpeg")
	key := fmt.Sprintf("%s-%d-%d", c, seconds, gop)
	testMedia.mu.Lock()
	defer testMedia.mu.Unlock()
	if m := testMedia.clips[key]; m != nil {
		return m
	}
	dur := strconv.Itoa(seconds)
	g := strconv.Itoa(gop)
	src := []string{"-f", "lavfi", "-i", "testsrc=size=640x480:rate=20", "-t", dur, "-pix_fmt", "yuv420p"}
	var args []string
	var out string
	switch c {
	case CodecVP8:
		out = key + ".ivf"
		args = append(src, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k",
			"-g", g, "-keyint_min", g, "-auto-alt-ref", "0", "-lag-in-frames", "0")
	case CodecVP9:
		out = key + ".ivf"
		args = append(src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k",
			"-g", g, "-keyint_min", g, "-auto-alt-ref", "0", "-lag-in-frames", "0", "-row-mt", "1")
	case CodecH264:
		out = key + ".h264"
		args = append(src, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
			"-profile:v", "baseline", "-bf", "0",
			"-x264-params", "aud=1:keyint="+g+":min-keyint="+g+":scenecut=0", "-f", "h264")
	case CodecOpus:
		out = key + ".ogg"
		args = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", dur,
			"-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-application", "voip",
			"-page_duration", "20000"}
	}
	path := filepath.Join(testMedia.dir, out)
	cmd := exec.Command(ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), path)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", key, err, b)
	}
	m, err := readClip(c, path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	testMedia.clips[key] = m
	return m
}

func readClip(c Codec, path string) (*encodedMedia, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := &encodedMedia{codec: c, ticks: 90000 / 20}
	switch c {
	case CodecVP8, CodecVP9:
		r, _, err := ivfreader.NewWith(f)
		if err != nil {
			return nil, err
		}
		for {
			fr, _, err := r.ParseNextFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			key := fr[0]&1 == 0
			if c == CodecVP9 {
				key = fr[0]&0x04 == 0 // profile 0: show_existing_frame=0, frame_type bit
			}
			m.frames = append(m.frames, fr)
			m.keyframe = append(m.keyframe, key)
		}
	case CodecH264:
		r, err := h264reader.NewReader(f)
		if err != nil {
			return nil, err
		}
		var au []byte
		key := false
		flush := func() {
			if len(au) > 0 {
				m.frames = append(m.frames, au)
				m.keyframe = append(m.keyframe, key)
			}
			au, key = nil, false
		}
		for {
			nal, err := r.NextNAL()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if nal.UnitType == h264reader.NalUnitTypeAUD {
				flush()
				continue
			}
			if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
				key = true
			}
			au = append(au, 0, 0, 0, 1)
			au = append(au, nal.Data...)
		}
		flush()
	case CodecOpus:
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			return nil, err
		}
		m.ticks = 960
		for {
			page, _, err := r.ParseNextPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
				continue
			}
			m.frames = append(m.frames, page)
			m.keyframe = append(m.keyframe, true)
		}
	}
	return m, nil
}

// sent is one RTP packet with the time it leaves the sender (offset from
// the start of the clip).
type sent struct {
	kind  Kind
	pkt   *rtp.Packet
	sendT time.Duration
	frame int // index of the frame it belongs to
}

// packetize turns a clip into RTP packets with pion's payloaders, starting
// at RTP timestamp ts0.
func packetize(m *encodedMedia, ssrc uint32, ts0 uint32) []sent {
	var pay rtp.Payloader
	kind := KindVideo
	switch m.codec {
	case CodecVP8:
		pay = &codecs.VP8Payloader{EnablePictureID: true}
	case CodecVP9:
		pay = &codecs.VP9Payloader{}
	case CodecH264:
		pay = &codecs.H264Payloader{}
	case CodecOpus:
		pay = &codecs.OpusPayloader{}
		kind = KindAudio
	}
	clock := uint32(90000)
	if kind == KindAudio {
		clock = 48000
	}
	pk := rtp.NewPacketizerWithOptions(1200, pay, rtp.NewRandomSequencer(), clock,
		rtp.WithSSRC(ssrc), rtp.WithPayloadType(96), rtp.WithTimestamp(ts0))
	frameDur := time.Duration(m.ticks) * time.Second / time.Duration(clock)
	var out []sent
	for i, fr := range m.frames {
		for _, p := range pk.Packetize(fr, m.ticks) {
			out = append(out, sent{kind: kind, pkt: p, sendT: time.Duration(i) * frameDur, frame: i})
		}
	}
	return out
}

// withPadding inserts a padding-only packet (as bandwidth probing sends on
// the media SSRC) after every n-th packet and renumbers the sequence.
func withPadding(pkts []sent, n int) []sent {
	if len(pkts) == 0 {
		return pkts
	}
	out := make([]sent, 0, len(pkts)+len(pkts)/n)
	seq := pkts[0].pkt.SequenceNumber
	for i, s := range pkts {
		s.pkt.SequenceNumber = seq
		seq++
		out = append(out, s)
		if (i+1)%n == 0 {
			h := s.pkt.Header
			h.SequenceNumber, h.Marker, h.Padding = seq, false, true
			seq++
			out = append(out, sent{kind: s.kind, pkt: &rtp.Packet{Header: h, PaddingSize: 200}, sendT: s.sendT, frame: s.frame})
		}
	}
	return out
}

// arrival is a packet as the SFU hands it to the recorder.
type arrival struct {
	at     time.Duration
	pkt    *rtp.Packet
	trk    *Track
	resync bool // the SFU calls Resync before this packet
}

// network decides when (and whether) each packet arrives.
type network struct {
	delay     time.Duration // one-way base delay
	jitter    time.Duration // uniform extra delay 0..jitter
	retxRate  float64       // share of packets lost once and retransmitted
	retxDelay time.Duration // extra delay of a retransmission
	dupRate   float64       // share of packets that arrive twice
	lossRate  float64       // share of packets that never arrive
	seed      uint64
}

// deliver returns the arrivals of pkts through n, sorted by arrival time.
// lost reports which packets never arrive.
func (n network) deliver(pkts []sent, trk *Track) (arr []arrival, lost []sent) {
	rng := rand.New(rand.NewPCG(n.seed, 7))
	for _, s := range pkts {
		d := s.sendT + n.delay
		if n.jitter > 0 {
			d += time.Duration(rng.Int64N(int64(n.jitter)))
		}
		r := rng.Float64()
		switch {
		case r < n.lossRate:
			lost = append(lost, s)
			continue
		case r < n.lossRate+n.retxRate:
			d += n.retxDelay
		case r < n.lossRate+n.retxRate+n.dupRate:
			arr = append(arr, arrival{at: d + 15*time.Millisecond, pkt: clonePacket(s.pkt), trk: trk})
		}
		arr = append(arr, arrival{at: d, pkt: s.pkt, trk: trk})
	}
	sortArrivals(arr)
	return arr, lost
}

func sortArrivals(arr []arrival) {
	sort.SliceStable(arr, func(i, j int) bool { return arr[i].at < arr[j].at })
}

func clonePacket(p *rtp.Packet) *rtp.Packet {
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	return &c
}

// fakeClock is the injected server clock of a test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// feed plays arrivals into a hand-stepped recorder on the fake clock,
// stepping it every tickInterval of simulated time, then closes it.
func feed(t testing.TB, r *Recorder, clk *fakeClock, t0 time.Time, arr []arrival, after func(at time.Duration)) {
	t.Helper()
	next := time.Duration(0)
	for _, a := range arr {
		for next <= a.at {
			clk.set(t0.Add(next))
			r.step()
			next += tickInterval
		}
		clk.set(t0.Add(a.at))
		if a.resync {
			a.trk.Resync()
		}
		if err := a.trk.WriteRTP(a.pkt); err != nil {
			t.Fatalf("WriteRTP: %v", err)
		}
		if after != nil {
			after(a.at)
		}
	}
	// Let the hold time pass as a live recorder would before closing.
	end := next + time.Second
	for ; next <= end; next += tickInterval {
		clk.set(t0.Add(next))
		r.step()
	}
}

// probe is what ffprobe reports about a file.
type probe struct {
	Streams []struct {
		Index        int    `json:"index"`
		CodecName    string `json:"codec_name"`
		CodecType    string `json:"codec_type"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		NbReadFrames string `json:"nb_read_frames"`
		NbReadPacket string `json:"nb_read_packets"`
	} `json:"streams"`
	Format struct {
		Duration   string `json:"duration"`
		FormatName string `json:"format_name"`
	} `json:"format"`
}

func (p probe) duration() time.Duration {
	f, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return time.Duration(f * float64(time.Second))
}

func (p probe) stream(typ string) (codec string, w, h, frames int, ok bool) {
	for _, s := range p.Streams {
		if s.CodecType == typ {
			n, _ := strconv.Atoi(s.NbReadFrames)
			if n == 0 {
				n, _ = strconv.Atoi(s.NbReadPacket)
			}
			return s.CodecName, s.Width, s.Height, n, true
		}
	}
	return "", 0, 0, 0, false
}

// ffprobe counts frames by decoding every packet of path.
func ffprobe(t testing.TB, path string) probe {
	t.Helper()
	bin := requireTool(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-count_frames", "-count_packets",
		"-show_entries", "format=duration,format_name:stream=index,codec_name,codec_type,width,height,nb_read_frames,nb_read_packets",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe json: %v\n%s", err, out)
	}
	return p
}

// decodeErrors decodes the whole file with ffmpeg and returns what it
// complained about: a re-mux that broke a frame shows up here.
func decodeErrors(t testing.TB, path string) string {
	t.Helper()
	bin := requireTool(t, "ffmpeg")
	out, err := exec.Command(bin, "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ffmpeg failed: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// packetInfo is one packet as ffprobe lists it.
type packetInfo struct {
	stream int
	pts    time.Duration
	key    bool
}

func ffprobePackets(t testing.TB, path string) []packetInfo {
	t.Helper()
	bin := requireTool(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-show_entries", "packet=stream_index,pts_time,flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v", path, err)
	}
	var ps []packetInfo
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		idx, _ := strconv.Atoi(f[0])
		sec, _ := strconv.ParseFloat(f[1], 64)
		ps = append(ps, packetInfo{stream: idx, pts: time.Duration(sec * float64(time.Second)), key: strings.HasPrefix(f[2], "K")})
	}
	return ps
}
