package evidence_test

import (
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
)

func sampleRecord() evidence.Record {
	return evidence.Record{
		Format: 1, Session: "s-1", Index: 3, Kind: evidence.KindSegment, Participant: "county-7", Source: "camera",
		Seq: 1, Start: time.Date(2026, 5, 1, 9, 0, 10, 500, time.UTC), End: time.Date(2026, 5, 1, 9, 1, 10, 0, time.UTC),
		Container: "webm", Codecs: []string{"VP8", "opus"},
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 12345,
		Prev: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
	}
}

// The canonical encoding is a published format (FORMAT.md): this pins it.
func TestCanonicalEncodingIsStable(t *testing.T) {
	r := sampleRecord()
	b, err := r.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"codecs":["VP8","opus"],"container":"webm","end":"2026-05-01T09:01:10.000000000Z","index":3,"kind":"segment",` +
		`"participant":"county-7","prev":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","reason":"",` +
		`"seq":1,"session":"s-1","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","size":12345,` +
		`"source":"camera","start":"2026-05-01T09:00:10.000000500Z","v":1}`
	if string(b) != want {
		t.Fatalf("canonical =\n%s\nwant\n%s", b, want)
	}
	// The same instant in another zone hashes the same.
	r2 := sampleRecord()
	r2.Start = r2.Start.In(time.FixedZone("CST", 8*3600))
	h1, _ := r.ComputeHash()
	h2, _ := r2.ComputeHash()
	if h1 != h2 {
		t.Fatal("hash depends on the time zone of the value")
	}
}

func TestEveryHashedFieldMatters(t *testing.T) {
	base, _ := func() (string, error) { r := sampleRecord(); return r.ComputeHash() }()
	mutations := map[string]func(*evidence.Record){
		"session":     func(r *evidence.Record) { r.Session = "s-2" },
		"index":       func(r *evidence.Record) { r.Index++ },
		"kind":        func(r *evidence.Record) { r.Kind = evidence.KindGap },
		"participant": func(r *evidence.Record) { r.Participant = "county-8" },
		"source":      func(r *evidence.Record) { r.Source = "screen" },
		"seq":         func(r *evidence.Record) { r.Seq++ },
		"start":       func(r *evidence.Record) { r.Start = r.Start.Add(time.Nanosecond) },
		"end":         func(r *evidence.Record) { r.End = r.End.Add(time.Millisecond) },
		"container":   func(r *evidence.Record) { r.Container = "mp4" },
		"codecs":      func(r *evidence.Record) { r.Codecs = []string{"VP9", "opus"} },
		"sha256":      func(r *evidence.Record) { r.SHA256 = r.Prev },
		"size":        func(r *evidence.Record) { r.Size++ },
		"reason":      func(r *evidence.Record) { r.Reason = "x" },
		"prev":        func(r *evidence.Record) { r.Prev = r.SHA256 },
		"format":      func(r *evidence.Record) { r.Format = 2 },
	}
	for name, mutate := range mutations {
		r := sampleRecord()
		mutate(&r)
		if h, _ := r.ComputeHash(); h == base {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
	// Upload bookkeeping is not part of the hash (it is filled in later).
	r := sampleRecord()
	r.State, r.Key, r.VersionID, r.UploadedAt = evidence.StateArchived, "k", "v", time.Now()
	if h, _ := r.ComputeHash(); h != base {
		t.Error("upload bookkeeping changed the hash")
	}
}
