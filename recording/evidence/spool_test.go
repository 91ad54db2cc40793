package evidence_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
)

func TestSpoolChainsSegmentsAndGaps(t *testing.T) {
	dir := t.TempDir()
	sp, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := spoolSegments(t, sp, "s1", 0, 4)
	gap, err := sp.AddGap(context.Background(), evidence.Gap{SessionID: "s1", ParticipantID: "county-7", Source: "camera",
		Start: t0().Add(40 * time.Second), End: t0().Add(41 * time.Second), Reason: "node restarted; last second lost"})
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, gap)
	prev := ""
	for i, r := range recs {
		if r.Index != uint64(i) || r.Prev != prev {
			t.Fatalf("record %d: index %d prev %s, want prev %s", i, r.Index, r.Prev, prev)
		}
		if h, _ := r.ComputeHash(); h != r.Hash {
			t.Fatalf("record %d hash %s, recomputed %s", i, r.Hash, h)
		}
		prev = r.Hash
	}
	// Sequence numbers run per participant and source.
	if recs[0].Seq != 0 || recs[1].Seq != 0 || recs[2].Seq != 1 || recs[3].Seq != 1 {
		t.Fatalf("seqs = %d %d %d %d, want 0 0 1 1", recs[0].Seq, recs[1].Seq, recs[2].Seq, recs[3].Seq)
	}
	// The file moved into the spool, the recorder's copy is gone.
	if _, err := os.Stat(recs[0].Origin); !os.IsNotExist(err) {
		t.Fatalf("origin still exists: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sessions", "s1", recs[0].SpoolFile)); err != nil {
		t.Fatalf("segment not in spool: %v", err)
	}
	b := sp.Backlog()
	if b.Segments != 4 || b.Bytes != int64(4096*4+100*(0+1+2+3)) || b.Manifests != 0 {
		t.Fatalf("backlog = %+v", b)
	}

	if err := sp.CloseSession(context.Background(), closeInput("s1")); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.AddGap(context.Background(), evidence.Gap{SessionID: "s1", ParticipantID: "p", Source: "camera",
		Start: t0(), End: t0(), Reason: "late"}); !errors.Is(err, evidence.ErrSessionClosed) {
		t.Fatalf("gap after close: %v", err)
	}
	if err := sp.CloseSession(context.Background(), closeInput("s1")); !errors.Is(err, evidence.ErrSessionClosed) {
		t.Fatalf("second close: %v", err)
	}

	// A new process sees the same chain and continues it correctly.
	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := sp2.Records("s1")
	if len(got) != 5 || got[4].Hash != gap.Hash {
		t.Fatalf("reopened spool has %d records", len(got))
	}
	if b2 := sp2.Backlog(); b2 != (evidence.Backlog{Segments: 4, Bytes: b.Bytes, Manifests: 1}) {
		t.Fatalf("reopened backlog = %+v", b2)
	}
}

func TestSpoolReopenContinuesSequence(t *testing.T) {
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	first := spoolSegments(t, sp, "s2", 0, 2)
	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	more := spoolSegments(t, sp2, "s2", 2, 2)
	if more[0].Index != 2 || more[0].Prev != first[1].Hash || more[0].Seq != 1 || more[1].Seq != 1 {
		t.Fatalf("after reopen: index %d seq %d/%d prev ok=%v", more[0].Index, more[0].Seq, more[1].Seq, more[0].Prev == first[1].Hash)
	}
	if open := sp2.OpenSessions(); len(open) != 1 || open[0] != "s2" {
		t.Fatalf("OpenSessions = %v", open)
	}
}

// A crash after the record was written but before the file moved: the next
// OpenSpool finishes the move.
func TestSpoolFinishesInterruptedMove(t *testing.T) {
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	r := spoolSegments(t, sp, "s3", 0, 1)[0]
	inSpool := filepath.Join(dir, "sessions", "s3", r.SpoolFile)
	if err := os.Rename(inSpool, r.Origin); err != nil { // put the world back to "record written, file not moved"
		t.Fatal(err)
	}
	if _, err := evidence.OpenSpool(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inSpool); err != nil {
		t.Fatalf("move not finished on reopen: %v", err)
	}
}

func TestSpoolSkipsCorruptSessionOnly(t *testing.T) {
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	spoolSegments(t, sp, "good", 0, 2)
	bad := spoolSegments(t, sp, "bad", 0, 2)
	rec := filepath.Join(dir, "sessions", "bad", "00000001.json")
	b, _ := os.ReadFile(rec)
	if err := os.WriteFile(rec, []byte(strings.Replace(string(b), bad[1].SHA256, bad[0].SHA256, 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp2.Records("good")) != 2 || sp2.Records("bad") != nil {
		t.Fatalf("good=%d bad=%d records after reopen", len(sp2.Records("good")), len(sp2.Records("bad")))
	}
	if _, err := os.Stat(rec); err != nil {
		t.Fatal("corrupt session was removed; it must stay for an operator")
	}
}

func TestSpoolRejectsBadInput(t *testing.T) {
	sp, _ := evidence.OpenSpool(t.TempDir(), nil)
	ctx := context.Background()
	p := writeSegment(t, t.TempDir(), 0, 10)
	cases := []evidence.Segment{
		{SessionID: "", ParticipantID: "p", Source: "camera", Path: p, Start: t0(), End: t0()},
		{SessionID: "s", ParticipantID: "p", Source: "camera", Path: p, Start: t0(), End: t0().Add(-time.Second)},
		{SessionID: "s", ParticipantID: "p", Source: "camera", Path: p, Start: t0(), End: t0(), Container: "../x"},
		{SessionID: strings.Repeat("s", 200), ParticipantID: "p", Source: "camera", Path: p, Start: t0(), End: t0()},
	}
	for i, c := range cases {
		if _, err := sp.AddSegment(ctx, c); !errors.Is(err, evidence.ErrInvalidSegment) {
			t.Errorf("case %d: err = %v, want ErrInvalidSegment", i, err)
		}
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal("a refused segment's file was moved or removed")
	}
	if err := sp.CloseSession(ctx, evidence.ManifestInput{Session: evidence.SessionFacts{ID: "s"}, Events: []byte(`{"not":"array"}`)}); !errors.Is(err, evidence.ErrInvalidManifest) {
		t.Fatalf("events not an array: %v", err)
	}
}

// Hostile ids never leave the spool directory.
func TestSpoolHostileSessionID(t *testing.T) {
	outer := t.TempDir()
	dir := filepath.Join(outer, "spool")
	sp, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../../escape", "..", "/etc", "a/b"} {
		spoolSegments(t, sp, id, 0, 1)
	}
	entries, _ := os.ReadDir(outer)
	if len(entries) != 1 {
		t.Fatalf("spool wrote beside itself: %v", entries)
	}
	sessions, _ := os.ReadDir(filepath.Join(dir, "sessions"))
	if len(sessions) != 4 {
		t.Fatalf("want 4 session dirs, got %d", len(sessions))
	}
	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil || len(sp2.Records("../../escape")) != 1 {
		t.Fatalf("hostile session not reloaded: %v", err)
	}
}
