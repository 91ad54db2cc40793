package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// Even a manifest signed with the right key must hold together: these edits
// are re-signed, so only the chain checks can catch them.
func TestVerifyChainChecksOnResignedManifests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := newKey(t)
	edits := map[string]struct {
		edit      func(m *evidence.Manifest)
		code      evidence.ProblemCode
		index     int64
		mentioned string
	}{
		"segment hash edited": {func(m *evidence.Manifest) { m.Segments[1].SHA256 = m.Segments[0].SHA256 },
			evidence.ProblemRecordHash, 1, ""},
		"last record (a gap) dropped": {func(m *evidence.Manifest) { m.Gaps = m.Gaps[:0] },
			evidence.ProblemChainHead, 4, ""},
		"segment dropped": {func(m *evidence.Manifest) { m.Segments = m.Segments[1:] },
			evidence.ProblemChainIndex, 0, ""},
		"records swapped": {func(m *evidence.Manifest) {
			m.Segments[1].Index, m.Segments[2].Index = m.Segments[2].Index, m.Segments[1].Index
		}, evidence.ProblemRecordHash, 1, ""},
		"segment re-pointed at another key": {func(m *evidence.Manifest) { m.Segments[2].Key = m.Segments[0].Key },
			evidence.ProblemKeyMismatch, 2, ""},
		"chain head edited": {func(m *evidence.Manifest) { m.Chain.Head = m.Segments[0].Hash },
			evidence.ProblemChainHead, 5, ""},
		"other session": {func(m *evidence.Manifest) { m.Session.ID = "elsewhere" },
			evidence.ProblemSessionMismatch, -1, "elsewhere"},
	}
	for name, c := range edits {
		t.Run(name, func(t *testing.T) {
			d := newDir(t)
			sp, _ := evidence.OpenSpool(t.TempDir(), nil)
			u, _ := evidence.NewUploader(sp, d, evidence.UploaderConfig{Signer: key, Clock: newFakeClock()})
			runUploader(t, u)
			spoolSegments(t, sp, "s", 0, 4)
			if _, err := sp.AddGap(ctx, evidence.Gap{SessionID: "s", ParticipantID: "county-7", Source: "camera",
				Start: t0(), End: t0().Add(time.Second), Reason: "crash"}); err != nil {
				t.Fatal(err)
			}
			if err := sp.CloseSession(ctx, closeInput("s")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "archived", drained(sp))

			m := readManifest(t, d, "s")
			c.edit(&m)
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			mkey, _ := archive.ManifestKey("s")
			skey, _ := archive.SignatureKey("s")
			putBytes(t, d, mkey, b)
			putBytes(t, d, skey, evidence.SignManifest(key, b))

			rep := evidence.Verify(ctx, d, "s", pubOf(key))
			if !rep.SignatureValid {
				t.Fatal("re-signed manifest should carry a valid signature")
			}
			if rep.Result != evidence.Altered || rep.FirstBad == nil || rep.FirstBad.Code != c.code || rep.FirstBad.Index != c.index {
				t.Fatalf("want first bad %s at %d:\n%s", c.code, c.index, rep.Text(evidence.LangEN))
			}
			if !strings.Contains(rep.FirstBad.Detail, c.mentioned) {
				t.Fatalf("detail %q does not mention %q", rep.FirstBad.Detail, c.mentioned)
			}
		})
	}
}

// The manifest carries everything the brief asks for.
func TestManifestContent(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	key := newKey(t)
	clock := newFakeClock()
	sp, _ := evidence.OpenSpool(t.TempDir(), nil)
	u, _ := evidence.NewUploader(sp, d, evidence.UploaderConfig{Signer: key, NodeID: "node-7", Clock: clock,
		Retention: archive.Policy{Mode: archive.Governance, Days: 30}})
	runUploader(t, u)
	spoolSegments(t, sp, "s", 0, 3)
	if err := sp.CloseSession(ctx, closeInput("s")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "archived", drained(sp))
	m := readManifest(t, d, "s")
	if m.Format != evidence.ManifestFormat || m.NodeID != "node-7" || m.Session.CaseNumber != "XF-2026-0042" ||
		m.Signer != evidence.Fingerprint(pubOf(key)) || len(m.Participants) != 2 || !m.Created.Equal(t0()) {
		t.Fatalf("manifest header = %+v", m)
	}
	if len(m.Tracks) != 2 || m.Tracks[0].Segments != 2 || m.Tracks[1].Segments != 1 || strings.Join(m.Tracks[0].Codecs, ",") != "VP8,opus" {
		t.Fatalf("tracks = %+v", m.Tracks)
	}
	var events []map[string]string
	if err := json.Unmarshal(m.Events, &events); err != nil || events[0]["type"] != "recording_started" {
		t.Fatalf("events = %s (%v)", m.Events, err)
	}
	for _, s := range m.Segments {
		if s.VersionID == "" || s.State != evidence.StateArchived || !s.RetainUntil.Equal(t0().Add(30*24*time.Hour)) {
			t.Fatalf("segment entry = %+v", s)
		}
	}
	mkey, _ := archive.ManifestKey("s")
	info, err := d.Stat(ctx, mkey, "")
	if err != nil || info.Retention.Mode != archive.Governance || info.Retention.Until.IsZero() {
		t.Fatalf("manifest object retention = %+v, %v", info.Retention, err)
	}
	skey, _ := archive.SignatureKey("s")
	if info, err := d.Stat(ctx, skey, ""); err != nil || info.Retention.Mode != archive.Governance || info.Size != 64 {
		t.Fatalf("signature object = %+v, %v", info, err)
	}
}

// The recorder's audio counts go from the spool (surviving a restart) into
// the signed manifest and the report: known counts as given, 0 as 0, unknown
// as absent (never 0), and an edit of them breaks the signature.
func TestManifestAudioCounts(t *testing.T) {
	ctx := context.Background()
	d := newDir(t)
	key := newKey(t)
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	recDir := t.TempDir()
	add := func(n int, participant, source string, frames, filled *int) error {
		start := t0().Add(time.Duration(n) * 10 * time.Second)
		_, err := sp.AddSegment(ctx, evidence.Segment{SessionID: "s", ParticipantID: participant, Source: source,
			Path: writeSegment(t, recDir, n, 1000), Start: start, End: start.Add(10 * time.Second),
			Codecs: []string{"VP8", "opus"}, AudioFrames: frames, AudioFramesFilled: filled})
		return err
	}
	for i, c := range []struct {
		participant, source string
		frames, filled      *int
	}{
		{"supervisor", "camera", new(2900), new(100)},
		{"county-7", "camera", new(3000), new(0)},
		{"supervisor", "camera", nil, nil}, // recovered after a crash
		{"supervisor", "screen", new(0), new(0)},
	} {
		if err := add(i, c.participant, c.source, c.frames, c.filled); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	for name, c := range map[string][2]*int{"one count only": {new(5), nil}, "negative": {new(5), new(-1)}} {
		if err := add(9, "p", "camera", c[0], c[1]); !errors.Is(err, evidence.ErrInvalidSegment) {
			t.Errorf("%s: AddSegment returned %v, want ErrInvalidSegment", name, err)
		}
	}

	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := func(frames, filled *int) string {
		if frames == nil || filled == nil {
			return fmt.Sprintf("%v/%v", frames, filled)
		}
		return fmt.Sprintf("%d/%d", *frames, *filled)
	}
	want := []string{"2900/100", "3000/0", "<nil>/<nil>", "0/0"}
	for i, r := range sp2.Records("s") {
		if got := counts(r.AudioFrames, r.AudioFramesFilled); got != want[i] {
			t.Errorf("reopened spool, record %d: counts %s, want %s", i, got, want[i])
		}
	}
	u, _ := evidence.NewUploader(sp2, d, evidence.UploaderConfig{Signer: key, Clock: newFakeClock()})
	runUploader(t, u)
	if err := sp2.CloseSession(ctx, closeInput("s")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "archived", drained(sp2))

	m := readManifest(t, d, "s")
	for i, e := range m.Segments {
		if got := counts(e.AudioFrames, e.AudioFramesFilled); got != want[i] {
			t.Errorf("manifest segment %d: counts %s, want %s", i, got, want[i])
		}
	}
	mkey, _ := archive.ManifestKey("s")
	raw := readObject(t, d, mkey)
	var loose struct {
		Segments []map[string]json.RawMessage `json:"segments"`
	}
	if err := json.Unmarshal(raw, &loose); err != nil {
		t.Fatal(err)
	}
	if _, ok := loose.Segments[2]["audio_frames"]; ok {
		t.Errorf("unknown counts written as %s, want the field absent", loose.Segments[2]["audio_frames"])
	}
	if string(loose.Segments[3]["audio_frames_filled"]) != "0" {
		t.Errorf("a segment without audio: audio_frames_filled = %s, want 0", loose.Segments[3]["audio_frames_filled"])
	}

	rep := evidence.Verify(ctx, d, "s", pubOf(key))
	if rep.Result != evidence.Intact {
		t.Fatalf("verify: %s", rep.Text(evidence.LangEN))
	}
	wantAudio := []evidence.AudioSummary{
		{Participant: "supervisor", Source: "camera", Frames: 2900, Filled: 100, Uncounted: 1},
		{Participant: "county-7", Source: "camera", Frames: 3000},
	}
	if fmt.Sprint(rep.Audio) != fmt.Sprint(wantAudio) {
		t.Errorf("report audio = %+v, want %+v", rep.Audio, wantAudio)
	}
	for lang, line := range map[string]string{
		evidence.LangEN: "  - supervisor/camera: 100 of 3000 frames filled (3.3%); 1 segment(s) without counts (recovered after a crash, or cut short by a write error)\n",
		evidence.LangZH: "  - supervisor/camera: 共 3000 帧，其中补帧 100 帧（3.3%）；1 个片段无计数（崩溃后恢复或写入出错）\n",
	} {
		if text := rep.Text(lang); !strings.Contains(text, line) || !strings.Contains(text, "county-7/camera") || strings.Contains(text, "/screen") {
			t.Errorf("%s report text lacks %q (or lists the screen share):\n%s", lang, line, text)
		}
	}

	// Less concealment than recorded is an edit the signature must catch.
	edited := bytes.Replace(raw, []byte(`"audio_frames_filled": 100`), []byte(`"audio_frames_filled": 10`), 1)
	if bytes.Equal(edited, raw) {
		t.Fatal("the manifest does not hold the count to edit")
	}
	putBytes(t, d, mkey, edited)
	if rep := evidence.Verify(ctx, d, "s", pubOf(key)); rep.Result != evidence.Altered || rep.FirstBad.Code != evidence.ProblemBadSignature {
		t.Fatalf("edited counts: %s", rep.Text(evidence.LangEN))
	}
}

// A manifest written before segment entries had audio counts (by the code of
// commit 30d4c90, see testdata) still verifies, reads back byte for byte, and
// reports no audio counts rather than zeros.
func TestOldManifestStillVerifies(t *testing.T) {
	ctx := context.Background()
	fixture := filepath.Join("testdata", "manifest-v1-before-audio")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(fixture, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	manifest := read("manifest.json")
	pub, err := evidence.ParsePublicKeyPEM(read("node-ed25519.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var m evidence.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(manifest, []byte("audio_frames")) || len(m.Segments) != 3 {
		t.Fatalf("the fixture is not a pre-audio-count manifest of 3 segments")
	}
	again, err := m.Encode()
	if err != nil || !bytes.Equal(again, manifest) {
		t.Fatalf("the old manifest does not read back to the same bytes (%v):\n%s", err, again)
	}

	d := newDir(t)
	for _, e := range m.Segments {
		if e.AudioFrames != nil || e.AudioFramesFilled != nil {
			t.Fatalf("segment %d: counts %v/%v read from a manifest that has none", e.Index, e.AudioFrames, e.AudioFramesFilled)
		}
		putBytes(t, d, e.Key, read(fmt.Sprintf("segment-%d", e.Index)))
	}
	mkey, _ := archive.ManifestKey(m.Session.ID)
	skey, _ := archive.SignatureKey(m.Session.ID)
	putBytes(t, d, mkey, manifest)
	putBytes(t, d, skey, read("manifest.sig"))

	rep := evidence.Verify(ctx, d, m.Session.ID, pub)
	if rep.Result != evidence.Intact || rep.SegmentsOK != 3 || len(rep.Gaps) != 1 {
		t.Fatalf("old manifest: %s", rep.Text(evidence.LangEN))
	}
	if len(rep.Audio) != 0 || strings.Contains(rep.Text(evidence.LangEN), "concealment") {
		t.Fatalf("old manifest reports audio counts it does not have: %+v", rep.Audio)
	}
}

func readObject(t *testing.T, a archive.Archive, key string) []byte {
	t.Helper()
	rc, _, err := a.Get(context.Background(), key, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
