package evidence_test

import (
	"context"
	"encoding/json"
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
