package replay_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/recording/replay/replaytest"
)

// Verification runs the same check as `ducha verify`, remembers it in the
// index, and names the participant and segment of the first bad link.
func TestVerifyIntactThenAltered(t *testing.T) {
	bothArchives(t, func(t *testing.T, a namedArchive) {
		ctx := ctxT(t)
		key := newKey(t)
		m := replaytest.Seal(t, a.arch, key, samples()[0].recording(randomFiles(t)), archive.Policy{})
		svc := newService(t, a, key, replay.NewMemStore(), nil)
		v, err := svc.Verify(ctx, "S-A")
		if err != nil {
			t.Fatal(err)
		}
		if v.Result != "intact" || !v.SignatureValid || v.FirstBad != nil || v.Report.SegmentsOK != 5 ||
			!strings.Contains(v.Text, "完好") || !strings.Contains(v.TextEn, "INTACT") || v.Store.Objects != 7 {
			t.Fatalf("intact recording: %+v", v)
		}
		e, _ := svc.Entry(ctx, "S-A")
		if e.Verification == nil || e.Verification.Result != "intact" {
			t.Fatalf("index did not remember the check: %+v", e.Verification)
		}

		victim := m.Segments[3]
		switch {
		case a.dir != nil:
			alterDirSegment(t, a.dir, victim.Key)
		default:
			// A bucket without a lock on these objects: the version the
			// manifest names can be removed, and something else put there.
			raw, err := a.minio.Client()
			if err != nil {
				t.Fatal(err)
			}
			if err := raw.RemoveObject(ctx, a.bucket, victim.Key, minio.RemoveObjectOptions{VersionID: victim.VersionID}); err != nil {
				t.Fatal(err)
			}
			forged := strings.NewReader("forged segment")
			if _, err := raw.PutObject(ctx, a.bucket, victim.Key, forged, forged.Size(), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		v, err = svc.Verify(ctx, "S-A")
		if err != nil {
			t.Fatal(err)
		}
		if v.Result != "altered" || v.FirstBad == nil || v.FirstBad.Key != victim.Key || v.FirstBad.Participant != victim.Participant ||
			v.FirstBad.ParticipantName == "" || v.FirstBad.Seq == nil || *v.FirstBad.Seq != int64(victim.Seq) {
			t.Fatalf("altered recording: result %s, first bad %+v; want %s", v.Result, v.FirstBad, victim.Key)
		}
		if !v.SignatureValid {
			t.Error("the manifest itself was not touched: its signature is still valid")
		}
		if !strings.Contains(v.Text, victim.Key) {
			t.Errorf("report text does not name %s:\n%s", victim.Key, v.Text)
		}
		e, _ = svc.Entry(ctx, "S-A")
		if e.Verification == nil || e.Verification.Result != "altered" || e.Verification.FirstBad == nil {
			t.Fatalf("index kept %+v", e.Verification)
		}
	})
}

func TestVerifyUnknownRecording(t *testing.T) {
	a := dirArchive(t)
	key := newKey(t)
	svc := newService(t, a, key, replay.NewMemStore(), nil)
	if _, err := svc.Verify(context.Background(), "nope"); !errors.Is(err, replay.ErrNotFound) {
		t.Fatalf("Verify(nope) = %v, want ErrNotFound", err)
	}
}
