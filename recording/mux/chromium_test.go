package mux

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// playwrightPath returns the node_modules directory holding playwright-core:
// the web e2e suite's (make test runs npm ci there).
func playwrightPath(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"../../web/e2e/node_modules"} {
		abs, err := filepath.Abs(dir)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(abs, "playwright-core", "package.json")); err == nil {
			return abs
		}
	}
	const msg = "playwright-core not installed: run `make test` (it runs " +
		"npm ci in web/e2e)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// playResult is what testdata/play.js reports.
type playResult struct {
	Duration            float64 `json:"duration"`
	VideoWidth          int     `json:"videoWidth"`
	VideoHeight         int     `json:"videoHeight"`
	PlayedTo            float64 `json:"playedTo"`
	SeekTarget          float64 `json:"seekTarget"`
	AfterSeek           float64 `json:"afterSeek"`
	AfterPlay           float64 `json:"afterPlay"`
	FramesAfterSeek     int     `json:"framesAfterSeek"`
	FirstFrameAfterSeek float64 `json:"firstFrameAfterSeek"`
	VideoWidthAfterSeek int     `json:"videoWidthAfterSeek"`
	DecodedFrames       int     `json:"decodedFrames"`
	Error               string  `json:"error"`
	MediaError          string  `json:"mediaError"`
}

// playInChromium serves path to Chromium from a local test server and
// returns what the <video> element did.
func playInChromium(t *testing.T, path string) playResult {
	t.Helper()
	var res playResult
	runInChromium(t, path, "testdata/play.js", &res, &res.Error)
	return res
}

// runInChromium serves path as /segment.webm beside a page with
// <video id=v muted>, runs the node script on the page and decodes the
// JSON line it prints into res. errField is res's error field: a script
// that failed must have filled it.
func runInChromium(t *testing.T, path, script string, res any, errField *string) {
	t.Helper()
	chromium := requireTool(t, "chromium")
	node := requireTool(t, "node")
	modules := playwrightPath(t)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><video id="v" muted playsinline preload="auto" src="/segment.webm"></video>`)
		case "/segment.webm":
			f, err := os.Open(path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "video/webm")
			http.ServeContent(w, r, "segment.webm", fi.ModTime(), f)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, srv.URL+"/")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CHROMIUM="+chromium)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if jerr := json.Unmarshal(out, res); jerr != nil {
		t.Fatalf("%s: %v %v\nstdout: %s\nstderr: %s", script, err, jerr, out, stderr.String())
	}
	if err != nil && *errField == "" {
		t.Fatalf("%s: %v\nstderr: %s", script, err, stderr.String())
	}
}

// TestChromiumPlaysAndSeeks proves that a segment of each codec plays in
// Chromium's <video> and seeks into its middle (the middle has no keyframe
// cue of its own at 4 s keyframe spacing, so the Cues must lead back to one).
func TestChromiumPlaysAndSeeks(t *testing.T) {
	for _, tc := range []struct {
		mime  string
		codec Codec
	}{
		{"video/VP8", CodecVP8},
		{"video/VP9", CodecVP9},
		{"video/H264", CodecH264},
	} {
		t.Run(string(tc.codec), func(t *testing.T) {
			segs := recordClean(t, tc.mime, tc.codec, 10, 80)
			if len(segs) != 1 {
				t.Fatalf("%d segments, want 1", len(segs))
			}
			res := playInChromium(t, segs[0].Path)
			t.Logf("chromium: %+v", res)
			if res.Error != "" || res.MediaError != "" {
				t.Fatalf("chromium could not play %s: %s %s", tc.codec, res.Error, res.MediaError)
			}
			if res.VideoWidth != 640 || res.VideoHeight != 480 || res.VideoWidthAfterSeek != 640 {
				t.Errorf("video size %dx%d (after seek width %d), want 640x480", res.VideoWidth, res.VideoHeight, res.VideoWidthAfterSeek)
			}
			if math.Abs(res.Duration-10) > 1 {
				t.Errorf("duration %.2f, want 10 ±1", res.Duration)
			}
			if math.Abs(res.AfterSeek-res.SeekTarget) > 0.5 {
				t.Errorf("seek to %.2f landed at %.2f", res.SeekTarget, res.AfterSeek)
			}
			if res.AfterPlay < res.AfterSeek+0.5 {
				t.Errorf("currentTime did not grow after the seek: %.2f -> %.2f", res.AfterSeek, res.AfterPlay)
			}
			if res.FramesAfterSeek < 5 || math.Abs(res.FirstFrameAfterSeek-res.SeekTarget) > 0.5 {
				t.Errorf("%d frames presented after seek, first at %.2f (target %.2f)", res.FramesAfterSeek, res.FirstFrameAfterSeek, res.SeekTarget)
			}
		})
	}
}

// recordClean records seconds of a video clip with Opus through a clean
// network and returns the segments.
func recordClean(t *testing.T, mime string, c Codec, seconds, gop int) []Segment {
	t.Helper()
	v := clip(t, c, seconds, gop)
	a := clip(t, CodecOpus, seconds, 0)
	h := newHarness(t, Config{})
	vt := h.track(t, mime)
	at := h.track(t, "audio/opus")
	net := network{delay: 20 * time.Millisecond, jitter: 5 * time.Millisecond, seed: 3}
	va, _ := net.deliver(packetize(v, 1, 0), vt)
	aa, _ := net.deliver(packetize(a, 2, 0), at)
	arr := append(va, aa...)
	sortArrivals(arr)
	feed(t, h.rec, h.clk, testT0, arr, nil)
	if err := h.rec.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return h.sink.all()
}

// listenResult is what testdata/listen.js reports.
type listenResult struct {
	Duration   float64      `json:"duration"`
	Ended      bool         `json:"ended"`
	EndedAt    float64      `json:"endedAt"`
	Levels     [][2]float64 `json:"levels"` // media time (s), RMS of the audio output
	Error      string       `json:"error"`
	MediaError string       `json:"mediaError"`
}

// level is the median output level heard while the media time was in
// [from, to), and how many samples that is.
func (r listenResult) level(from, to float64) (float64, int) {
	var l []float64
	for _, s := range r.Levels {
		if s[0] >= from && s[0] < to {
			l = append(l, s[1])
		}
	}
	if len(l) == 0 {
		return 0, 0
	}
	sort.Float64s(l)
	return l[len(l)/2], len(l)
}

// TestChromiumKeepsAudioInStep plays a recording with DTX holes (a tone
// for 2 s, a packet every 400 ms for 2 s, the tone again with a short
// loss) in Chromium with its sound on. Chromium plays the packets of an
// audio track back to back: without fillers the tone ran on through the
// DTX time and the audio ran out 2 s before the video. What is heard must
// follow the media time: quiet in the DTX part, the tone after it, to the
// end of the file.
func TestChromiumKeepsAudioInStep(t *testing.T) {
	const seconds = 6
	seg, _, _, _ := recordHoles(t, seconds, true, dtxPlan)
	pk := ffprobeAudioPackets(t, seg.Path)
	if len(pk) == 0 {
		t.Fatal("no audio in the file")
	}
	p0 := pk[0].pts.Seconds() // media time of frame 0

	var res listenResult
	runInChromium(t, seg.Path, "testdata/listen.js", &res, &res.Error)
	if res.Error != "" || res.MediaError != "" {
		t.Fatalf("chromium could not play the file: %s %s", res.Error, res.MediaError)
	}
	if !res.Ended || math.Abs(res.EndedAt-res.Duration) > 0.3 || math.Abs(res.Duration-seconds) > 0.5 {
		t.Errorf("played to %.2f of %.2f (ended %v), want the whole %d s", res.EndedAt, res.Duration, res.Ended, seconds)
	}
	// Frame i of the clip plays at p0 + i*20 ms: frames 100-199 are DTX,
	// 230-234 lost. The windows keep 0.2-0.3 s off each change.
	tone, n := res.level(p0+0.3, p0+1.8)
	quiet, nq := res.level(p0+2.3, p0+3.8)
	after, na := res.level(p0+4.8, p0+5.8)
	t.Logf("median output level: tone %.4f (%d samples), DTX %.4f (%d), after %.4f (%d)", tone, n, quiet, nq, after, na)
	if n < 10 || tone < 0.01 {
		t.Fatalf("no sound heard in the first 2 s (level %.4f, %d samples): the capture does not work", tone, n)
	}
	if nq < 10 || quiet > 0.6*tone {
		t.Errorf("DTX part (media time %.1f-%.1f s) plays at %.4f, the tone at %.4f: audio runs ahead of the video",
			p0+2.3, p0+3.8, quiet, tone)
	}
	if na < 10 || after < 0.6*tone {
		t.Errorf("the tone after the DTX part (media time %.1f-%.1f s) plays at %.4f, want near %.4f: audio runs ahead of the video",
			p0+4.8, p0+5.8, after, tone)
	}
}
