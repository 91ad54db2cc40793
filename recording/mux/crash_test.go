package mux

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash test runs a real recorder (its own goroutine, the real clock)
// in a child process fed in real time, kills it with SIGKILL and checks
// what reached the disk.
const (
	crashHelperEnv = "MUX_CRASH_HELPER" // spool dir for the child
	crashVideoEnv  = "MUX_CRASH_VIDEO"  // IVF file to send
	crashAudioEnv  = "MUX_CRASH_AUDIO"  // OGG file to send
)

// crashHelper is the child: it records until it is killed.
func crashHelper() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 2
	}
	v, err := readClip(CodecVP8, os.Getenv(crashVideoEnv))
	if err != nil {
		return fail(err)
	}
	a, err := readClip(CodecOpus, os.Getenv(crashAudioEnv))
	if err != nil {
		return fail(err)
	}
	r, err := New(Config{Dir: os.Getenv(crashHelperEnv), Name: "crash_p1_camera"})
	if err != nil {
		return fail(err)
	}
	vt, err := r.AddTrack("video/VP8")
	if err != nil {
		return fail(err)
	}
	at, err := r.AddTrack("audio/opus")
	if err != nil {
		return fail(err)
	}
	var pk []sent
	pk = append(pk, packetize(v, 1, 0)...)
	pk = append(pk, packetize(a, 2, 0)...)
	sort.SliceStable(pk, func(i, j int) bool { return pk[i].sendT < pk[j].sendT })
	start := time.Now()
	fmt.Printf("start %d\n", start.UnixNano())
	for _, p := range pk {
		time.Sleep(time.Until(start.Add(p.sendT)))
		tr := vt
		if p.kind == KindAudio {
			tr = at
		}
		if err := tr.WriteRTP(p.pkt); err != nil {
			return fail(err)
		}
	}
	select {} // wait for the kill
}

func TestCrashLosesAboutOneSecond(t *testing.T) {
	v := clip(t, CodecVP8, 10, 40)
	_ = clip(t, CodecOpus, 10, 0)
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		crashHelperEnv+"="+dir,
		crashVideoEnv+"="+filepath.Join(testMedia.dir, "vp8-10-40.ivf"),
		crashAudioEnv+"="+filepath.Join(testMedia.dir, "opus-10-0.ogg"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child did not start: %v", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "start ")), 10, 64)
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	start := time.Unix(0, ns)
	time.Sleep(time.Until(start.Add(4300 * time.Millisecond)))
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	killed := time.Since(start)
	_ = cmd.Wait()

	parts, _ := filepath.Glob(filepath.Join(dir, "*.webm.part"))
	if len(parts) != 1 {
		t.Fatalf("want one unfinished segment, found %v", parts)
	}
	p := ffprobe(t, parts[0])
	c, w, h, frames, ok := p.stream("video")
	if !ok || c != "vp8" || w != 640 || h != 480 {
		t.Fatalf("crashed file: video %q %dx%d", c, w, h)
	}
	if e := decodeErrors(t, parts[0]); e != "" {
		t.Errorf("crashed file does not decode cleanly:\n%s", e)
	}
	var lastVideo, lastAudio time.Duration
	for _, x := range ffprobePackets(t, parts[0]) {
		if x.stream == 0 {
			lastVideo = x.pts
		} else {
			lastAudio = x.pts
		}
	}
	// Media sent up to the kill, minus the network-free start: what is
	// missing is what had not been synced yet.
	lostVideo := killed - lastVideo
	lostAudio := killed - lastAudio
	t.Logf("killed at %v: %d video frames on disk (of %d), last video %v, last audio %v: lost %v / %v",
		killed, frames, len(v.frames), lastVideo, lastAudio, lostVideo, lostAudio)
	if lostVideo > 1500*time.Millisecond || lostAudio > 1500*time.Millisecond {
		t.Errorf("crash lost %v of video and %v of audio, want about a second at most", lostVideo, lostAudio)
	}

	// The unfinished file has no Cues, yet with the Duration written at
	// each flush Chromium plays it and seeks into it.
	t.Run("chromium", func(t *testing.T) {
		res := playInChromium(t, parts[0])
		t.Logf("chromium on the crashed file: %+v", res)
		if res.Error != "" || res.MediaError != "" || res.VideoWidth != 640 {
			t.Fatalf("chromium cannot play the crashed file: %s %s width %d", res.Error, res.MediaError, res.VideoWidth)
		}
		if res.AfterPlay < res.AfterSeek+0.5 || math.Abs(res.AfterSeek-res.SeekTarget) > 0.5 {
			t.Errorf("chromium seek in the crashed file: target %.2f landed %.2f then %.2f", res.SeekTarget, res.AfterSeek, res.AfterPlay)
		}
	})
}
