package replay_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/recording/replay/replaytest"
)

func ids(es []replay.Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func search(t *testing.T, s *replay.Service, q replay.Query) []string {
	t.Helper()
	es, _, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return ids(es)
}

// The index is rebuilt from the archive's manifests alone, persists in its
// store, and answers searches by date, case, unit, supervisor and text.
func TestRebuildAndSearch(t *testing.T) {
	bothArchives(t, func(t *testing.T, a namedArchive) {
		ctx := ctxT(t)
		key := newKey(t)
		files := randomFiles(t)
		for _, s := range samples() {
			replaytest.Seal(t, a.arch, key, s.recording(files), archive.Policy{})
		}
		dirStore, err := replay.NewDirStore(filepath.Join(t.TempDir(), "index"))
		if err != nil {
			t.Fatal(err)
		}
		// A leftover entry with no manifest behind it must go.
		if err := dirStore.Put(ctx, replay.Entry{ID: "gone", Title: "stale"}); err != nil {
			t.Fatal(err)
		}
		svc := newService(t, a, key, dirStore, newDirectory(t).store)
		if svc.Len() != 1 {
			t.Fatalf("loaded %d entries, want the 1 stored", svc.Len())
		}
		n, err := svc.Rebuild(ctx)
		if err != nil || n != 3 || svc.Len() != 3 {
			t.Fatalf("Rebuild = %d, %v; Len %d; want 3", n, err, svc.Len())
		}

		e, err := svc.Entry(ctx, "S-A")
		if err != nil {
			t.Fatal(err)
		}
		if e.SessionID != "S-A" || e.CaseNumber != "XF-2026-0042" || e.SupervisorName != "王督查" || e.Segments != 5 ||
			len(e.Participants) != 4 || e.Gaps != 0 || !e.RecordedStart.Equal(t0()) || !e.RecordedEnd.Equal(t0().Add(4*time.Second)) {
			t.Fatalf("entry S-A: %+v", e)
		}
		wantUnits := []replay.Unit{{Code: "140105", Name: "小店区信访局"}, {Code: "140106", Name: "迎泽区信访局"}}
		if !slices.Equal(e.Units, wantUnits) {
			t.Errorf("units %+v, want %+v", e.Units, wantUnits)
		}
		adhoc, _ := svc.Entry(ctx, "room7-20260503T020000Z")
		if adhoc.SessionID != "" || adhoc.Supervisor != "" || adhoc.Title != "room7" {
			t.Errorf("ad-hoc entry %+v", adhoc)
		}

		all := []string{"room7-20260503T020000Z", "S-B", "S-A"} // newest first
		for _, c := range []struct {
			name string
			q    replay.Query
			want []string
		}{
			{"everything", replay.Query{}, all},
			{"case number part", replay.Query{Case: "0042"}, []string{"S-A"}},
			{"case number other case", replay.Query{Case: "xf-2026-0099"}, []string{"S-B"}},
			{"unit code", replay.Query{Unit: "140107"}, []string{"S-B"}},
			{"unit code is exact", replay.Query{Unit: "1401"}, []string{}},
			{"unit name", replay.Query{Unit: "迎泽"}, []string{"S-A"}},
			{"supervisor id", replay.Query{Supervisor: "acc-li"}, []string{"S-B"}},
			{"supervisor name", replay.Query{Supervisor: "王督"}, []string{"S-A"}},
			{"title", replay.Query{Text: "工资"}, []string{"S-B"}},
			{"participant name", replay.Query{Text: "单位140106"}, []string{"S-A"}},
			{"date range", replay.Query{From: t0().Add(time.Hour), To: t0().Add(48 * time.Hour)}, []string{"S-B"}},
			{"from only", replay.Query{From: t0().Add(time.Hour)}, []string{"room7-20260503T020000Z", "S-B"}},
			{"to is exclusive", replay.Query{To: t0()}, []string{}},
			{"owner", replay.Query{Owner: "acc-wang"}, []string{"S-A"}},
			{"owner with another's case", replay.Query{Owner: "acc-wang", Case: "0099"}, []string{}},
			{"combined", replay.Query{Case: "XF", Unit: "小店"}, []string{"S-A"}},
		} {
			if got := search(t, svc, c.q); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		es, more, _ := svc.Search(ctx, replay.Query{Limit: 2})
		if len(es) != 2 || !more {
			t.Errorf("limit 2: %d results, more=%v", len(es), more)
		}

		// The store kept what Rebuild made: a new service over it knows
		// everything without reading the archive.
		again := newService(t, a, key, dirStore, nil)
		if again.Len() != 3 {
			t.Fatalf("reopened index has %d entries, want 3", again.Len())
		}
		if got := search(t, again, replay.Query{Case: "0042"}); !slices.Equal(got, []string{"S-A"}) {
			t.Errorf("reopened index: %v", got)
		}
		if _, err := again.Entry(ctx, "gone"); !errors.Is(err, replay.ErrNotFound) {
			t.Errorf("stale entry: %v, want ErrNotFound", err)
		}
	})
}

// watched is an archive whose Puts go through the seal watcher, as the
// uploader's do on a node.
type watched struct {
	archive.Archive
	w replay.Putter
}

func (x watched) Put(ctx context.Context, req archive.PutRequest) (archive.ObjectInfo, error) {
	return x.w.Put(ctx, req)
}

// A recording is indexed the moment its manifest is sealed, and Run
// verifies it without being asked; a recording sealed behind the index's
// back is found by Run's scan.
func TestSealedRecordingsAreIndexedAndVerified(t *testing.T) {
	a := dirArchive(t)
	ctx := ctxT(t)
	key := newKey(t)
	svc := newService(t, a, key, replay.NewMemStore(), nil, func(c *replay.Config) { c.ScanEvery = time.Hour })
	files := randomFiles(t)
	s := samples()
	replaytest.Seal(t, watched{Archive: a.arch, w: svc.WatchSeals(a.arch)}, key, s[0].recording(files), archive.Policy{})
	// Seal returns when the signature is in the archive; the watcher indexes
	// right after that Put returns, so give it a moment.
	var got []string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if got = search(t, svc, replay.Query{}); slices.Equal(got, []string{"S-A"}) {
			break
		}
	}
	if !slices.Equal(got, []string{"S-A"}) {
		t.Fatalf("after the seal: %v, want S-A indexed", got)
	}
	// Sealed directly in the archive: only a scan can know.
	replaytest.Seal(t, a.arch, key, s[1].recording(files), archive.Policy{})

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	deadline := time.Now().Add(time.Minute)
	for {
		a, _ := svc.Entry(ctx, "S-A")
		b, _ := svc.Entry(ctx, "S-B")
		if a.Verification != nil && b.Verification != nil {
			if a.Verification.Result != "intact" || b.Verification.Result != "intact" || !a.Verification.SignatureValid {
				t.Fatalf("verifications %+v %+v", a.Verification, b.Verification)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not index and verify: %+v %+v", a, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// An unknown id, a manifest under the wrong key, and ids with path tricks
// are not recordings.
func TestEntryRefusesWhatIsNotARecording(t *testing.T) {
	a := dirArchive(t)
	ctx := ctxT(t)
	key := newKey(t)
	svc := newService(t, a, key, replay.NewMemStore(), nil)
	for _, id := range []string{"nope", "", "../S-A", "sessions/S-A"} {
		if _, err := svc.Entry(ctx, id); !errors.Is(err, replay.ErrNotFound) {
			t.Errorf("Entry(%q) = %v, want ErrNotFound", id, err)
		}
	}
	// A valid manifest copied under another session's key.
	replaytest.Seal(t, a.arch, key, samples()[1].recording(randomFiles(t)), archive.Policy{})
	src, _ := archive.ManifestKey("S-B")
	dst, _ := archive.ManifestKey("S-X")
	rc, info, err := a.arch.Get(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := a.arch.Put(ctx, archive.PutRequest{Key: dst, Body: rc, Size: info.Size, SHA256: info.SHA256}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Entry(ctx, "S-X"); !errors.Is(err, replay.ErrInvalidManifest) {
		t.Errorf("manifest of S-B under S-X: %v, want ErrInvalidManifest", err)
	}
	n, err := svc.Rebuild(ctx)
	if n != 1 || !errors.Is(err, replay.ErrInvalidManifest) {
		t.Errorf("Rebuild = %d, %v; want S-B indexed and the copy reported", n, err)
	}
}
