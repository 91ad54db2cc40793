package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
)

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true): `make test` installs it", name)
	}
	t.Skipf("%s not found; run `make test`", name)
	return ""
}

// encodeClip makes real VP8 and Opus with ffmpeg: a 640x480 test pattern
// with a keyframe every second, and a tone.
func encodeClip(t *testing.T, seconds int) (ivf, ogg string) {
	t.Helper()
	ff := requireTool(t, "ffmpeg")
	dir := t.TempDir()
	ivf, ogg = filepath.Join(dir, "v.ivf"), filepath.Join(dir, "a.ogg")
	d := strconv.Itoa(seconds)
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=640x480:rate=20", "-t", d, "-c:v", "libvpx", "-g", "20", "-b:v", "400k", "-deadline", "realtime", ivf},
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", d, "-c:a", "libopus", "-b:a", "32k", "-page_duration", "20000", ogg},
	} {
		out, err := exec.Command(ff, append([]string{"-y", "-v", "error"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return ivf, ogg
}

// publishClip sends the clip in real time on sample tracks.
func publishClip(t *testing.T, c *client.Client, ivf, ogg string) (done chan struct{}) {
	t.Helper()
	vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "s")
	if err != nil {
		t.Fatal(err)
	}
	at, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(vt, sfu.SourceCamera); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(at, sfu.SourceMicrophone); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	vdone, adone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(vdone)
		f, err := os.Open(ivf)
		if err != nil {
			return
		}
		defer f.Close()
		r, _, err := ivfreader.NewWith(f)
		if err != nil {
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			frame, _, err := r.ParseNextFrame()
			if err != nil {
				return
			}
			<-tick.C
			_ = vt.WriteSample(media.Sample{Data: frame, Duration: 50 * time.Millisecond})
		}
	}()
	go func() {
		defer close(adone)
		f, err := os.Open(ogg)
		if err != nil {
			return
		}
		defer f.Close()
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var last uint64
		for {
			page, hdr, err := r.ParseNextPage()
			if err != nil {
				return
			}
			if hdr.GranulePosition == 0 || hdr.GranulePosition == last {
				continue // header pages
			}
			dur := time.Duration(hdr.GranulePosition-last) * time.Second / 48000
			last = hdr.GranulePosition
			<-tick.C
			_ = at.WriteSample(media.Sample{Data: page, Duration: dur})
		}
	}()
	go func() { <-vdone; <-adone; close(done) }()
	return done
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
