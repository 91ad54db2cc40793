package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/recording/replay/replaytest"
)

// The detail lays every participant on the session's timeline: presence
// from joins and leaves, segments at their offsets, events named and
// placed, and the archive's retention and holds.
func TestDetailTimeline(t *testing.T) {
	a := dirArchive(t)
	ctx := ctxT(t)
	key := newKey(t)
	retention := archive.Policy{Mode: archive.Governance, Days: 30}
	m := replaytest.Seal(t, a.arch, key, samples()[0].recording(randomFiles(t)), retention)
	// A legal hold on one segment shows.
	if err := a.arch.SetLegalHold(ctx, m.Segments[0].Key, m.Segments[0].VersionID, true); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, a, key, replay.NewMemStore(), newDirectory(t).store)
	d, err := svc.Detail(ctx, "S-A")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Timeline.Start.Equal(t0()) || d.Timeline.DurationMs != 4000 {
		t.Fatalf("timeline %+v, want 4 s from t0", d.Timeline)
	}
	if len(d.Participants) != 4 || d.Participants[0].Role != "supervisor" {
		t.Fatalf("participants %+v, supervisor first", d.Participants)
	}
	byID := map[string]replay.ParticipantView{}
	for _, p := range d.Participants {
		byID[p.ID] = p
	}
	early := byID["P-140106"] // left after its first segment
	if !slices.Equal(early.Presence, []replay.Span{{StartMs: 0, EndMs: 2000}}) {
		t.Errorf("early leaver presence %+v, want 0-2000 ms", early.Presence)
	}
	obs := byID["P-obs"] // no media: presence from the event log alone
	if !slices.Equal(obs.Presence, []replay.Span{{StartMs: 500, EndMs: 3000}}) || len(obs.Tracks) != 0 {
		t.Errorf("observer presence %+v tracks %+v, want 500-3000 ms and no tracks", obs.Presence, obs.Tracks)
	}
	if len(early.Tracks) != 1 || len(early.Tracks[0].Segments) != 1 {
		t.Fatalf("early leaver tracks %+v", early.Tracks)
	}
	stayed := byID["P-140105"]
	if !slices.Equal(stayed.Presence, []replay.Span{{StartMs: 0, EndMs: 4000}}) {
		t.Errorf("presence %+v, want the whole recording", stayed.Presence)
	}
	segs := stayed.Tracks[0].Segments
	if len(segs) != 2 || segs[0].StartMs != 0 || segs[0].EndMs != 2000 || segs[1].StartMs != 2000 || segs[1].EndMs != 4000 ||
		segs[1].Seq != 1 || segs[1].SHA256 == "" || segs[1].State != "archived" {
		t.Errorf("segments %+v", segs)
	}
	// Audio counts as the manifest has them; none where it has none.
	counts := func(s replay.SegmentView) string {
		if s.AudioFrames == nil || s.AudioFramesFilled == nil {
			return fmt.Sprintf("%v/%v", s.AudioFrames, s.AudioFramesFilled)
		}
		return fmt.Sprintf("%d/%d", *s.AudioFrames, *s.AudioFramesFilled)
	}
	if got := counts(segs[0]) + " " + counts(segs[1]); got != "<nil>/<nil> 90/10" {
		t.Errorf("audio counts %s, want none, then 90 received and 10 filled", got)
	}

	types := map[string]replay.EventView{}
	for _, ev := range d.Events {
		if ev.Subject != "P-obs" {
			types[ev.Type] = ev
		}
	}
	if lo := types["lobby_open"]; !lo.Outside || lo.OffsetMs != 0 || lo.ActorName != "王督查" {
		t.Errorf("lobby_open before the recording: %+v", lo)
	}
	if mute := types["mute"]; mute.OffsetMs != 2000 || mute.SubjectName != "单位140105" || mute.ActorName != "王督查" || mute.Data["kind"] != "audio" {
		t.Errorf("mute event %+v", mute)
	}
	if chat := types["chat"]; chat.OffsetMs != 1500 || chat.Data["text"] != "已按期办结" || chat.ActorName != "单位140105" {
		t.Errorf("chat event %+v", chat)
	}
	if leave := types["leave"]; leave.OffsetMs != 2000 || leave.Subject != "P-140106" {
		t.Errorf("leave event %+v", leave)
	}

	st := d.Storage
	if st.Objects != 7 || st.Retained != 7 || st.Held != 1 || st.Missing != 0 || st.RetentionMode != "GOVERNANCE" ||
		st.RetainUntil.IsZero() || st.LegalHold {
		t.Errorf("storage %+v, want 7 objects all retained, one held, manifest not held", st)
	}
}

// Segments are read from the archive at the version the manifest names,
// seekable for Range requests; unknown and lost segments are told apart.
func TestOpenSegment(t *testing.T) {
	a := dirArchive(t)
	ctx := ctxT(t)
	key := newKey(t)
	files := randomFiles(t)
	m := replaytest.Seal(t, a.arch, key, samples()[1].recording(files), archive.Policy{})
	svc := newService(t, a, key, replay.NewMemStore(), nil)
	seg := m.Segments[1]
	got, err := svc.OpenSegment(ctx, "S-B", seg.Index)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	want := readObject(t, a.arch, seg.Key, seg.VersionID)
	if got.Size != int64(len(want)) || got.ContentType != "video/webm" || got.Name == "" {
		t.Fatalf("segment %+v", got)
	}
	if _, err := got.Body.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 50)
	if _, err := io.ReadFull(got.Body, part); err != nil || !bytes.Equal(part, want[100:150]) {
		t.Fatalf("bytes 100-149 differ from the archive's (%v)", err)
	}

	// A newer version under the same key is not what the manifest names.
	forged := []byte("forged bytes")
	if _, err := a.arch.Put(ctx, archive.PutRequest{Key: seg.Key, Body: bytes.NewReader(forged), Size: int64(len(forged)),
		SHA256: sha(forged)}); err != nil {
		t.Fatal(err)
	}
	again, err := svc.OpenSegment(ctx, "S-B", seg.Index)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(again.Body)
	again.Body.Close()
	if !bytes.Equal(b, want) {
		t.Fatal("a later version under the segment's key was served")
	}

	if _, err := svc.OpenSegment(ctx, "S-B", 999); !errors.Is(err, replay.ErrSegmentNotFound) {
		t.Errorf("index 999: %v", err)
	}
	if _, err := svc.OpenSegment(ctx, "nope", 0); !errors.Is(err, replay.ErrNotFound) {
		t.Errorf("unknown recording: %v", err)
	}
}

// A segment the spool lost before archiving is declared in the manifest and
// refused as lost, not as missing.
func TestOpenLostSegment(t *testing.T) {
	a := dirArchive(t)
	ctx := ctxT(t)
	key := newKey(t)
	// Seal by hand so one segment can be damaged in the spool first.
	spoolDir := t.TempDir()
	sp, err := evidence.OpenSpool(spoolDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := randomFiles(t)
	for i := 0; i < 2; i++ {
		st := t0().Add(time.Duration(i) * 2 * time.Second)
		if _, err := sp.AddSegment(ctx, evidence.Segment{SessionID: "S-L", ParticipantID: "P1", Source: "camera",
			Path: files("P1", i), Start: st, End: st.Add(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	// Damage the first segment's spool file: the uploader must declare it lost.
	recs := sp.Records("S-L")
	damageSpoolFile(t, spoolDir, recs[0].SpoolFile)
	if err := sp.CloseSession(ctx, evidence.ManifestInput{Session: evidence.SessionFacts{ID: "S-L", Title: "lost"}}); err != nil {
		t.Fatal(err)
	}
	up, err := evidence.NewUploader(sp, a.arch, evidence.UploaderConfig{Signer: key, NodeID: "n"})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- up.Run(runCtx) }()
	skey, _ := archive.SignatureKey("S-L")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := a.arch.Stat(ctx, skey, ""); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not sealed")
		}
	}
	cancel()
	<-done
	svc := newService(t, a, key, replay.NewMemStore(), nil)
	if _, err := svc.OpenSegment(ctx, "S-L", 0); !errors.Is(err, replay.ErrSegmentLost) {
		t.Fatalf("lost segment: %v, want ErrSegmentLost", err)
	}
	e, err := svc.Entry(ctx, "S-L")
	if err != nil || e.LostSegments != 1 || e.Segments != 1 {
		t.Fatalf("entry %+v, %v: want one archived and one lost segment", e, err)
	}
}
