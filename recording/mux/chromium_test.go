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
	cmd := exec.CommandContext(ctx, node, "testdata/play.js", srv.URL+"/")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CHROMIUM="+chromium)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res playResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("play.js: %v %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr.String())
	}
	if err != nil && res.Error == "" {
		t.Fatalf("play.js: %v\nstderr: %s", err, stderr.String())
	}
	return res
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
