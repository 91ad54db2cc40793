package e2e

// The auditor's replay of issue 5 in real Chromium against the real ducha
// binary: a three-party supervision session is recorded (Pion publishers
// sending real VP8 and Opus made by ffmpeg), then an auditor signs in on the
// replay page, finds it by case number, plays it, seeks, checks every tile
// against the timeline, sees it intact, and after a segment is altered on
// disk sees the badge turn red naming it. The browser side is replay.mjs.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/signaling/client"
	"github.com/ducha-dev/ducha/signaling/client/cliptest"
)

const replayPassword = "replay-pass-2026"

// replayAPI is a signed-in console client that can also POST (CSRF).
type replayAPI struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func replaySignIn(t *testing.T, base, user string) *replayAPI {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &replayAPI{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 2 * time.Minute}}
	var r struct {
		CSRFToken string `json:"csrfToken"`
	}
	a.call("POST", "/api/v1/auth/login", map[string]string{"username": user, "password": replayPassword}, &r)
	a.csrf = r.CSRFToken
	return a
}

// call sends a JSON request and decodes a 2xx answer into out.
func (a *replayAPI) call(method, path string, body, out any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	res, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		a.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func startReplayServer(t *testing.T, bin, dataDir, dir string) string {
	t.Helper()
	port := freeTCPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(dir, "ducha-replay.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dataDir,
		"--udp-port", strconv.Itoa(freeUDPPort(t)), "--tcp-port", "-1", "--include-loopback",
		"--segment", "4s", "--retention-mode", "GOVERNANCE", "--retention-days", "1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start ducha: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ducha log (%s):\n%s", logPath, tail(logPath, 80))
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if res, err := hc.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-done:
			t.Fatalf("ducha exited:\n%s", tail(logPath, 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ducha not healthy after 60 s:\n%s", tail(logPath, 40))
		}
	}
}

// replayClip encodes a 640x480 VP8 test pattern and an Opus tone.
func dialLink(t *testing.T, base, link string) *client.Client {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	room := strings.TrimPrefix(u.Path, "/join/")
	tok := strings.TrimPrefix(u.Fragment, "t=")
	api, err := client.NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: "ws" + strings.TrimPrefix(base, "http") + "/ws", Room: room, Token: tok, API: api})
	if err != nil {
		t.Fatalf("join %s: %v", link, err)
	}
	t.Cleanup(c.Close)
	return c
}

type replayRun struct {
	OK         bool     `json:"ok"`
	Step       string   `json:"step"`
	Reason     string   `json:"reason"`
	PageErrors []string `json:"pageErrors"`
	Steps      []struct{ Name string }
	Recording  string `json:"recording"`
	Badge      struct {
		Result, Text, Tone string
	} `json:"badge"`
	Events   []string        `json:"events"`
	Start    json.RawMessage `json:"start"`
	Middle   json.RawMessage `json:"middle"`
	Event    json.RawMessage `json:"event"`
	Presence json.RawMessage `json:"presence"`
	Speed    json.RawMessage `json:"speed"`
}

func runReplayPage(t *testing.T, node, base, user, caseNo, phase string) replayRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := nodeCommand(ctx, node, "replay.mjs", "--base", base, "--username", user, "--case", caseNo, "--phase", phase)
	cmd.Env = append(os.Environ(), "DUCHA_PASSWORD="+replayPassword, "DUCHA_STEP_TIMEOUT_MS=60000")
	if dir := os.Getenv("DUCHA_E2E_SCREENSHOTS"); dir != "" {
		cmd.Env = append(cmd.Env, "DUCHA_SCREENSHOTS="+dir)
	}
	var stdout bytes.Buffer
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var r replayRun
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &r); jerr != nil {
		r = replayRun{Step: "node", Reason: fmt.Sprintf("no JSON result (exit: %v): %q", err, stdout.String())}
	}
	if !r.OK {
		t.Logf("replay.mjs stderr (tail):\n%s", tailString(stderr.String(), 60))
		t.Fatalf("replay page (%s) failed at step %q: %s (page errors: %v)", phase, r.Step, r.Reason, r.PageErrors)
	}
	return r
}

func TestAuditorReplay(t *testing.T) {
	node := requireBrowserTools(t)
	ivf, ogg := cliptest.Encode(t, 14)
	root := repoRoot(t)
	dir := t.TempDir()
	bin := buildDucha(t, root, dir)
	dataDir := filepath.Join(dir, "data")
	addAccount(t, bin, dataDir, "sup.replay", "钱督查", "supervisor", replayPassword)
	addAccount(t, bin, dataDir, "sup.other", "孙督查", "supervisor", replayPassword)
	addAccount(t, bin, dataDir, "audit.replay", "赵审计", "auditor", replayPassword)
	addAccount(t, bin, dataDir, "admin.replay", "管理员", "admin", replayPassword)
	base := startReplayServer(t, bin, dataDir, dir)
	requireReplayWired(t, base)

	// The supervisor schedules and opens a session with two county offices.
	sup := replaySignIn(t, base, "sup.replay")
	caseNo := fmt.Sprintf("晋信2026-R%d", time.Now().UnixNano()%100000)
	now := time.Now()
	var sess struct{ ID string }
	sup.call("POST", "/api/v1/sessions", map[string]any{
		"title": "欠薪信访件视频督查", "caseNumber": caseNo,
		"scheduledStart": now.Add(time.Minute).Format(time.RFC3339), "scheduledEnd": now.Add(time.Hour).Format(time.RFC3339),
		"invitedUnits": []map[string]string{{"code": "140105", "name": "小店区信访局"}, {"code": "140106", "name": "迎泽区信访局"}},
	}, &sess)
	var invs struct {
		Invitations []struct{ UnitCode, URL string } `json:"invitations"`
	}
	sup.call("POST", "/api/v1/sessions/"+sess.ID+"/invitations", nil, &invs)
	links := map[string]string{}
	for _, inv := range invs.Invitations {
		links[inv.UnitCode] = inv.URL
	}
	var jl struct{ URL string }
	sup.call("GET", "/api/v1/sessions/"+sess.ID+"/join-link", nil, &jl)
	sup.call("POST", "/api/v1/sessions/"+sess.ID+"/moderation", map[string]string{"action": "open-lobby"}, nil)
	sup.call("POST", "/api/v1/sessions/"+sess.ID+"/moderation", map[string]string{"action": "start"}, nil)

	// Three publishers; the second county leaves halfway.
	s := dialLink(t, base, jl.URL)
	a := dialLink(t, base, links["140105"])
	b := dialLink(t, base, links["140106"])
	stop := make(chan struct{})
	defer close(stop)
	var dones []<-chan struct{}
	for _, c := range []*client.Client{s, a, b} {
		dones = append(dones, cliptest.Publish(t, c, ivf, ogg, stop))
	}
	time.Sleep(3 * time.Second)
	if err := a.Chat("已按期办结，请审阅"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	sup.call("POST", "/api/v1/sessions/"+sess.ID+"/moderation", map[string]string{"action": "mute", "target": a.Self().ID}, nil)
	time.Sleep(2 * time.Second)
	b.Close()
	for _, d := range dones[:2] {
		select {
		case <-d:
		case <-time.After(90 * time.Second):
			t.Fatal("clips did not finish")
		}
	}
	time.Sleep(time.Second) // the jitter buffer's hold, then the last packets
	sup.call("POST", "/api/v1/sessions/"+sess.ID+"/moderation", map[string]string{"action": "end"}, nil)
	s.Close()
	a.Close()

	// The sealed recording shows up in the index, verified.
	aud := replaySignIn(t, base, "audit.replay")
	type entry struct {
		ID           string
		Verification *struct{ Result string }
		Participants []struct{ ID, Name string }
	}
	var found struct{ Recordings []entry }
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		aud.call("GET", "/api/v1/recordings?case="+url.QueryEscape(caseNo), nil, &found)
		if len(found.Recordings) == 1 && found.Recordings[0].Verification != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recording was not indexed and verified: %+v", found)
		}
	}
	rec := found.Recordings[0]
	if rec.ID != sess.ID || rec.Verification.Result != "intact" || len(rec.Participants) != 3 {
		t.Fatalf("indexed recording %+v", rec)
	}

	// Another supervisor may not see it.
	other := replaySignIn(t, base, "sup.other")
	req, _ := http.NewRequest("GET", base+"/api/v1/recordings/"+sess.ID, nil)
	if res, err := other.c.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("another supervisor asking for the recording: %v %v", res.StatusCode, err)
	}

	r := runReplayPage(t, node, base, "audit.replay", caseNo, "play")
	t.Logf("replay: start %s; middle %s; event %s; 2x %s; presence at the end %s", r.Start, r.Middle, r.Event, r.Speed, r.Presence)
	for _, want := range []string{"join", "chat", "mute", "leave"} {
		if !strings.Contains(strings.Join(r.Events, ","), want) {
			t.Errorf("the page's event list lacks %s: %v", want, r.Events)
		}
	}

	// The access log has the auditor's search, replay, verification and
	// segment fetches, with where they came from.
	adm := replaySignIn(t, base, "admin.replay")
	var log struct {
		Entries []struct {
			Username, Action, Outcome, Recording, Remote string
		}
	}
	adm.call("GET", "/api/v1/access-log", nil, &log)
	seen := map[string]int{}
	for _, e := range log.Entries {
		if e.Username == "audit.replay" && e.Outcome == "granted" && strings.HasPrefix(e.Remote, "127.0.0.1:") {
			seen[e.Action]++
		}
		if e.Username == "sup.other" && e.Outcome == "denied" && e.Recording == sess.ID {
			seen["denied"]++
		}
	}
	for _, want := range []string{"search", "replay", "verify", "segment", "denied"} {
		if seen[want] == 0 {
			t.Errorf("access log lacks %s: %v", want, seen)
		}
	}

	// Alter the second segment of the first county office on disk.
	var detail struct {
		Participants []struct {
			ID, Name string
			Tracks   []struct {
				Segments []struct{ Key string }
			}
		}
	}
	aud.call("GET", "/api/v1/recordings/"+sess.ID, nil, &detail)
	var victim, victimName string
	for _, p := range detail.Participants {
		if p.ID == a.Self().ID && len(p.Tracks) > 0 && len(p.Tracks[0].Segments) > 1 {
			victim, victimName = p.Tracks[0].Segments[1].Key, p.Name
		}
	}
	if victim == "" {
		t.Fatalf("no second segment of %s in %+v", a.Self().ID, detail)
	}
	alterArchived(t, dataDir, victim)
	r = runReplayPage(t, node, base, "audit.replay", caseNo, "tampered")
	if !strings.Contains(r.Badge.Text, victimName) || !strings.Contains(r.Badge.Text, filepath.Base(victim)) {
		t.Errorf("the red badge does not name %s (%s): %q", victimName, victim, r.Badge.Text)
	}
}

// requireReplayWired fails at once, saying why, when the binary serves no
// replay API (recording/replay not wired into cmd/ducha).
func requireReplayWired(t *testing.T, base string) {
	t.Helper()
	aud := replaySignIn(t, base, "audit.replay")
	res, err := aud.c.Get(base + "/api/v1/recordings")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		t.Fatal("GET /api/v1/recordings answers 404: this ducha binary does not wire recording/replay " +
			"(replay.New, WatchSeals on the uploader's archive, Run, and httpapi.Config.Replay; see recording/replay/API.md)")
	}
}

// TestReplayModules runs the node unit tests of the replay page's modules.
func TestReplayModules(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", "replay.test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0") {
		t.Fatalf("node --test ran no passing tests:\n%s", out)
	}
}

// alterArchived flips a byte in the stored file of key in the data
// directory's archive (each key is a directory "<key>@v" of versions).
func alterArchived(t *testing.T, dataDir, key string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dataDir, "archive", filepath.FromSlash(key)+"@v", "*"))
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || fi.IsDir() || strings.HasSuffix(m, ".meta") || fi.Size() < 100 {
			continue
		}
		if err := os.Chmod(m, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(m, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no stored file of %s", key)
}
