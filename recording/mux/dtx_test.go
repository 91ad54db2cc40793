package mux

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// opusSent is how each 20 ms frame of an audio clip is sent.
type opusSent uint8

const (
	opusSend opusSent = iota
	opusDTX           // not sent, no sequence number used (DTX)
	opusLost          // sent, never arrives: its sequence number is missing
)

// opusPackets sends an Opus clip as a browser does, one frame per packet,
// with what plan says about frame i; the RTP timestamp advances 960 per
// frame whether it is sent or not.
func opusPackets(m *encodedMedia, ssrc, ts0 uint32, plan func(i int) opusSent) []sent {
	var out []sent
	seq := uint16(4000)
	for i, fr := range m.frames {
		how := plan(i)
		if how == opusDTX {
			continue
		}
		seq++
		if how == opusLost {
			continue
		}
		out = append(out, sent{kind: KindAudio, frame: i, sendT: time.Duration(i) * 20 * time.Millisecond,
			pkt: &rtp.Packet{
				Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
					Timestamp: ts0 + uint32(i)*960, SSRC: ssrc, Marker: i == 0},
				Payload: fr,
			}})
	}
	return out
}

// audioPacket is one packet of a file's audio stream as ffprobe lists it.
type audioPacket struct {
	pts  time.Duration
	size int
	toc  byte
}

// ffprobeAudioPackets lists the audio packets of path in pts order, with
// the first byte of each.
func ffprobeAudioPackets(t *testing.T, path string) []audioPacket {
	t.Helper()
	bin := requireTool(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-select_streams", "a:0", "-show_data",
		"-show_entries", "packet=pts_time,size,data", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe audio packets %s: %v", path, err)
	}
	var res struct {
		Packets []struct {
			PTS  string `json:"pts_time"`
			Size string `json:"size"`
			Data string `json:"data"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe json: %v", err)
	}
	var ps []audioPacket
	for _, p := range res.Packets {
		sec, err1 := strconv.ParseFloat(p.PTS, 64)
		size, err2 := strconv.Atoi(p.Size)
		// The data is a hex dump: "\n00000000: 4b41 ...".
		_, dump, _ := strings.Cut(p.Data, ": ")
		b, err3 := strconv.ParseUint(dump[:min(2, len(dump))], 16, 8)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("ffprobe packet %+v: %v %v %v", p, err1, err2, err3)
		}
		ps = append(ps, audioPacket{pts: time.Duration(sec * float64(time.Second)), size: size, toc: byte(b)})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].pts < ps[j].pts })
	return ps
}

// TestAudioHolesAreFilled: a browser with DTX sends a packet every 400 ms
// in silence, and lost packets leave holes too. The file's audio must run
// on without a hole at 20 ms steps: each missing frame becomes a one-byte
// filler (the previous packet's mode, 20 ms, no data), counted apart from
// the frames received, in time order with the video, and the file must
// decode without error.
func TestAudioHolesAreFilled(t *testing.T) {
	const seconds = 6
	for _, tc := range []struct {
		name      string
		video     bool
		plan      func(i int) opusSent
		wantOrder bool // blocks in time order (checkSegment's check)
	}{
		{
			// 2 s of speech, 2 s of DTX (frames 100, 120, ... 180 sent),
			// speech again with 5 packets lost at 4.6 s.
			name: "dtx and loss, audio only",
			plan: dtxPlan, wantOrder: true,
		},
		{
			name: "dtx and loss, with video", video: true,
			plan: dtxPlan, wantOrder: true,
		},
		{
			// 1.5 s of audio lost while video goes on: the video is written
			// before the audio after the hole arrives, and the fillers follow
			// it; they must still be timed right.
			name: "long loss, with video", video: true,
			plan: func(i int) opusSent {
				if i >= 100 && i < 175 {
					return opusLost
				}
				return opusSend
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg, a, v, h := recordHoles(t, seconds, tc.video, tc.plan)

			missing := map[int]bool{}
			for i := range a.frames {
				if tc.plan(i) != opusSend {
					missing[i] = true
				}
			}
			if len(missing) == 0 || missing[0] || missing[len(a.frames)-1] {
				t.Fatalf("bad plan: it must leave holes between sent frames")
			}
			real := len(a.frames) - len(missing)
			if seg.AudioFrames != real || seg.AudioFramesFilled != len(missing) {
				t.Errorf("segment reports %d audio frames and %d filled, want %d and %d",
					seg.AudioFrames, seg.AudioFramesFilled, real, len(missing))
			}
			if st := h.rec.Stats(); st.AudioFramesFilled != uint64(len(missing)) {
				t.Errorf("stats: %d audio frames filled, want %d", st.AudioFramesFilled, len(missing))
			}

			pk := ffprobeAudioPackets(t, seg.Path)
			if len(pk) != len(a.frames) {
				t.Fatalf("%d audio packets in the file, want %d (received and filled)", len(pk), len(a.frames))
			}
			var prevTOC byte
			for i, p := range pk {
				if d := p.pts - pk[0].pts - time.Duration(i)*20*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
					t.Fatalf("audio packet %d at %v, want %v: not contiguous at 20 ms steps", i, p.pts-pk[0].pts, time.Duration(i)*20*time.Millisecond)
				}
				if !missing[i] {
					if p.size != len(a.frames[i]) {
						t.Fatalf("audio packet %d: %d bytes, want frame %d as sent (%d bytes)", i, p.size, i, len(a.frames[i]))
					}
					prevTOC = a.frames[i][0]
					continue
				}
				if p.size != 1 {
					t.Fatalf("audio packet %d fills a hole: %d bytes, want 1", i, p.size)
				}
				// The previous packet's config moved to 20 ms, stereo bit
				// kept, code 0: checked against the RFC table in
				// TestOpusFillerTOC; here, that the file carries it.
				if want := opusFillerTOC(prevTOC); p.toc != want {
					t.Fatalf("audio packet %d: filler TOC %#02x, want %#02x (after TOC %#02x)", i, p.toc, want, prevTOC)
				}
			}

			wantVideo, frames := "", -1
			if tc.video {
				wantVideo, frames = "vp8", len(v.frames)
			}
			if tc.wantOrder {
				checkSegment(t, seg, wantVideo, "opus", seconds*time.Second, frames)
			} else if e := decodeErrors(t, seg.Path); e != "" {
				t.Errorf("decoding reported errors:\n%s", e)
			}
		})
	}
}

// recordHoles records seconds of an Opus clip sent by plan, with a VP8
// clip if video, through a network with a little jitter, and returns the
// one segment.
func recordHoles(t *testing.T, seconds int, video bool, plan func(i int) opusSent) (seg Segment, a, v *encodedMedia, h *harness) {
	t.Helper()
	a = clip(t, CodecOpus, seconds, 0)
	h = newHarness(t, Config{})
	net := network{delay: 20 * time.Millisecond, jitter: 5 * time.Millisecond, seed: 5}
	var arr []arrival
	if video {
		v = clip(t, CodecVP8, seconds, 40)
		vt := h.track(t, "video/VP8")
		arr, _ = net.deliver(packetize(v, 1, 0), vt)
	}
	at := h.track(t, "audio/opus")
	aa, _ := net.deliver(opusPackets(a, 2, 1000, plan), at)
	arr = append(arr, aa...)
	sortArrivals(arr)
	feed(t, h.rec, h.clk, testT0, arr, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	segs := h.sink.all()
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1: %+v", len(segs), segs)
	}
	return segs[0], a, v, h
}

// dtxPlan: speech for 2 s, DTX for 2 s (a packet every 400 ms), speech,
// and 5 packets lost at 4.6 s.
func dtxPlan(i int) opusSent {
	switch {
	case i >= 100 && i < 200 && (i-100)%20 != 0:
		return opusDTX
	case i >= 230 && i < 235:
		return opusLost
	}
	return opusSend
}

// TestFillerCapAndReach drives a segment directly. A hole longer than the
// cap is left open; fillers that would fall more than 32 s behind the open
// cluster (video went on alone that far) cannot be timed there, so only
// the part of the hole they can reach is filled, each at its exact time.
func TestFillerCapAndReach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reach.webm")
	tracks := []webmTrack{
		{number: 1, codec: CodecVP8, width: 640, height: 480},
		{number: 2, codec: CodecOpus, private: opusHead()},
	}
	w, err := createWebM(path, testT0, tracks, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(ms int) time.Time { return testT0.Add(time.Duration(ms) * time.Millisecond) }
	s := &segment{w: w, lastTS: [2]int64{-1, -1}, audioNum: 2, videoNum: 1}
	s.info.Start = testT0
	opus := []byte{toc(15, 0, 0), 1, 2, 3} // hybrid FB 20 ms
	s.writeFrame(KindAudio, 2, &queuedFrame{t: testT0, key: true, buf: &buffer{b: opus}}, opusDuration(opus))

	if n, tooLong := s.fillAudio(at(1000), at(1000), 48); n != 0 || !tooLong {
		t.Errorf("hole of 49 fillers with a cap of 48: %d written (too long: %v), want none", n, tooLong)
	}
	if n, _ := s.fillAudio(at(40), at(20), 48); n != 1 {
		t.Errorf("hole of 1 filler: %d written, want 1", n)
	}
	// Video alone up to 40 s (a VP8 keyframe's first bytes are enough for
	// the writer), then the audio frame ending the hole arrives.
	vp8 := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}
	s.w.writeBlock(1, 40000, true, vp8)
	n, tooLong := s.fillAudio(at(40020), at(40020), 10000)
	// From 40 ms on, the first filler at or after 40000-32768 ms is 7240.
	if want := (40020 - 7240) / 20; n != want || tooLong {
		t.Errorf("hole behind the video: %d fillers written (too long: %v), want %d", n, tooLong, want)
	}
	s.writeFrame(KindAudio, 2, &queuedFrame{t: at(40020), key: true, buf: &buffer{b: opus}}, opusDuration(opus))
	if err := s.w.close(float64(s.durationMs())); err != nil {
		t.Fatal(err)
	}
	pk := ffprobeAudioPackets(t, path)
	want := []time.Duration{0, 20 * time.Millisecond}
	for ms := 7240; ms <= 40020; ms += 20 {
		want = append(want, time.Duration(ms)*time.Millisecond)
	}
	if len(pk) != len(want) {
		t.Fatalf("%d audio packets, want %d", len(pk), len(want))
	}
	for i, p := range pk {
		if d := p.pts - want[i]; d < -time.Millisecond || d > time.Millisecond {
			t.Fatalf("audio packet %d at %v, want %v", i, p.pts, want[i])
		}
		if filler := i != 0 && i != len(pk)-1; filler != (p.size == 1) || filler && p.toc != toc(15, 0, 0) {
			t.Fatalf("audio packet %d: %d bytes, TOC %#02x", i, p.size, p.toc)
		}
	}
}
