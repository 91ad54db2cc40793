package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
	"github.com/ducha-dev/ducha/signaling/client/cliptest"
)

func requireTool(t *testing.T, name string) string { return cliptest.RequireTool(t, name) }

func encodeClip(t *testing.T, seconds int) (ivf, ogg string) { return cliptest.Encode(t, seconds) }

func publishClip(t *testing.T, c *client.Client, ivf, ogg string) <-chan struct{} {
	return cliptest.Publish(t, c, ivf, ogg, nil)
}

type probeResult struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

func ffprobeFile(t *testing.T, path string) probeResult {
	t.Helper()
	out, err := exec.Command(requireTool(t, "ffprobe"), "-v", "error", "-show_entries",
		"format=duration:stream=codec_name,width,height", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probeResult
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// readManifest fetches and decodes a session's manifest.json: the audio
// counts live only there (the verify report only sums them).
// archivedFile copies an archived object (a segment) to a file of the
// test's, for ffprobe.
func archivedFile(t *testing.T, src evidence.Source, key, version string) string {
	t.Helper()
	rc, _, err := src.Get(context.Background(), key, version)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	defer rc.Close()
	tmp := filepath.Join(t.TempDir(), "seg.webm")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return tmp
}

func readManifest(t *testing.T, src evidence.Source, recID string) evidence.Manifest {
	t.Helper()
	key, err := archive.ManifestKey(recID)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := src.Get(context.Background(), key, "")
	if err != nil {
		t.Fatalf("manifest of %s: %v", recID, err)
	}
	defer rc.Close()
	var m evidence.Manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		t.Fatalf("manifest of %s: %v", recID, err)
	}
	return m
}

// checkCounted checks a segment the recorder finished itself: both audio
// counts present (FORMAT.md: both or neither), frames received when the
// file has an audio track, 0 and 0 when it has none.
func checkCounted(t *testing.T, e evidence.SegmentEntry) {
	t.Helper()
	if e.AudioFrames == nil || e.AudioFramesFilled == nil {
		t.Errorf("segment %d (%s/%s seq %d, codecs %v): audio counts %s, want both known",
			e.Index, e.Participant, e.Source, e.Seq, e.Codecs, countsString(e))
		return
	}
	if slices.Contains(e.Codecs, "opus") {
		if *e.AudioFrames <= 0 || *e.AudioFramesFilled < 0 {
			t.Errorf("segment %d (seq %d): audio counts %s, want frames > 0 and filled >= 0 in a segment with audio",
				e.Index, e.Seq, countsString(e))
		}
	} else if *e.AudioFrames != 0 || *e.AudioFramesFilled != 0 {
		t.Errorf("segment %d (seq %d, codecs %v): audio counts %s, want 0 and 0 without audio",
			e.Index, e.Seq, e.Codecs, countsString(e))
	}
}

// waitSignedManifest waits until the data directory's archive holds a
// signed manifest (the session ended and was sealed) and returns the
// archive and the recording id.
func waitSignedManifest(t *testing.T, s *testServer) (*archive.Dir, string) {
	t.Helper()
	arch, err := archive.NewDir(archive.DefaultDirRoot(s.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	return arch, waitSealed(t, arch, 60*time.Second, "the manifest in the archive")
}

// waitSealed waits until arch holds a signed manifest and returns its
// recording id.
func waitSealed(t *testing.T, arch archive.Archive, timeout time.Duration, what string) string {
	t.Helper()
	var recID string
	waitFor(t, timeout, what, func() bool {
		objs, err := arch.List(context.Background(), "sessions/")
		if err != nil {
			return false
		}
		for _, o := range objs {
			if strings.HasSuffix(o.Key, "/manifest.sig") {
				recID = strings.Split(o.Key, "/")[1]
				return true
			}
		}
		return false
	})
	return recID
}

// verifyIntact checks a sealed recording as an auditor would, with the
// node key from dataDir, and fails the test unless it is intact.
func verifyIntact(t *testing.T, dataDir string, src evidence.Source, recID, when string) evidence.Report {
	t.Helper()
	key, err := evidence.LoadOrCreateNodeKey(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	rep := evidence.Verify(context.Background(), src, recID, key.Public().(ed25519.PublicKey))
	if rep.Result != evidence.Intact {
		t.Fatalf("verify %s: %+v", when, rep)
	}
	return rep
}

func countsString(e evidence.SegmentEntry) string {
	f := func(p *int) string {
		if p == nil {
			return "unknown"
		}
		return strconv.Itoa(*p)
	}
	return f(e.AudioFrames) + "/" + f(e.AudioFramesFilled)
}

// A two-party call in the embedded default is recorded: playable segments
// plus a signed manifest land in the data directory's archive, `ducha
// verify` passes, and fails naming the segment once one is altered.
func TestRecordedCallVerifies(t *testing.T) {
	ivf, ogg := encodeClip(t, 6)
	s := startServerWith(t, nil, func(c *config) { c.Segment = 2 * time.Second })
	pub, _ := s.dial(t, "rec-room", "sup1", sfu.RoleSupervisor)
	sub, _ := s.dial(t, "rec-room", "county-1", sfu.RoleCounty)
	clipDone := publishClip(t, pub, ivf, ogg)
	select {
	case <-clipDone:
	case <-time.After(60 * time.Second):
		t.Fatal("clip did not finish")
	}
	time.Sleep(time.Second) // the jitter buffer's hold, then the last packets
	sub.Close()
	pub.Close()

	arch, recID := waitSignedManifest(t, s)
	ctx := context.Background()
	if !strings.HasPrefix(recID, "rec-room-") {
		t.Fatalf("recording id %q", recID)
	}
	rep := verifyIntact(t, s.dataDir, arch, recID, "the recording")
	if rep.Segments < 2 {
		t.Fatalf("segments = %d, want the 6 s clip cut into several", rep.Segments)
	}

	// Every segment plays in ffprobe with the right codecs; together they
	// last as long as the clip.
	objs, _ := arch.List(ctx, "sessions/"+recID+"/segments/")
	var total float64
	for _, o := range objs {
		p := ffprobeFile(t, archivedFile(t, arch, o.Key, ""))
		codecs := map[string]bool{}
		for _, st := range p.Streams {
			codecs[st.CodecName] = true
			if st.CodecName == "vp8" && (st.Width != 640 || st.Height != 480) {
				t.Errorf("%s: video %dx%d", o.Key, st.Width, st.Height)
			}
		}
		if !codecs["vp8"] || !codecs["opus"] {
			t.Errorf("%s: codecs %v, want vp8 and opus", o.Key, codecs)
		}
		d, _ := strconv.ParseFloat(p.Format.Duration, 64)
		total += d
	}
	if total < 5 || total > 7.5 {
		t.Errorf("segments last %.2f s together, want about 6", total)
	}

	// The recorder's audio counts: every segment closed normally carries
	// them. The clip is a steady tone (ffmpeg's libopus, no DTX) of 6 s in
	// 20 ms packets: 300 frames sent, none can be counted twice, and losing
	// more than half on loopback would be a bug, not load.
	m := readManifest(t, arch, recID)
	if len(m.Segments) != rep.Segments {
		t.Fatalf("manifest has %d segments, verify counted %d", len(m.Segments), rep.Segments)
	}
	frames, filled := 0, 0
	for _, e := range m.Segments {
		if !slices.Contains(e.Codecs, "opus") {
			t.Errorf("segment %d: codecs %v, want opus in every segment of this call", e.Index, e.Codecs)
		}
		checkCounted(t, e)
		if e.AudioFrames != nil && e.AudioFramesFilled != nil {
			frames += *e.AudioFrames
			filled += *e.AudioFramesFilled
		}
	}
	if frames < 150 || frames > 305 {
		t.Errorf("audio frames over the recording = %d, want about 300 (6 s of 20 ms frames)", frames)
	}
	t.Logf("audio: %d frames received, %d concealment frames filled", frames, filled)
	// The verify report sums the same counts for the one recorded track.
	if len(rep.Audio) != 1 || rep.Audio[0].Frames != frames || rep.Audio[0].Filled != filled || rep.Audio[0].Uncounted != 0 {
		t.Errorf("verify report audio %+v, want one track with %d/%d and none uncounted", rep.Audio, frames, filled)
	}

	// ducha verify on the data directory: intact, then altered.
	var out, errOut bytes.Buffer
	if code := run([]string{"verify", "--data-dir", s.dataDir, recID}, &out, &errOut); code != 0 {
		t.Fatalf("verify exit %d\n%s%s", code, out.String(), errOut.String())
	}
	victim := objs[0].Key
	path := filepath.Join(archive.DefaultDirRoot(s.dataDir), filepath.FromSlash(victim))
	// The directory archive keeps each version of a key under "<key>@v/".
	matches, _ := filepath.Glob(path + "@v/*")
	tampered := false
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || fi.IsDir() || strings.HasSuffix(m, ".meta") || fi.Size() < 100 {
			continue
		}
		_ = os.Chmod(m, 0o600)
		b, _ := os.ReadFile(m)
		b[len(b)/2] ^= 0xff
		if os.WriteFile(m, b, 0o600) == nil {
			tampered = true
			break
		}
	}
	if !tampered {
		t.Fatalf("could not find the stored file of %s to alter", victim)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"verify", "--data-dir", s.dataDir, recID}, &out, &errOut); code != 1 {
		t.Fatalf("verify after tampering: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String()+errOut.String(), filepath.Base(victim)) && !strings.Contains(out.String(), "segments/") {
		t.Errorf("the report does not name the altered segment:\n%s", out.String())
	}
}

// audioPackets counts the audio blocks of a segment file with ffprobe:
// what a player gets, received frames and concealment alike.
func audioPackets(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command(requireTool(t, "ffprobe"), "-v", "error", "-select_streams", "a", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe %s: audio packets %q: %v", path, out, err)
	}
	return n
}

// spoolOpen reports whether the recorder has a segment file open: the
// recording runs, so what is sent from now on is recorded.
func spoolOpen(dataDir string) bool {
	open := false
	_ = filepath.WalkDir(dataDir, func(path string, _ os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".webm.part") {
			open = true
			return filepath.SkipAll
		}
		return nil
	})
	return open
}

// A microphone that goes silent in the middle of a recorded call sends
// Opus DTX, as a browser does when the SFU asks for it: one frame in 20.
// The recorder fills the silence with concealment frames, so the audio
// stays as long as the video; the manifest counts them apart from the
// frames received, the verify report sums the same, and the files hold
// exactly those blocks.
func TestRecordedDTXSilenceIsConcealed(t *testing.T) {
	s := startServerWith(t, nil, func(c *config) { c.Segment = 2 * time.Second })
	pub, _ := s.dial(t, "dtx-room", "sup1", sfu.RoleSupervisor)
	sub, subRx := s.dial(t, "dtx-room", "county-1", sfu.RoleCounty)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publishSynth(t, pub, ctx, "video")
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "audio", "local")
	if err != nil {
		t.Fatal(err)
	}
	as, err := pub.PublishAudio(tr, sfu.SourceMicrophone)
	if err != nil {
		t.Fatal(err)
	}
	as.SetLevel(client.LevelSpeech, true)
	mic := &client.Synth{Writer: as, DTX: as.Discontinuous}
	mic.WatchRTCP(as.Sender)
	go mic.Run(ctx)

	// The answer to the publisher's offer asks for DTX (usedtx=1); without
	// it the microphone sends every frame and nothing below holds.
	waitFor(t, 20*time.Second, "the server's answer asking the microphone for Opus DTX", as.DTX)
	waitFor(t, 30*time.Second, "the county receiving the supervisor's audio and video", func() bool {
		a, v := trackOf(sub, pub.Self().ID, "audio"), trackOf(sub, pub.Self().ID, "video")
		return a != "" && v != "" && subRx.count(a) > 20 && subRx.count(v) > 20
	})
	waitFor(t, 30*time.Second, "the recorder's first segment file", func() bool { return spoolOpen(s.dataDir) })

	time.Sleep(time.Second) // speech
	as.SetLevel(client.LevelSilence, false)
	silentFrom, sentBefore := time.Now(), mic.Sent.Load()
	time.Sleep(3 * time.Second)
	as.SetLevel(client.LevelSpeech, true)
	silent, sentSilent := time.Since(silentFrom), mic.Sent.Load()-sentBefore
	time.Sleep(time.Second) // speech again
	cancel()
	time.Sleep(time.Second) // the jitter buffer's hold, then the last packets
	sub.Close()
	pub.Close()
	// The publisher's side: in 3 s of silence at one frame in 20, 7 or 8
	// frames (the first one may be the last of the speech before).
	if sentSilent > 10 {
		t.Errorf("the microphone sent %d frames in %v of silence, want one in 20 (DTX)", sentSilent, silent)
	}

	arch, recID := waitSignedManifest(t, s)
	ctx = context.Background()
	rep := verifyIntact(t, s.dataDir, arch, recID, "the recording")
	m := readManifest(t, arch, recID)
	if len(m.Segments) != rep.Segments || rep.Segments < 2 {
		t.Fatalf("manifest has %d segments, verify counted %d; want several of 2 s", len(m.Segments), rep.Segments)
	}
	frames, filled := 0, 0
	var recorded time.Duration
	for _, e := range m.Segments {
		checkCounted(t, e)
		if e.AudioFrames == nil || e.AudioFramesFilled == nil {
			continue
		}
		t.Logf("segment %d seq %d %v codecs %v: audio %s", e.Index, e.Seq, e.End.Sub(e.Start), e.Codecs, countsString(e))
		frames += *e.AudioFrames
		filled += *e.AudioFramesFilled
		recorded += e.End.Sub(e.Start)

		// The file holds exactly the counted blocks: a filler is a real
		// block a player decodes (and conceals), not just a number.
		if n := audioPackets(t, archivedFile(t, arch, e.Key, e.VersionID)); n != *e.AudioFrames+*e.AudioFramesFilled {
			t.Errorf("segment %d: %d audio blocks in the file, the manifest counts %s", e.Index, n, countsString(e))
		}
	}
	t.Logf("audio: %d frames received, %d concealment frames filled over %v recorded; %d frames sent in %v of silence",
		frames, filled, recorded, sentSilent, silent)

	// 3 s of silence is 150 frames of 20 ms, of which the microphone sent
	// ~8: ~142 holes to fill. A hole across a segment boundary is not
	// filled (recording/mux), and with 2 s segments the silence holds one
	// or two boundaries, each costing at most one hole of 19 frames: at
	// least ~104 remain. Above, nothing but the silence should be filled
	// (loopback loses next to nothing while speaking): the band is 90..170.
	// Without DTX nothing is filled at all.
	if filled < 90 || filled > 170 {
		t.Errorf("concealment frames = %d, want about 150 - 8 for 3 s of DTX silence (90..170)", filled)
	}
	// DTX really reduced what arrived: a continuous microphone fills the
	// recorded time with 50 frames a second; the silence saved ~142 of
	// them, at least 100 however the segments fell.
	if full := int(recorded / (20 * time.Millisecond)); frames <= 0 || frames > full-100 {
		t.Errorf("audio frames received = %d in %v recorded (%d frames of 20 ms), want at least 100 fewer (DTX)",
			frames, recorded, full)
	}
	if len(rep.Audio) != 1 || rep.Audio[0].Frames != frames || rep.Audio[0].Filled != filled || rep.Audio[0].Uncounted != 0 {
		t.Errorf("verify report audio %+v, want one track with %d/%d and none uncounted", rep.Audio, frames, filled)
	}
}
