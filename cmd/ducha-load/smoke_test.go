package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needGo returns the go tool, which --spawn needs to build the server.
func needGo(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the go tool is not on PATH: the smoke test builds cmd/ducha with it (run it through `make test`)")
		}
		t.Skip("the go tool is not on PATH; `make test` runs this with it")
	}
	return p
}

// buildDucha builds the server once for both runs (DUCHA_LOAD_SERVER_BIN
// names a prebuilt one instead).
func buildDucha(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("DUCHA_LOAD_SERVER_BIN"); bin != "" {
		return bin
	}
	goBin := needGo(t)
	bin := filepath.Join(t.TempDir(), "ducha")
	start := time.Now()
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/ducha-dev/ducha/cmd/ducha").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/ducha: %v\n%s", err, out)
	}
	t.Logf("built the server in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

var spawnedPID = regexp.MustCompile(`msg="server spawned".* pid=(\d+)`)

// runLoad runs ducha-load in this process as the command line would, and
// returns the parsed JSON report and what it printed.
func runLoad(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := realMain(append(args, "--json", jsonPath, "--log-level", "info"), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("ducha-load %s exited with %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code,
			stdout.String(), stderr.String())
	}
	// The spawned server must be gone: stopped and reaped.
	m := spawnedPID.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no spawned server in the log:\n%s", stderr.String())
	}
	if _, err := os.Stat("/proc/" + m[1]); err == nil {
		t.Errorf("server pid %s still exists after the run", m[1])
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b)
	}
	return rep, stdout.String()
}

// field walks a path of object keys and requires a number at its end.
func field(t *testing.T, v any, path string) float64 {
	t.Helper()
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %q is not inside an object", path, k)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("report has no %s (missing %q)", path, k)
		}
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%s is %T, want a number", path, v)
	}
	return f
}

// checkMediaFlowed asserts what any healthy run shows, whatever its speed:
// streams expected (what the server's descriptions send, slots aside)
// either got packets or are audio the loudest-speaker policy held back.
func checkMediaFlowed(t *testing.T, rep map[string]any, stdout string, participants, streams, videoStreams int) {
	t.Helper()
	res := rep["result"]
	if got := field(t, res, "participants"); int(got) != participants {
		t.Errorf("participants %v, want %d", got, participants)
	}
	if got := field(t, res, "streams_expected"); int(got) != streams {
		t.Errorf("streams_expected %v, want %d", got, streams)
	}
	fwd, held := field(t, res, "streams_forwarded"), field(t, res, "streams_audio_held_back")
	if int(fwd+held) != streams {
		t.Errorf("streams_forwarded %v + streams_audio_held_back %v, want %d", fwd, held, streams)
	}
	if n := field(t, res, "receivers_without_media"); n != 0 {
		t.Errorf("%v receivers miss tracks", n)
	}
	for _, p := range []string{"server.packets_in", "server.packets_out", "server.bytes_out", "server.cpu_seconds",
		"server.peak_rss_bytes", "clients.packets_sent", "clients.packets_received", "forwarding_delay.samples",
		"forwarding_delay.p99_ms", "derived.server_cpu_us_per_forwarded_packet", "derived.mcpu_per_forwarded_track",
		"derived.server_cpu_ms_per_forwarded_mbit", "clients.load_tool_cpu_seconds",
		// The server exports Go's scheduling latency, and both processes
		// had goroutines waiting for a thread at some point.
		"server.sched_latency_p99_ms", "clients.load_tool_sched_latency_p99_ms",
		// and times its own forwarding, and the send batch's wait.
		"server.forward_delay_p99_ms", "server.send_wait_p99_ms",
		// The receivers timed arrivals at their sockets and sent
		// congestion feedback built from them.
		"clients.twcc_feedback_sent", "clients.twcc_packets_timed"} {
		if v := field(t, res, p); v <= 0 {
			t.Errorf("%s = %v, want > 0", p, v)
		}
	}
	for _, p := range []string{"clients.loss_percent", "clients.end_to_end_loss_percent", "derived.memory_per_participant_mib",
		"forwarding_delay.p50_ms", "forwarding_delay.p95_ms", "join_to_first_frame.p50_ms", "join_to_first_frame.p95_ms"} {
		if v := field(t, res, p); v < 0 {
			t.Errorf("%s = %v, want >= 0", p, v)
		}
	}
	// The server took the clients' media off its socket itself (its own
	// SRTP ingress), but for each stream's first packets: the clients, as
	// browsers, do not negotiate cryptex.
	if in, taken := field(t, res, "server.packets_in"), field(t, res, "server.ingress_packets"); taken < in*3/4 {
		t.Errorf("the server's ingress took %v of %v packets in, want nearly all", taken, in)
	}
	if got := field(t, res, "join_to_first_frame.samples"); int(got) != videoStreams {
		t.Errorf("join_to_first_frame.samples %v, want %d (every video stream shows a first frame)", got, videoStreams)
	}
	// The delay split by receiver role adds up to the whole.
	if sup, county, all := field(t, res, "forwarding_delay_by_receiver_role.supervisor.samples"),
		field(t, res, "forwarding_delay_by_receiver_role.county.samples"), field(t, res, "forwarding_delay.samples"); sup <= 0 ||
		county <= 0 || sup+county != all {
		t.Errorf("delay samples by role: supervisor %v + county %v, want both > 0 and %v in all", sup, county, all)
	}
	// Every delay sample is also taken at the read from the client's
	// stack, which comes after the socket: never sooner. Almost all were
	// timed at the socket (a reader lagging its socket by a whole ring
	// would be a load tool far behind).
	// (The two histograms are read one after the other while packets
	// flow, so their counts may differ by a packet per track.)
	if all, stack := field(t, res, "forwarding_delay.samples"),
		field(t, res, "forwarding_delay_after_client_stack.samples"); math.Abs(stack-all) > max(20, all/100) {
		t.Errorf("%v delay samples at the read, %v at the socket", stack, all)
	}
	if sock, stack := field(t, res, "forwarding_delay.p50_ms"), field(t, res, "forwarding_delay_after_client_stack.p50_ms"); stack < sock {
		t.Errorf("median delay to the read %v ms, below the one to the socket %v ms", stack, sock)
	}
	if un, all := field(t, res, "clients.delay_untimed_at_socket"), field(t, res, "forwarding_delay.samples"); un*100 > all {
		t.Errorf("%v of %v delay samples were not timed at the socket", un, all)
	}
	bySup := field(t, res, "join_to_first_frame_by_receiver_role.supervisor.samples")
	byCounty := field(t, res, "join_to_first_frame_by_receiver_role.county.samples")
	if bySup <= 0 || byCounty <= 0 || int(bySup+byCounty) != videoStreams {
		t.Errorf("first frames by receiver role: supervisor %v + county %v, want both > 0 and %d in all",
			bySup, byCounty, videoStreams)
	}
	if got := field(t, res, "join_to_joined.samples"); int(got) != participants {
		t.Errorf("join_to_joined.samples %v, want %d", got, participants)
	}
	receivers, _ := res.(map[string]any)["receivers"].([]any)
	if len(receivers) != participants {
		t.Fatalf("%d receivers in the report, want %d", len(receivers), participants)
	}
	for _, r := range receivers {
		id := r.(map[string]any)["identity"]
		exp, got, held := field(t, r, "tracks_expected"), field(t, r, "tracks_receiving"), field(t, r, "tracks_audio_held_back")
		if got+held != exp || exp == 0 {
			t.Errorf("%v receives %v of %v tracks (%v held back)", id, got, exp, held)
		}
		if n := field(t, r, "min_track_packets"); n <= 0 {
			t.Errorf("%v: a track received %v packets in the window", id, n)
		}
	}
	for _, name := range []string{"server CPU us per forwarded packet", "mCPU per forwarded track"} {
		if !strings.Contains(stdout, name) {
			t.Errorf("the table lacks %q:\n%s", name, stdout)
		}
	}
}

// A few seconds of S1 and S2 at low bitrate against a spawned server: media
// flows to every receiver, the report is complete, nothing is left running.
// It asserts no speed.
func TestSmoke(t *testing.T) {
	start := time.Now()
	base := runtime.NumGoroutine()
	bin := buildDucha(t)
	common := []string{"--spawn", "--server-bin", bin, "--duration", "4s", "--grace", "500ms",
		"--settle-timeout", "20s", "--join-timeout", "20s", "--video-kbps", "200", "--small-video-kbps", "100"}

	t.Run("s1", func(t *testing.T) {
		// One stream per camera, as before simulcast: the comparison run;
		// and the load tool yields the CPU to the server it spawned. (It
		// runs in this process: the test's own priority is put back after,
		// where it may be.)
		mine, known := niceOf(os.Getpid())
		rep, out := runLoad(t, append(common, "--scenario", "s1", "--rooms", "1", "--size", "2", "--simulcast=false",
			"--nice", "7")...)
		if known {
			_ = reniceSelf(mine)
			if n, s := field(t, rep["result"], "machine.load_tool_nice"), field(t, rep["result"], "machine.server_nice"); n != 7 ||
				int(s) != mine {
				t.Errorf("nice: load tool %v, server %v; want 7 and this test's %d", n, s, mine)
			}
		}
		// 3 participants, each receives the other two's video and audio.
		checkMediaFlowed(t, rep, out, 3, 3*2*2, 3*2)
		// Every track has a group of two subscribers: the server's UDP
		// reader writes them itself while it keeps up with the socket.
		if in, inline := field(t, rep["result"], "server.packets_in"), field(t, rep["result"], "server.inline_packets"); inline < in/2 {
			t.Errorf("the server's reader wrote %v of %v packets in itself, want most", inline, in)
		}
		if n := field(t, rep["result"], "server.reader_bursts"); n <= 0 {
			t.Errorf("server.reader_bursts = %v, want > 0", n)
		}
		// The server asks every microphone for DTX (everyone speaks in s1,
		// so nothing is skipped).
		if n := field(t, rep["result"], "clients.audio_dtx_tracks"); n != 3 {
			t.Errorf("%v audio tracks asked for DTX, want 3", n)
		}
		if n := field(t, rep["result"], "layers.videos.single"); n != 3*2 {
			t.Errorf("%v of %d received videos are single streams", n, 3*2)
		}
		// A small room: everything announced is sent, nothing held back.
		for _, p := range []string{"streams_withheld", "streams_audio_held_back", "slots.receivers",
			"clients.end_to_end_excluded_streams"} {
			if n := field(t, rep["result"], p); n != 0 {
				t.Errorf("%s = %v in a room of 3", p, n)
			}
		}
	})
	t.Run("s2", func(t *testing.T) {
		// A large room (more than 3): the supervisor and county001 speak,
		// the last two to join get speaker slots, counties get no county
		// video.
		rep, out := runLoad(t, append(common, "--scenario", "s2", "--counties", "4", "--large-room", "3",
			"--late-joiners", "2")...)
		if s := rep["scenario"]; s != "s2" {
			t.Errorf("scenario %v", s)
		}
		// Two receive-only counties joined the full room after the window,
		// one at a time, and each saw a frame.
		if n, m := field(t, rep["result"], "late_join_to_first_frame.samples"),
			field(t, rep["result"], "late_join_to_first_frame.missing"); n != 2 || m != 0 {
			t.Errorf("late joiners: %v with a first frame, %v without; want 2 and 0", n, m)
		}
		if !strings.Contains(out, "late join to first frame") {
			t.Error("the table has no late-join row")
		}
		// Whoever joins last, 20 (receiver, track) pairs are sent and 20 of
		// the 5 x 4 x 2 announced are withheld (see checkLargeRoom).
		checkMediaFlowed(t, rep, out, 5, 20, 2*4)
		checkLargeRoom(t, rep, out)
		// Five microphones asked for DTX: the three silent ones send a
		// packet every 400 ms, and the room's audio still flows (above).
		if n := field(t, rep["result"], "clients.audio_dtx_tracks"); n != 5 {
			t.Errorf("%v audio tracks asked for DTX, want 5", n)
		}
		checkSimulcast(t, rep, out, 5, 2*4)
	})

	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > base+5 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d, started with %d\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("smoke took %s", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("smoke took %s, want under 60 s", d.Round(time.Second))
	}
}

// checkSimulcast asserts what an S2 run with simulcast shows: everyone
// publishes three layers, every received video comes from one of them
// (the SFU sends one layer per subscriber), and the supervisor, who shows
// the counties at 320x180, receives each at the q layer whatever the
// bandwidth allows.
func checkSimulcast(t *testing.T, rep map[string]any, stdout string, publishers, videos int) {
	t.Helper()
	res := rep["result"]
	if n := field(t, res, "layers.published_layers"); int(n) != 3*publishers {
		t.Errorf("%v layers published, want %d", n, 3*publishers)
	}
	layers := res.(map[string]any)["layers"].(map[string]any)["videos"].(map[string]any)
	sum := 0.0
	for name, v := range layers {
		switch name {
		case "q", "h", "f":
			sum += v.(float64)
		default:
			t.Errorf("%v received videos on layer %q", v, name)
		}
	}
	if int(sum) != videos {
		t.Errorf("%v received videos on a simulcast layer, want %d: %v", sum, videos, layers)
	}
	if n := field(t, res, "layers.video_sizes_sent"); int(n) != videos {
		t.Errorf("%v video-size messages, want one per received video (%d)", n, videos)
	}
	for _, r := range res.(map[string]any)["receivers"].([]any) {
		rr := r.(map[string]any)
		if rr["role"] != "supervisor" {
			continue
		}
		if n := field(t, rr, "video_layers.q"); int(n) != publishers-1 {
			t.Errorf("the supervisor shows the counties at 320x180 but receives %v of %d on q: %v", n,
				publishers-1, rr["video_layers"])
		}
	}
	if !strings.Contains(stdout, "received videos by layer") {
		t.Errorf("the table lacks the layer distribution:\n%s", stdout)
	}
}

// checkLargeRoom asserts the large-room policy as an S2 run of 1+4 with
// --large-room 3 sees it. Three join a small room and receive everyone's
// audio; the last two get speaker slots instead. A county receives the
// supervisor's video only. Per receiver, withheld = the 8 tracks of others
// less those sent: supervisor 0 (or 4 if it came last), county 3 (or 7):
// 20 in all either way.
func checkLargeRoom(t *testing.T, rep map[string]any, stdout string) {
	t.Helper()
	res := rep["result"]
	if n := field(t, res, "streams_withheld"); n != 20 {
		t.Errorf("streams_withheld %v, want 20", n)
	}
	if n := field(t, res, "streams_audio_held_back"); n < 1 {
		t.Errorf("streams_audio_held_back %v: the silent counties' audio should be held back", n)
	}
	if n := field(t, res, "slots.receivers"); n != 2 {
		t.Errorf("%v receivers with speaker slots, want the last 2 to join", n)
	}
	if n := field(t, res, "slots.slots"); n != 6 {
		t.Errorf("%v speaker slots, want 2 x 3", n)
	}
	if n := field(t, res, "slots.packets"); n <= 0 {
		t.Error("the speaker slots carried nothing")
	}
	if n := field(t, res, "slots.delay.samples"); n <= 0 {
		t.Error("no slot delay samples")
	}
	if n := field(t, res, "clients.end_to_end_excluded_streams"); n <= 0 {
		t.Error("slots and large-room audio must be left out of the end-to-end loss")
	}
	heard, _ := res.(map[string]any)["slots"].(map[string]any)["heard"].(map[string]any)
	if len(heard) == 0 {
		t.Error("nobody heard on the slots")
	}
	for who := range heard {
		if who != "supervisor" && who != "county001" {
			t.Errorf("%s, who does not speak, was heard on a slot: %v", who, heard)
		}
	}
	for _, r := range res.(map[string]any)["receivers"].([]any) {
		rr := r.(map[string]any)
		// Every slot receiver hears a speaker other than itself.
		if field(t, rr, "slots") > 0 && field(t, rr, "slot_packets") <= 0 {
			t.Errorf("%v has slots but they carried nothing", rr["identity"])
		}
	}
	for _, name := range []string{"speaker slots", "withheld (large-room policy)", "heard on slots"} {
		if !strings.Contains(stdout, name) {
			t.Errorf("the table lacks %q:\n%s", name, stdout)
		}
	}
}

// Bad flags are usage errors; --server-arg collects the spawned server's
// extra arguments; --down-who picks who gets the weak link.
func TestConfigRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "s1"}, // neither --spawn nor --data-dir
		{"--spawn", "--scenario", "s3"},
		{"--spawn", "--rooms", "0"},
		{"--spawn", "--down-loss", "100"},
		{"--spawn", "--nice", "20"},
		{"--spawn", "--down-who", "mayors"},
		{"--spawn", "--server-pid", "12"},
		{"--data-dir", "x", "--server-bin", "ducha"},
		{"--spawn", "--local-ip", "::1"},
		{"--spawn", "--duration", "10ms"},
		{"--spawn", "extra"},
		{"--spawn", "--pprof", "0.0.0.0:6061"},
		{"--spawn", "--join-timeout", "0s"},
	} {
		var errb bytes.Buffer
		if code := realMain(args, &bytes.Buffer{}, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage error)", args, code)
		}
	}
	c, err := parseConfig([]string{"--spawn", "--server-arg", "--log-level=warn", "--server-arg", "-x",
		"--down-kbps", "300", "--down-who", "counties"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Quote(strings.Join(c.ServerArgs, " ")) != strconv.Quote("--log-level=warn -x") {
		t.Errorf("server args %q", c.ServerArgs)
	}
	if c.downFor("supervisor").Active() || c.downFor("county").RateKbps != 300 {
		t.Errorf("--down-who counties: supervisor %+v, county %+v", c.downFor("supervisor"), c.downFor("county"))
	}
}
