// Package replaytest seals recordings into a real archive for tests: the
// evidence spool and uploader do the work, as on a node, so manifests,
// signatures, chains and segment objects are the real thing.
package replaytest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// Segment is one recorded file of a participant's source.
type Segment struct {
	Participant, Source string
	Start, End          time.Time
	// Path is copied into the spool (the file itself is left alone).
	Path string
	// AudioFrames and AudioFramesFilled are the recorder's counts, nil for
	// unknown (see evidence.Segment).
	AudioFrames, AudioFramesFilled *int
}

// Recording is what Seal archives.
type Recording struct {
	Facts        evidence.SessionFacts
	Participants []evidence.Participant
	// Events is the session's event log (any JSON-encodable slice).
	Events   any
	Segments []Segment
	Gaps     []evidence.Gap
}

// Tool finds a command: a failure under CI=true, a skip naming `make test`
// otherwise.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (CI=true): `make test` installs it", name)
	}
	t.Skipf("%s not found; run `make test`, which installs it", name)
	return ""
}

// WebM encodes a real VP8 + Opus WebM of the given length with ffmpeg: a
// 320x240 test pattern (keyframe every second) and a tone. label makes the
// file name unique in dir.
func WebM(t testing.TB, dir, label string, seconds float64) string {
	t.Helper()
	ff := Tool(t, "ffmpeg")
	out := filepath.Join(dir, label+".webm")
	d := strconv.FormatFloat(seconds, 'f', 3, 64)
	args := []string{"-y", "-v", "error",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=20",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", d, "-c:v", "libvpx", "-g", "20", "-b:v", "200k", "-deadline", "realtime",
		"-c:a", "libopus", "-b:a", "24k", out}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, ff, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// Bytes writes n pseudo-random bytes (not a playable file: for tests that
// only move bytes around).
func Bytes(t testing.TB, dir, label string, n int, seed byte) string {
	t.Helper()
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	p := filepath.Join(dir, label)
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// Seal spools rec's segments, closes the session and runs an uploader until
// the signed manifest is in arch. It returns the manifest as archived.
func Seal(t testing.TB, arch archive.Archive, key ed25519.PrivateKey, rec Recording, retention archive.Policy) *evidence.Manifest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spool, err := evidence.OpenSpool(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	id := rec.Facts.ID
	for i, s := range rec.Segments {
		cp := filepath.Join(work, fmt.Sprintf("%d-%s", i, filepath.Base(s.Path)))
		if err := copyFile(s.Path, cp); err != nil {
			t.Fatal(err)
		}
		if _, err := spool.AddSegment(ctx, evidence.Segment{SessionID: id, ParticipantID: s.Participant, Source: s.Source,
			Path: cp, Start: s.Start, End: s.End, Codecs: []string{"VP8", "opus"},
			AudioFrames: s.AudioFrames, AudioFramesFilled: s.AudioFramesFilled}); err != nil {
			t.Fatalf("spool segment %d: %v", i, err)
		}
	}
	for _, g := range rec.Gaps {
		g.SessionID = id
		if _, err := spool.AddGap(ctx, g); err != nil {
			t.Fatalf("spool gap: %v", err)
		}
	}
	events := json.RawMessage("[]")
	if rec.Events != nil {
		b, err := json.Marshal(rec.Events)
		if err != nil {
			t.Fatal(err)
		}
		events = b
	}
	if err := spool.CloseSession(ctx, evidence.ManifestInput{Session: rec.Facts, Participants: rec.Participants, Events: events}); err != nil {
		t.Fatal(err)
	}
	up, err := evidence.NewUploader(spool, arch, evidence.UploaderConfig{Retention: retention, Signer: key, NodeID: "test-node",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- up.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("uploader: %v", err)
		}
	}()
	skey, err := archive.SignatureKey(id)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := arch.Stat(ctx, skey, ""); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("recording %s not sealed in time (uploader: %+v)", id, up.Status())
		case <-time.After(20 * time.Millisecond):
		}
	}
	mkey, _ := archive.ManifestKey(id)
	rc, _, err := arch.Get(ctx, mkey, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var m evidence.Manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
