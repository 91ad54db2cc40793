package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

	arch, err := archive.NewDir(archive.DefaultDirRoot(s.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var recID string
	waitFor(t, 60*time.Second, "the manifest in the archive", func() bool {
		objs, err := arch.List(ctx, "sessions/")
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
	if !strings.HasPrefix(recID, "rec-room-") {
		t.Fatalf("recording id %q", recID)
	}
	key, err := evidence.LoadOrCreateNodeKey(s.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	rep := evidence.Verify(ctx, arch, recID, key.Public().(ed25519.PublicKey))
	if rep.Result != evidence.Intact {
		t.Fatalf("verify: %+v", rep)
	}
	if rep.Segments < 2 {
		t.Fatalf("segments = %d, want the 6 s clip cut into several", rep.Segments)
	}

	// Every segment plays in ffprobe with the right codecs; together they
	// last as long as the clip.
	objs, _ := arch.List(ctx, "sessions/"+recID+"/segments/")
	var total float64
	for _, o := range objs {
		rc, _, err := arch.Get(ctx, o.Key, "")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(rc)
		rc.Close()
		tmp := filepath.Join(t.TempDir(), "seg.webm")
		if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		p := ffprobeFile(t, tmp)
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
