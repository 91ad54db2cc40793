package e2e

// The supervision story of issue 3 in real Chromium against the real ducha
// binary: console sign-in, scheduling, links, lobby, admission, video both
// ways, moderation, chat, removal, a refused link, the end of the session and
// the attendance report. The browser side is story.mjs; this file builds and
// runs the server, then checks the API's own record of what happened.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	storyUser     = "sup1"
	storyPassword = "story-pass-2026"
	storyUnitA    = "140105"
	storyUnitB    = "140106"
)

// addAccount creates a console account with `ducha user add`. It must run
// before the server starts: the server locks the data directory.
func addAccount(t *testing.T, bin, dataDir, username, name, role, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "user", "--data-dir", dataDir, "add",
		"--username", username, "--name", name, "--role", role, "--password-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ducha user add: %v\n%s", err, out)
	}
}

// storyServer is one `ducha serve` on free loopback ports, without ICE-TCP.
type storyServer struct {
	base    string
	logPath string
}

func startStoryServer(t *testing.T, bin, dataDir, dir string) *storyServer {
	t.Helper()
	port := freeTCPPort(t)
	s := &storyServer{base: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(dir, "ducha-story.log")}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve",
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", dataDir,
		"--udp-port", fmt.Sprint(freeUDPPort(t)),
		"--tcp-port", "-1",
		"--include-loopback")
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
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("ducha log (%s):\n%s", s.logPath, tail(s.logPath, 80))
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := client.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-done:
			t.Fatalf("ducha exited before becoming healthy:\n%s", tail(s.logPath, 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ducha not healthy after 60s (last error %v):\n%s", err, tail(s.logPath, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type storyResult struct {
	OK         bool     `json:"ok"`
	Step       string   `json:"step"`
	Reason     string   `json:"reason"`
	PageErrors []string `json:"pageErrors"`
	Steps      []struct{ Name string }
	SessionID  string            `json:"sessionId"`
	Links      map[string]string `json:"links"`
	Supervisor *videoStats       `json:"supervisor"`
	County     *videoStats       `json:"county"`
	Refused    *struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	} `json:"refused"`
	Ended *struct {
		ErrorCode string `json:"errorCode"`
	} `json:"ended"`
	Report *struct {
		Rows []struct{ Unit, Status string }
	} `json:"report"`
}

func runStory(t *testing.T, node, base string) storyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := nodeCommand(ctx, node, "story.mjs", "--base", base, "--username", storyUser)
	// The password goes through the environment, not the command line that
	// any local user can read in ps.
	cmd.Env = append(os.Environ(), "DUCHA_PASSWORD="+storyPassword, "DUCHA_STEP_TIMEOUT_MS=60000")
	if dir := os.Getenv("DUCHA_E2E_SCREENSHOTS"); dir != "" {
		cmd.Env = append(cmd.Env, "DUCHA_SCREENSHOTS="+dir)
	}
	var stdout bytes.Buffer
	var stderr strings.Builder // read only after Run: node is gone by then
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var r storyResult
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &r); jerr != nil {
		r = storyResult{Step: "node", Reason: fmt.Sprintf("no JSON result (exit: %v): %q", err, stdout.String())}
	}
	if !r.OK {
		t.Logf("story.mjs stderr (tail):\n%s", tailString(stderr.String(), 60))
		t.Fatalf("story failed at step %q: %s (page errors: %v)", r.Step, r.Reason, r.PageErrors)
	}
	return r
}

func TestSupervisionStory(t *testing.T) {
	node := requireBrowserTools(t)
	root := repoRoot(t)
	dir := t.TempDir()
	bin := buildDucha(t, root, dir)
	dataDir := filepath.Join(dir, "data")
	addAccount(t, bin, dataDir, storyUser, "张督查", "supervisor", storyPassword)
	srv := startStoryServer(t, bin, dataDir, dir)

	r := runStory(t, node, srv.base)
	requireStorySteps(t, r, "sign-in", "schedule", "invite", "open-lobby", "supervisor-joins", "county-waits-in-lobby",
		"supervisor-sees-lobby", "admit", "media-both-ways", "recording-dot", "start", "overview", "mute-from-console",
		"unmute-from-call-page", "chat", "remove", "removed-stays-out", "link-refused", "end", "attendance-panel", "report-page")
	for name, v := range map[string]*videoStats{"supervisor": r.Supervisor, "county A": r.County} {
		if v == nil || v.FrameWidth != 640 || v.FramesDecoded < 10 {
			t.Errorf("%s decoded %+v, want 640 px wide and growing frames", name, v)
		}
	}
	if r.Refused == nil || r.Refused.ErrorCode != "invitation_revoked" {
		t.Errorf("reopened link of the removed unit: %+v, want invitation_revoked", r.Refused)
	}
	if r.Ended == nil || r.Ended.ErrorCode != "session_ended" {
		t.Errorf("supervisor's call page at the end: %+v, want session_ended", r.Ended)
	}
	if r.SessionID == "" || !strings.Contains(r.Links[storyUnitA], "/join/"+r.SessionID+"#t=") {
		t.Fatalf("session %q, links %v", r.SessionID, r.Links)
	}

	api := signIn(t, srv.base, storyUser, storyPassword)
	var att struct {
		SessionStatus string `json:"sessionStatus"`
		Units         []struct {
			Unit           struct{ Code string }
			Status         string `json:"status"`
			FirstArrival   string `json:"firstArrival"`
			PresentSeconds int    `json:"presentSeconds"`
			Removed        bool   `json:"removed"`
			Connected      bool   `json:"connected"`
		} `json:"units"`
		Summary map[string]int `json:"summary"`
	}
	api.get(t, "/api/v1/sessions/"+r.SessionID+"/attendance", &att)
	if att.SessionStatus != "ended" || len(att.Units) != 2 {
		t.Fatalf("attendance %+v", att)
	}
	a, b := att.Units[0], att.Units[1]
	if a.Unit.Code != storyUnitA || a.Status != "on_time" || a.FirstArrival == "" || !a.Removed || a.Connected || a.PresentSeconds < 1 {
		t.Errorf("unit A attendance %+v, want on time, arrived, present, removed", a)
	}
	if b.Unit.Code != storyUnitB || b.Status != "absent" || b.FirstArrival != "" || b.PresentSeconds != 0 || b.Removed {
		t.Errorf("unit B attendance %+v, want absent", b)
	}
	if att.Summary["on_time"] != 1 || att.Summary["absent"] != 1 {
		t.Errorf("summary %v", att.Summary)
	}

	// The event log is the evidence of the story: every step is in it.
	var ev struct {
		Events []struct {
			Type string            `json:"type"`
			Data map[string]string `json:"data"`
		} `json:"events"`
	}
	api.get(t, "/api/v1/sessions/"+r.SessionID+"/events?limit=1000", &ev)
	seen := map[string]bool{}
	for _, e := range ev.Events {
		seen[e.Type] = true
	}
	for _, want := range []string{"invite", "lobby_open", "lobby_enter", "admit", "join", "session_start", "mute", "unmute",
		"chat", "remove", "session_end"} {
		if !seen[want] {
			t.Errorf("event log lacks %q: %v", want, seen)
		}
	}

	var invs struct {
		Invitations []struct{ UnitCode, Status string } `json:"invitations"`
	}
	api.get(t, "/api/v1/sessions/"+r.SessionID+"/invitations", &invs)
	for _, inv := range invs.Invitations {
		if inv.UnitCode == storyUnitA && inv.Status != "revoked" {
			t.Errorf("unit A's invitation is %q after the removal, want revoked", inv.Status)
		}
	}
}

func requireStorySteps(t *testing.T, r storyResult, want ...string) {
	t.Helper()
	got := map[string]bool{}
	for _, s := range r.Steps {
		got[s.Name] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("step %q did not run", w)
		}
	}
}

type apiClient struct {
	base string
	c    *http.Client
}

func signIn(t *testing.T, base, user, password string) *apiClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &apiClient{base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	res, err := a.c.Post(base+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("sign in: %d %s", res.StatusCode, b)
	}
	return a
}

func (a *apiClient) get(t *testing.T, path string, into any) {
	t.Helper()
	res, err := a.c.Get(a.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// TestConsoleModules runs the node unit tests of the console's modules.
func TestConsoleModules(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test", "story_console.test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") || strings.Contains(string(out), "# pass 0") {
		t.Fatalf("node --test ran no passing tests:\n%s", out)
	}
}
