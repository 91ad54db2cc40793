package evidence_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// t0 is the server-clock start of every test session.
func t0() time.Time { return time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC) }

// fakeClock never sleeps: After records the wait, runs the hook (the test's
// window to look at the uploader while it is "sleeping") and fires at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	hook   func(d time.Duration)
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	hook, now := c.hook, c.now
	c.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// flakyArchive wraps a real archive and fails Puts on demand.
type flakyArchive struct {
	archive.Archive
	mu       sync.Mutex
	failNext int // fail this many Puts
	allow    int // when >= 0, only this many more Puts succeed
	puts     []string
	err      error // the failure returned
}

func newFlaky(a archive.Archive) *flakyArchive {
	return &flakyArchive{Archive: a, allow: -1, err: errors.New("archive unreachable (injected)")}
}

func (f *flakyArchive) Put(ctx context.Context, req archive.PutRequest) (archive.ObjectInfo, error) {
	f.mu.Lock()
	if f.failNext > 0 || f.allow == 0 {
		if f.failNext > 0 {
			f.failNext--
		}
		f.mu.Unlock()
		return archive.ObjectInfo{}, f.err
	}
	if f.allow > 0 {
		f.allow--
	}
	f.puts = append(f.puts, req.Key)
	f.mu.Unlock()
	return f.Archive.Put(ctx, req)
}

func (f *flakyArchive) Puts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.puts...)
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// writeSegment makes a "closed segment" file as the recorder would.
func writeSegment(t *testing.T, dir string, n int, size int) string {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("rec-%d.webm", n))
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// spoolSegments hands n segments alternating between two participants.
func spoolSegments(t *testing.T, sp *evidence.Spool, session string, from, n int) []evidence.Record {
	t.Helper()
	recDir := t.TempDir()
	var out []evidence.Record
	for i := from; i < from+n; i++ {
		part := []string{"supervisor", "county-7"}[i%2]
		start := t0().Add(time.Duration(i) * 10 * time.Second)
		r, err := sp.AddSegment(context.Background(), evidence.Segment{
			SessionID: session, ParticipantID: part, Source: "camera",
			Path: writeSegment(t, recDir, i, 4096+i*100), Start: start, End: start.Add(10 * time.Second),
			Codecs: []string{"VP8", "opus"},
		})
		if err != nil {
			t.Fatalf("AddSegment %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

func closeInput(session string) evidence.ManifestInput {
	return evidence.ManifestInput{
		Session: evidence.SessionFacts{ID: session, Title: "信访事项督查", CaseNumber: "XF-2026-0042",
			Supervisor: "王督查", Start: t0(), End: t0().Add(time.Hour)},
		Participants: []evidence.Participant{
			{ID: "supervisor", Name: "王督查", Role: "supervisor", Organization: "省信访局"},
			{ID: "county-7", Name: "李主任", Role: "county", Organization: "某县信访局"},
		},
		Events: []byte(`[{"t":"2026-05-01T09:00:00Z","type":"recording_started"}]`),
	}
}

// runUploader starts Run and returns a stop function that waits for it to end.
func runUploader(t *testing.T, u *evidence.Uploader) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("uploader did not stop within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond with a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func drained(sp *evidence.Spool) func() bool {
	return func() bool { return sp.Backlog() == (evidence.Backlog{}) }
}
