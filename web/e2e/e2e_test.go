// Package e2e drives ducha's web pages in real headless Chromium against the
// real ducha binary: two browsers in one call, bad links, a busy camera, a
// second window, and a server restart. The browser side is call.mjs (and
// large.mjs for a large room, large_test.go; joinbench.mjs, the join
// measurement, runs once as a smoke test, joinbench_test.go).
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// missing stops the test when a tool is absent: a failure in CI, where the
// tools are part of the contract, a skip on a developer machine.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; CI must provide it (see `make test`)", what)
	}
	t.Skipf("%s is missing; install it or run `make test`, which sets it up", what)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", wd, err)
	}
	return root
}

// requireBrowserTools checks for node, Chromium and playwright-core.
func requireBrowserTools(t *testing.T) (node string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing(t, chromiumPath+" (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		missing(t, "web/e2e/node_modules (npm ci --prefix web/e2e)")
	}
	return node
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// server is one ducha process; restart keeps its ports and data directory.
type server struct {
	t       *testing.T
	bin     string
	dataDir string
	args    []string
	base    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func buildDucha(t *testing.T, root, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ducha")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ducha")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ducha: %v\n%s", err, out)
	}
	return bin
}

// startServer runs `ducha serve` on free loopback ports; extra flags go last.
func startServer(t *testing.T, bin, dir string, extra ...string) *server {
	t.Helper()
	httpPort := freeTCPPort(t)
	s := &server{
		t:       t,
		bin:     bin,
		dataDir: filepath.Join(dir, "data"),
		base:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		logPath: filepath.Join(dir, "ducha.log"),
	}
	s.args = []string{"serve",
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--data-dir", s.dataDir,
		"--udp-port", fmt.Sprint(freeUDPPort(t)),
		"--tcp-port", fmt.Sprint(freeTCPPort(t)),
		"--include-loopback",
	}
	s.args = append(s.args, extra...)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("ducha log (%s):\n%s", s.logPath, tail(s.logPath, 60))
		}
	})
	s.start()
	return s
}

func (s *server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("start ducha: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	s.waitHealthy(60 * time.Second)
}

func (s *server) waitHealthy(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		res, err := client.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.done:
			s.t.Fatalf("ducha exited before becoming healthy:\n%s", tail(s.logPath, 40))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ducha not healthy after %s (last error %v):\n%s", timeout, err, tail(s.logPath, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends the process: SIGTERM, then SIGKILL if it lingers.
func (s *server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// token issues a join link with `ducha token`.
func (s *server) token(t *testing.T, room, identity, name, role, ttl string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "token", "--data-dir", s.dataDir, "--url", s.base,
		"--room", room, "--identity", identity, "--name", name, "--role", role, "--ttl", ttl)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ducha token: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	link := strings.TrimSpace(lines[0])
	if len(lines) != 1 || !strings.HasPrefix(link, s.base+"/join/") || !strings.Contains(link, "#t=") {
		t.Fatalf("ducha token printed %q, want one line %s/join/ROOM#t=TOKEN", out, s.base)
	}
	return link
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// forge flips one character inside the token's signature, keeping the link
// well-formed so the server, not the page, must reject it.
func forge(t *testing.T, link string) string {
	t.Helper()
	i := strings.Index(link, "#t=")
	tok := link[i+3:]
	dot := strings.LastIndex(tok, ".")
	if i < 0 || dot < 0 || len(tok)-dot < 12 {
		t.Fatalf("link %q does not carry a JWT", link)
	}
	pos := dot + (len(tok)-dot)/2 // middle of the signature: all six bits count
	b := []byte(tok)
	if b[pos] == 'A' {
		b[pos] = 'B'
	} else {
		b[pos] = 'A'
	}
	return link[:i+3] + string(b)
}

type result struct {
	OK         bool   `json:"ok"`
	Mode       string `json:"mode"`
	Step       string `json:"step"`
	Reason     string `json:"reason"`
	Steps      []struct{ Name string }
	PageErrors []string        `json:"pageErrors"`
	Supervisor *videoStats     `json:"supervisor"`
	County     *videoStats     `json:"county"`
	Observer   *videoStats     `json:"observer"`
	Simulcast  *simulcastStats `json:"simulcast"`
	Invalid    *struct{ Message string }
	Busy       *struct{ Media string }
	Replaced   *struct{ ErrorCode string }
	Reconnect  *struct{ Reconnects int }
	Large      *largeStats `json:"large"`
}

type videoStats struct {
	ID               string `json:"id"`
	FramesDecoded    int    `json:"framesDecoded"`
	FrameWidth       int    `json:"frameWidth"`
	FrameHeight      int    `json:"frameHeight"`
	TileVideoWidth   int    `json:"tileVideoWidth"`
	TileVideoHeight  int    `json:"tileVideoHeight"`
	GetUserMediaCall *int   `json:"getUserMediaCalls"`
}

// simulcastStats is what call.mjs saw of the layers: the county's camera
// shown in a small tile on the supervisor's page, then large again.
type simulcastStats struct {
	RidsSent            []string `json:"ridsSent"`
	BaselineFrameHeight int      `json:"baselineFrameHeight"`
	SmallFrameHeight    int      `json:"smallFrameHeight"`
	LargeFrameHeight    int      `json:"largeFrameHeight"`
}

// simulcastSizes are the camera layers (PROTOCOL.md): 1280x720 captured,
// sent at 1/4, 1/2 and full size.
var simulcastSizes = map[int]int{320: 180, 640: 360, 1280: 720}

// cameraLayer says whether w x h is one of the camera's simulcast layers.
func cameraLayer(w, h int) bool {
	want, ok := simulcastSizes[w]
	return ok && want == h
}

func (r *result) steps() []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

// browserRun is one `node call.mjs` process. Every stdout line is JSON:
// progress events first, the result last.
type browserRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan map[string]any
	res    chan result
	stderr *strings.Builder
}

func startBrowser(t *testing.T, node string, timeout time.Duration, args ...string) *browserRun {
	t.Helper()
	return startScript(t, node, "call.mjs", timeout, args...)
}

// startScript runs one browser script of this directory (call.mjs,
// large.mjs) that speaks the same stdout protocol.
func startScript(t *testing.T, node, script string, timeout time.Duration, args ...string) *browserRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := nodeCommand(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "DUCHA_STEP_TIMEOUT_MS=60000")
	if dir := os.Getenv("DUCHA_E2E_SCREENSHOTS"); dir != "" {
		cmd.Env = append(cmd.Env, "DUCHA_SCREENSHOTS="+dir)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browserRun{t: t, cmd: cmd, events: make(chan map[string]any, 8), res: make(chan result, 1), stderr: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: b.stderr}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node: %v", err)
	}
	exited := make(chan struct{})
	// A test that stops early must not leave node and Chromium running.
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("node %d did not exit", cmd.Process.Pid)
		}
	})
	go func() {
		defer close(exited)
		defer cancel()
		var last string
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			last = line
			var ev map[string]any
			if json.Unmarshal([]byte(line), &ev) == nil && ev["event"] != nil {
				b.events <- ev
			}
		}
		err := cmd.Wait()
		var r result
		if jerr := json.Unmarshal([]byte(last), &r); jerr != nil {
			r = result{Step: "node", Reason: fmt.Sprintf("no JSON result (exit: %v, last line %q)", err, last)}
		}
		b.res <- r
	}()
	return b
}

// nodeCommand runs node with args under ctx. Chromium runs in node's
// process group, and cancelling kills the group: a test that times out
// leaves no browser behind.
func nodeCommand(ctx context.Context, node string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// lockedWriter lets the test read stderr while node still writes it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (b *browserRun) wait() result {
	r := <-b.res
	if !r.OK {
		b.t.Logf("browser script stderr (tail):\n%s", tailString(b.stderr.String(), 40))
	}
	return r
}

// waitEvent waits for a progress line; it fails the test if the run ends first.
func (b *browserRun) waitEvent(name string, timeout time.Duration) {
	b.t.Helper()
	select {
	case ev := <-b.events:
		if ev["event"] != name {
			b.t.Fatalf("call.mjs said %v, want event %q", ev, name)
		}
	case r := <-b.res:
		b.res <- r
		b.t.Fatalf("call.mjs ended before %q: step %s: %s", name, r.Step, r.Reason)
	case <-time.After(timeout):
		b.t.Fatalf("no %q event from call.mjs within %s", name, timeout)
	}
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func runBrowser(t *testing.T, node string, args ...string) result {
	t.Helper()
	r := startBrowser(t, node, 8*time.Minute, args...).wait()
	if !r.OK {
		t.Fatalf("browser run failed at step %q: %s (page errors: %v)", r.Step, r.Reason, r.PageErrors)
	}
	return r
}

func requireSteps(t *testing.T, r result, want ...string) {
	t.Helper()
	got := strings.Join(r.steps(), ",")
	for _, w := range want {
		if !strings.Contains(","+got+",", ","+w+",") {
			t.Errorf("step %q did not run; steps: %s", w, got)
		}
	}
}

// TestPageModules runs the pure unit tests and the in-browser negotiation
// tests of the page modules; they need no ducha binary.
func TestPageModules(t *testing.T) {
	node := requireBrowserTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := nodeCommand(ctx, node, "--test", "unit.test.mjs", "simulcast.test.mjs", "slots.test.mjs", "peer.test.mjs")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0") {
		t.Fatalf("node --test ran no passing tests:\n%s", out)
	}
}

func TestBrowserCall(t *testing.T) {
	node := requireBrowserTools(t)
	root := repoRoot(t)
	dir := t.TempDir()
	srv := startServer(t, buildDucha(t, root, dir), dir)
	const room = "dc-e2e-1"

	t.Run("call", func(t *testing.T) {
		sup := srv.token(t, room, "sup-zhang", "张督查", "supervisor", "1h")
		county := srv.token(t, room, "county-chengguan", "城关县信访局", "county", "1h")
		obs := srv.token(t, room, "obs-li", "李观察", "observer", "1h")
		r := runBrowser(t, node, "--supervisor", sup, "--county", county, "--observer", obs)
		requireSteps(t, r, "supervisor-joined", "county-joined", "chinese-default", "media-both-ways", "observer-decodes",
			"tile-shows-county", "speaker-outlined", "simulcast-baseline", "simulcast-small-tile", "simulcast-layers-sent", "simulcast-large-tile",
			"county-mutes", "county-leaves")
		// Cameras send 1280x720 as three layers; which one a page gets is the
		// server's choice for its tile size and bandwidth.
		for name, v := range map[string]*videoStats{"supervisor": r.Supervisor, "county": r.County, "observer": r.Observer} {
			if v == nil || !cameraLayer(v.FrameWidth, v.FrameHeight) || v.FramesDecoded < 10 {
				t.Errorf("%s decoded %+v, want a camera layer (320x180, 640x360 or 1280x720) and growing frames", name, v)
			}
		}
		if v := r.Supervisor; v != nil && !cameraLayer(v.TileVideoWidth, v.TileVideoHeight) {
			t.Errorf("supervisor's tile of the county plays %dx%d, want a camera layer", v.TileVideoWidth, v.TileVideoHeight)
		}
		if s := r.Simulcast; s == nil {
			t.Error("no simulcast result")
		} else {
			t.Logf("simulcast: county sent %v; its tile on the supervisor's page received %d px high frames, %d when small, %d when large again",
				s.RidsSent, s.BaselineFrameHeight, s.SmallFrameHeight, s.LargeFrameHeight)
			if len(s.RidsSent) < 2 {
				t.Errorf("the county sent layers %v while watched small and large, want at least 2", s.RidsSent)
			}
			if s.SmallFrameHeight <= 0 || s.SmallFrameHeight > 360 || s.SmallFrameHeight >= s.BaselineFrameHeight {
				t.Errorf("a 160x90 tile received %d-pixel-high frames (%d before), want fewer and at most 360",
					s.SmallFrameHeight, s.BaselineFrameHeight)
			}
			if s.LargeFrameHeight < 360 || s.LargeFrameHeight <= s.SmallFrameHeight {
				t.Errorf("the tile at full size again received %d-pixel-high frames (%d while small), want at least 360",
					s.LargeFrameHeight, s.SmallFrameHeight)
			}
		}
		if r.Observer != nil && (r.Observer.GetUserMediaCall == nil || *r.Observer.GetUserMediaCall != 0) {
			t.Errorf("observer called getUserMedia: %v", r.Observer.GetUserMediaCall)
		}
	})

	t.Run("forged-token", func(t *testing.T) {
		link := forge(t, srv.token(t, room, "county-x", "某县", "county", "1h"))
		r := runBrowser(t, node, "--invalid", link)
		if r.Invalid == nil || r.Invalid.Message != "邀请链接无效或已过期，请联系督查人员重新获取" {
			t.Errorf("forged link showed %+v", r.Invalid)
		}
	})

	t.Run("expired-token", func(t *testing.T) {
		link := srv.token(t, room, "county-y", "某县", "county", "1s")
		time.Sleep(2500 * time.Millisecond) // exp has a one-second resolution
		r := runBrowser(t, node, "--invalid", link)
		if r.Invalid == nil || r.Invalid.Message != "邀请链接无效或已过期，请联系督查人员重新获取" {
			t.Errorf("expired link showed %+v", r.Invalid)
		}
	})

	t.Run("wrong-room", func(t *testing.T) {
		link := srv.token(t, room, "county-z", "某县", "county", "1h")
		other := strings.Replace(link, "/join/"+room+"#", "/join/"+room+"-other#", 1)
		if other == link {
			t.Fatalf("cannot rewrite the room of %q", link)
		}
		r := runBrowser(t, node, "--invalid", other)
		if r.Invalid == nil || r.Invalid.Message != "邀请链接无效或已过期，请联系督查人员重新获取" {
			t.Errorf("link for another room showed %+v", r.Invalid)
		}
	})

	t.Run("device-busy", func(t *testing.T) {
		r := runBrowser(t, node, "--busy", srv.token(t, room, "county-busy", "忙县", "county", "1h"))
		if r.Busy == nil || r.Busy.Media != "declined" {
			t.Errorf("busy camera: %+v", r.Busy)
		}
	})

	t.Run("replaced", func(t *testing.T) {
		r := runBrowser(t, node, "--replaced", srv.token(t, room, "county-twice", "两窗县", "county", "1h"))
		if r.Replaced == nil || r.Replaced.ErrorCode != "replaced" {
			t.Errorf("second window: %+v", r.Replaced)
		}
	})

	// Last: it restarts the server.
	t.Run("reconnect", func(t *testing.T) {
		b := startBrowser(t, node, 8*time.Minute, "--reconnect", srv.token(t, room, "county-flaky", "断网县", "county", "1h"))
		b.waitEvent("ready", 3*time.Minute)
		srv.stop()
		b.waitEvent("dropped", 2*time.Minute)
		srv.start()
		r := b.wait()
		if !r.OK {
			t.Fatalf("reconnect failed at step %q: %s", r.Step, r.Reason)
		}
		if r.Reconnect == nil || r.Reconnect.Reconnects < 1 {
			t.Errorf("reconnect result %+v", r.Reconnect)
		}
	})
}
