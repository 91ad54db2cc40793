package filestore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// The test binary doubles as the child process of the multi-process tests:
// with helperEnv set it runs one of the helpers below instead of the tests.
const helperEnv = "FILESTORE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "append":
		os.Exit(helperAppend(os.Getenv("FILESTORE_TEST_DIR")))
	case "open":
		os.Exit(helperOpen(os.Getenv("FILESTORE_TEST_DIR")))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperAppend creates a session and appends events until killed, printing
// each event once AppendEvent has returned (acknowledged).
func helperAppend(dir string) int {
	s, err := Open(dir, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sess, err := s.CreateSession(c, rooms.NewSession("kill", "c", "sup", t0, t0.Add(time.Hour), nil, t0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "session", sess.ID)
	for i := 0; ; i++ {
		e, err := s.AppendEvent(c, rooms.Event{SessionID: sess.ID, Actor: "a", Type: rooms.EventChat,
			Data: map[string]string{rooms.DataText: strings.Repeat("证", i%50)}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(w, "ack", e.Seq, e.ID)
		w.Flush()
	}
}

// helperOpen tries to open dir and prints the error.
func helperOpen(dir string) int {
	s, err := Open(dir, nil, nil)
	if err != nil {
		fmt.Println(err)
		if errors.Is(err, ErrLocked) {
			return 3
		}
		return 1
	}
	s.Close()
	return 0
}

func helper(t *testing.T, name, dir string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name, "FILESTORE_TEST_DIR="+dir)
	return cmd
}

// TestKilledProcess kills a writing process with SIGKILL: every event it
// was told was stored is there after a restart, with its Seq, and the lock
// died with the process.
func TestKilledProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := helper(t, "append", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var sessionID string
	acked := map[int64]string{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(60 * time.Second)
	for len(acked) < 300 && sc.Scan() {
		if time.Now().After(deadline) {
			t.Fatalf("only %d acks in 60s", len(acked))
		}
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "session":
			sessionID = f[1]
		case len(f) == 3 && f[0] == "ack":
			seq, _ := strconv.ParseInt(f[1], 10, 64)
			acked[seq] = f[2]
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	// Acks printed after we stopped reading still count: drain them.
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ack" {
			seq, _ := strconv.ParseInt(f[1], 10, 64)
			acked[seq] = f[2]
		}
	}
	if sessionID == "" || len(acked) < 300 {
		t.Fatalf("child gave session %q and %d acks; stderr: %s", sessionID, len(acked), stderr.String())
	}

	s := mustOpen(t, dir) // also proves the lock went with the process
	defer mustClose(t, s)
	evs, err := s.ListEvents(ctx(t), sessionID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < len(acked) {
		t.Fatalf("%d events after the kill, %d were acknowledged", len(evs), len(acked))
	}
	for _, e := range evs {
		if id, ok := acked[e.Seq]; ok && id != e.ID {
			t.Fatalf("seq %d holds %s, acknowledged as %s", e.Seq, e.ID, id)
		}
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	_, err := Open(dir, nil, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	for _, want := range []string{"数据目录正被运行中的 ducha 服务使用", "in use by a running ducha server", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}

	// Another process, like `ducha user add` beside a running server.
	cmd := helper(t, "open", dir)
	out, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("other process exit %d, output %q", code, out)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(string(out), want) {
		t.Fatalf("other process was told %q, without %q", out, want)
	}

	mustClose(t, s)
	cmd = helper(t, "open", dir)
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("open after close in another process: %v %q", err, out)
	}
	mustClose(t, mustOpen(t, dir))
}

// journalLines writes a session and n events, closes, and returns the
// journal path and its lines (with their newlines).
func journalLines(t *testing.T, dir string, n int) (string, []string, string) {
	t.Helper()
	s := mustOpen(t, dir)
	c := ctx(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sess, err := s.CreateSession(c, rooms.NewSession("torn", "c", "sup", t0, t0.Add(time.Hour), nil, t0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.AppendEvent(c, rooms.Event{SessionID: sess.ID, Actor: "a", Type: rooms.EventChat,
			Data: map[string]string{rooms.DataText: fmt.Sprintf("第%d条", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, s)
	gens, err := listJournals(dir)
	if err != nil || len(gens) != 1 {
		t.Fatalf("journals: %v, %v", gens, err)
	}
	path := filepath.Join(dir, journalName(gens[0]))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != n+1 {
		t.Fatalf("%d journal lines, want %d", len(lines), n+1)
	}
	return path, lines, sess.ID
}

// TestTornJournal cuts the journal in the middle of every line in turn, as
// a crash during a write would leave it: every record before the cut is
// kept, the cut bytes are kept aside, a warning is logged, and the store
// carries on from there.
func TestTornJournal(t *testing.T) {
	const n = 12
	src := t.TempDir()
	path, lines, sessionID := journalLines(t, src, n)
	for cut := range lines {
		t.Run(fmt.Sprintf("line%d", cut+1), func(t *testing.T) {
			dir := t.TempDir()
			jp := filepath.Join(dir, filepath.Base(path))
			kept := strings.Join(lines[:cut], "")
			torn := lines[cut][:len(lines[cut])/2]
			if err := os.WriteFile(jp, []byte(kept+torn), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			s, err := Open(dir, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "interrupted write") {
				t.Fatalf("no warning about the torn line; log:\n%s", logs.String())
			}
			aside, err := os.ReadFile(fmt.Sprintf("%s.torn-%d", jp, len(kept)))
			if err != nil || string(aside) != torn {
				t.Fatalf("torn bytes kept aside: %q, %v", aside, err)
			}
			c := ctx(t)
			_, serr := s.GetSession(c, sessionID)
			if cut == 0 {
				if !errors.Is(serr, rooms.ErrNotFound) {
					t.Fatalf("session whose record was torn: %v", serr)
				}
				mustClose(t, s)
				return
			}
			if serr != nil {
				t.Fatal(serr)
			}
			evs, _ := s.ListEvents(c, sessionID, 0, 0)
			if len(evs) != cut-1 {
				t.Fatalf("%d events kept, want %d", len(evs), cut-1)
			}
			e, err := s.AppendEvent(c, rooms.Event{SessionID: sessionID, Actor: "a", Type: rooms.EventChat})
			if err != nil || e.Seq != int64(cut) {
				t.Fatalf("append after recovery: %+v, %v", e, err)
			}
			mustClose(t, s)
			// The cut journal was repaired: the next start is clean.
			logs = logBuffer{}
			s, err = Open(dir, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, s)
			if strings.Contains(logs.String(), "interrupted write") {
				t.Fatalf("warned again after repair:\n%s", logs.String())
			}
			if evs, _ := s.ListEvents(c, sessionID, 0, 0); len(evs) != cut {
				t.Fatalf("%d events on the second start, want %d", len(evs), cut)
			}
		})
	}
}

// TestDamagedJournal refuses to start on damage a crash does not explain,
// naming the file and line, instead of silently dropping history.
func TestDamagedJournal(t *testing.T) {
	src := t.TempDir()
	path, lines, _ := journalLines(t, src, 6)
	cases := []struct {
		name  string
		edit  func([]string) []string
		wants string
	}{
		{"garbage in the middle", func(l []string) []string {
			l[3] = strings.Repeat("x", len(l[3])-1) + "\n"
			return l
		}, "line 4"},
		{"line missing", func(l []string) []string { return append(l[:3:3], l[4:]...) }, "line 4 holds record 5, want 4"},
		{"line repeated", func(l []string) []string { return append(l[:4:4], l[3:]...) }, "line 5 holds record 4, want 5"},
		{"zeros then records", func(l []string) []string {
			l[2] = strings.Repeat("\x00", len(l[2]))
			return l
		}, "line 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jp := filepath.Join(dir, filepath.Base(path))
			edited := tc.edit(append([]string(nil), lines...))
			if err := os.WriteFile(jp, []byte(strings.Join(edited, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, nil, testLogger(t))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.wants) || !strings.Contains(err.Error(), jp) {
				t.Fatalf("open: %v; want ErrCorrupt naming %s and %q", err, jp, tc.wants)
			}
			// The refusal released the lock.
			if _, err := Open(dir, nil, nil); errors.Is(err, ErrLocked) {
				t.Fatal("a failed open kept the lock")
			}
		})
	}

	t.Run("torn tail in an older journal", func(t *testing.T) {
		dir := t.TempDir()
		older := filepath.Join(dir, journalName(1))
		newer := filepath.Join(dir, journalName(2))
		if err := os.WriteFile(older, []byte(strings.Join(lines[:3], "")+lines[3][:10]), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(newer, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, nil, testLogger(t))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), older) {
			t.Fatalf("open: %v", err)
		}
	})
}

// TestInterruptedCompaction leaves what a crash in the middle of a
// compaction leaves (the old journals still there, a half-written
// temporary snapshot) and checks the restart sees the same state and
// tidies up.
func TestInterruptedCompaction(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	workload(t, s, "a", 2)
	gens, _ := listJournals(dir)
	old := map[string][]byte{}
	for _, g := range gens {
		p := filepath.Join(dir, journalName(g))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		old[p] = b
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	workload(t, s, "b", 1)
	want := dump(t, s)
	mustClose(t, s)

	for p, b := range old {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s not removed by compaction", p)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, snapshotTmp), []byte(`{"format":1,"jour`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	defer mustClose(t, s)
	sameState(t, want, dump(t, s))
	for p := range old {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("covered journal %s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotTmp)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary snapshot still there: %v", err)
	}
}

// TestDamagedSnapshot refuses a snapshot that does not decode or comes from
// an unknown format.
func TestDamagedSnapshot(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":      `{"format":1,"journal":3,"sessions":[{"id":"x"`,
		"unknown format": `{"format":99,"journal":3}`,
		"no generation":  `{"format":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, snapshotName), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(dir, nil, testLogger(t)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: %v", err)
			}
		})
	}
}
