package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
	"github.com/ducha-dev/ducha/signaling/token"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// duchaBinary builds the server once per test binary.
func duchaBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ducha-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ducha")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess runs `ducha serve` as its own process and waits for /healthz.
func startProcess(t *testing.T, dataDir string, port int, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"serve", "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", dataDir,
		"--udp-port", "0", "--tcp-port", "-1", "--include-loopback", "--log-level", "warn",
		"--retention-mode", "GOVERNANCE", "--retention-days", "1"}, extra...)
	cmd := exec.Command(duchaBinary(t), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ducha did not become healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The server is killed with SIGKILL in the middle of a recorded call and
// started again: what reached the spool is uploaded, at most about a second
// is lost, and the signed manifest records the gap.
func TestKilledMidRecording(t *testing.T) {
	ivf, ogg := encodeClip(t, 8)
	dir := t.TempDir()
	port := freePort(t)
	proc := startProcess(t, dir, port, "--segment", "2s")
	key, err := token.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(identity, role string) *client.Client {
		tok, err := token.NewIssuer(key, time.Now).Issue(token.Claims{Room: "crash-room", Identity: identity,
			Name: identity, Role: role, ExpiresAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{URL: fmt.Sprintf("ws://127.0.0.1:%d/ws", port), Room: "crash-room",
			Token: tok, API: api})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	pub := dial("sup1", sfu.RoleSupervisor)
	dial("county-1", sfu.RoleCounty)
	publishClip(t, pub, ivf, ogg)
	time.Sleep(5 * time.Second) // two segments closed, the third unfinished
	killedAt := time.Now()
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = proc.Process.Wait()

	startProcess(t, dir, port)
	arch, err := archive.NewDir(archive.DefaultDirRoot(dir))
	if err != nil {
		t.Fatal(err)
	}
	recID := waitSealed(t, arch, 60*time.Second, "the recovered recording's manifest in the archive")
	rep := verifyIntact(t, dir, arch, recID, "after the crash")
	if rep.Segments < 2 {
		t.Fatalf("segments = %d: want the closed one(s) and the recovered unfinished one", rep.Segments)
	}
	if len(rep.Gaps) == 0 {
		t.Fatal("the manifest does not say where the gap is")
	}
	g := rep.Gaps[0]
	if lost := killedAt.Sub(g.Start); lost > 2*time.Second || lost < -time.Second {
		t.Fatalf("gap starts %v before the kill; want at most about a second", lost)
	}
	if g.End.Before(killedAt) {
		t.Fatalf("gap ends at %v, before the kill at %v", g.End, killedAt)
	}

	// Audio counts: the segments closed before the kill were spooled with
	// theirs and keep them; the unfinished one recovered from its file has
	// none (they died with the muxer), never a made-up 0. The recovered
	// segment is the one the gap starts at: the last segment of the gap's
	// track before it in the chain, ending where the gap starts.
	m := readManifest(t, arch, recID)
	recovered := -1
	for i, e := range m.Segments {
		if e.Participant == g.Participant && e.Source == g.Source && e.Index < g.Index &&
			(recovered < 0 || e.Index > m.Segments[recovered].Index) {
			recovered = i
		}
	}
	if recovered < 0 || !m.Segments[recovered].End.Equal(g.Start) {
		t.Fatalf("no recovered segment ending where the gap starts (%v): segments %+v", g.Start, m.Segments)
	}
	counted := 0
	for i, e := range m.Segments {
		t.Logf("segment %d seq %d codecs %v: audio %s", e.Index, e.Seq, e.Codecs, countsString(e))
		if i == recovered {
			if e.AudioFrames != nil || e.AudioFramesFilled != nil {
				t.Errorf("recovered segment %d (seq %d): audio counts %s, want unknown (absent)", e.Index, e.Seq, countsString(e))
			}
			continue
		}
		if e.Index > g.Index {
			continue // recorded after the restart (none expected: the clients did not come back)
		}
		checkCounted(t, e)
		if slices.Contains(e.Codecs, "opus") {
			counted++
		}
	}
	if counted == 0 {
		t.Errorf("no segment with audio was closed before the kill: segments %+v", m.Segments)
	}
	if len(rep.Audio) != 1 || rep.Audio[0].Uncounted != 1 {
		t.Errorf("verify report audio %+v, want one track with one uncounted segment", rep.Audio)
	}
}
