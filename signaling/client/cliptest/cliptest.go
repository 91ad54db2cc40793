// Package cliptest gives tests real encoded media: a VP8 test pattern and an
// Opus tone made with ffmpeg, published in real time through a
// client.Client, as a camera and microphone would be. The recording, replay
// and browser tests share it.
package cliptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
)

// RequireTool returns the path of an outside program. Missing, it fails the
// test under CI=true (make test installs it) and skips otherwise.
func RequireTool(t testing.TB, name string) string {
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

// Encode makes a clip of the given length: 640x480 VP8 at 20 fps with a
// keyframe every second (IVF) and a 440 Hz Opus tone (Ogg).
func Encode(t testing.TB, seconds int) (ivf, ogg string) {
	t.Helper()
	ff := RequireTool(t, "ffmpeg")
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

// Publish sends the clip in real time as camera and microphone tracks. The
// returned channel closes when both are done, or when stop closes (nil:
// never).
func Publish(t testing.TB, c *client.Client, ivf, ogg string, stop <-chan struct{}) <-chan struct{} {
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
	vdone, adone, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(vdone)
		sendVideo(vt, ivf, stop)
	}()
	go func() {
		defer close(adone)
		sendAudio(at, ogg, stop)
	}()
	go func() { <-vdone; <-adone; close(done) }()
	return done
}

func sendVideo(tr *webrtc.TrackLocalStaticSample, path string, stop <-chan struct{}) {
	f, err := os.Open(path)
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
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_ = tr.WriteSample(media.Sample{Data: frame, Duration: 50 * time.Millisecond})
	}
}

func sendAudio(tr *webrtc.TrackLocalStaticSample, path string, stop <-chan struct{}) {
	f, err := os.Open(path)
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
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_ = tr.WriteSample(media.Sample{Data: page, Duration: dur})
	}
}
