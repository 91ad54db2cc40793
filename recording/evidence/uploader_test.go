package evidence_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

func newDir(t *testing.T) *archive.Dir {
	t.Helper()
	d, err := archive.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUploaderBacksOffAndReportsState(t *testing.T) {
	sp, _ := evidence.OpenSpool(t.TempDir(), nil)
	store := newFlaky(newDir(t))
	store.failNext = 5
	clock := newFakeClock()
	var mu sync.Mutex
	var during []evidence.Status
	u, err := evidence.NewUploader(sp, store, evidence.UploaderConfig{
		Retention: archive.Policy{Mode: archive.Governance, Days: 1}, Signer: newKey(t), NodeID: "n1",
		Clock: clock, MinBackoff: time.Second, MaxBackoff: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	clock.hook = func(time.Duration) {
		mu.Lock()
		during = append(during, u.Status())
		mu.Unlock()
	}
	spoolSegments(t, sp, "s1", 0, 2)
	runUploader(t, u)
	waitFor(t, "spool drained", drained(sp))

	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	got := clock.Sleeps()
	if len(got) != len(want) {
		t.Fatalf("sleeps = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sleeps = %v, want %v", got, want)
		}
	}
	mu.Lock()
	first := during[0]
	mu.Unlock()
	if first.State != evidence.UploadRetrying || !strings.Contains(first.LastError, "injected") || first.Failures != 1 {
		t.Fatalf("status while retrying = %+v", first)
	}
	if first.Backlog.Segments != 2 || first.Backlog.Bytes == 0 {
		t.Fatalf("backlog while retrying = %+v", first.Backlog)
	}
	waitFor(t, "status ok", func() bool { return u.Status().State == evidence.UploadOK })
	if st := u.Status(); st.LastError != "" || st.Failures != 0 || st.LastUpload.IsZero() {
		t.Fatalf("status after recovery = %+v", st)
	}
	// Backoff restarts from the minimum after a success.
	store.mu.Lock()
	store.failNext = 1
	store.mu.Unlock()
	spoolSegments(t, sp, "s1", 2, 1)
	waitFor(t, "spool drained", drained(sp))
	if s := clock.Sleeps(); s[len(s)-1] != time.Second {
		t.Fatalf("backoff after recovery started at %v, want 1s", s[len(s)-1])
	}
}

// A segment leaves the spool only once the archive confirmed it, and its
// record keeps the key and version the archive gave. Once the spool reports
// nothing pending, the file is gone: no wait for it here, on purpose (the
// spool once published the state before removing the file).
func TestUploaderRecordsConfirmation(t *testing.T) {
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	d := newDir(t)
	store := newFlaky(d)
	store.allow = 0 // nothing gets through
	u, _ := evidence.NewUploader(sp, store, evidence.UploaderConfig{Signer: newKey(t), Clock: newFakeClock()})
	recs := spoolSegments(t, sp, "s1", 0, 1)
	stop := runUploader(t, u)
	waitFor(t, "a failed attempt", func() bool { return u.Status().Failures > 2 })
	stop()
	if _, err := os.Stat(filepath.Join(dir, "sessions", "s1", recs[0].SpoolFile)); err != nil {
		t.Fatalf("unconfirmed segment left the spool: %v", err)
	}

	store.allow = -1
	u2, _ := evidence.NewUploader(sp, store, evidence.UploaderConfig{Signer: newKey(t), Clock: newFakeClock()})
	runUploader(t, u2)
	waitFor(t, "spool drained", drained(sp))
	r := sp.Records("s1")[0]
	if r.State != evidence.StateArchived || r.Key == "" || r.VersionID == "" || r.UploadedAt.IsZero() {
		t.Fatalf("record after upload = %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "sessions", "s1", r.SpoolFile)); !os.IsNotExist(err) {
		t.Fatalf("archived segment still in spool: %v", err)
	}
	info, err := d.Stat(context.Background(), r.Key, r.VersionID)
	if err != nil || info.SHA256 != r.SHA256 {
		t.Fatalf("archive has %+v, %v", info, err)
	}
}

// A crash after the record said archived but before the file went leaves an
// archived copy in the spool; the next process removes it and uploads nothing.
func TestSpoolReopenRemovesArchivedLeftover(t *testing.T) {
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	store := newFlaky(newDir(t))
	u, _ := evidence.NewUploader(sp, store, evidence.UploaderConfig{Signer: newKey(t), Clock: newFakeClock()})
	spoolSegments(t, sp, "s1", 0, 2)
	stop := runUploader(t, u)
	waitFor(t, "spool drained", drained(sp))
	stop()
	r := sp.Records("s1")[1]
	leftover := filepath.Join(dir, "sessions", "s1", r.SpoolFile)
	if err := os.WriteFile(leftover, []byte("the copy the crash left"), 0o640); err != nil {
		t.Fatal(err)
	}

	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("archived leftover still in spool after reopen: %v", err)
	}
	if b := sp2.Backlog(); b != (evidence.Backlog{}) {
		t.Fatalf("backlog after reopen = %+v", b)
	}
	if got := sp2.Records("s1")[1]; got.State != evidence.StateArchived || got.VersionID != r.VersionID {
		t.Fatalf("record after reopen = %+v", got)
	}
	u2, _ := evidence.NewUploader(sp2, store, evidence.UploaderConfig{Signer: newKey(t), Clock: newFakeClock()})
	runUploader(t, u2)
	if err := sp2.CloseSession(context.Background(), closeInput("s1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "spool drained", drained(sp2))
	if puts := store.Puts(); len(puts) != 4 { // two segments, then manifest and signature
		t.Fatalf("puts = %v", puts)
	}
}

// A spool file changed after it was chained can never be archived as
// recorded: it is declared lost (and kept aside), not retried forever.
func TestUploaderDeclaresChangedSegmentLost(t *testing.T) {
	dir := t.TempDir()
	sp, _ := evidence.OpenSpool(dir, nil)
	d := newDir(t)
	key := newKey(t)
	u, _ := evidence.NewUploader(sp, d, evidence.UploaderConfig{Signer: key, Clock: newFakeClock()})
	recs := spoolSegments(t, sp, "s1", 0, 2)
	if err := os.WriteFile(filepath.Join(dir, "sessions", "s1", recs[0].SpoolFile), []byte("bit rot"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := sp.CloseSession(context.Background(), closeInput("s1")); err != nil {
		t.Fatal(err)
	}
	runUploader(t, u)
	waitFor(t, "spool drained", drained(sp))
	lost, _ := filepath.Glob(filepath.Join(dir, "lost", "*"))
	if len(lost) != 1 {
		t.Fatalf("lost files kept aside: %v", lost)
	}
	rep := evidence.Verify(context.Background(), d, "s1", pubOf(key))
	if rep.Result != evidence.Intact || len(rep.Lost) != 1 || rep.Lost[0].Index != 0 || rep.SegmentsOK != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if !strings.Contains(rep.Lost[0].LostReason, "changed") {
		t.Fatalf("lost reason = %q", rep.Lost[0].LostReason)
	}
}

// A new process on the same spool uploads what the previous one left.
func TestUploaderRestartUploadsLeftovers(t *testing.T) {
	dir := t.TempDir()
	d := newDir(t)
	key := newKey(t)
	sp, _ := evidence.OpenSpool(dir, nil)
	spoolSegments(t, sp, "s1", 0, 5)
	if err := sp.CloseSession(context.Background(), closeInput("s1")); err != nil {
		t.Fatal(err)
	}
	store := newFlaky(d)
	store.allow = 2
	u, _ := evidence.NewUploader(sp, store, evidence.UploaderConfig{Signer: key, Clock: newFakeClock()})
	stop := runUploader(t, u)
	waitFor(t, "two uploads then failures", func() bool { return len(store.Puts()) == 2 && u.Status().Failures > 0 })
	stop()

	sp2, err := evidence.OpenSpool(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := sp2.Backlog(); b.Segments != 3 || b.Manifests != 1 {
		t.Fatalf("backlog seen by the new process = %+v", b)
	}
	u2, _ := evidence.NewUploader(sp2, d, evidence.UploaderConfig{Signer: key, Clock: newFakeClock()})
	runUploader(t, u2)
	waitFor(t, "spool drained", drained(sp2))
	rep := evidence.Verify(context.Background(), d, "s1", pubOf(key))
	if rep.Result != evidence.Intact || rep.SegmentsOK != 5 {
		t.Fatalf("after restart: %s", rep.Text(evidence.LangEN))
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "sessions")); len(entries) != 0 {
		t.Fatalf("archived session still in spool: %v", entries)
	}
}
