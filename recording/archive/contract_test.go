package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/archive/miniotest"
)

// testArchive is what the contract needs beyond Archive: deleting a version,
// which both implementations offer outside the interface.
type testArchive interface {
	archive.Archive
	Delete(ctx context.Context, key, versionID string) error
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func put(t *testing.T, a archive.Archive, key string, body []byte, ret archive.Retention) archive.ObjectInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := a.Put(ctx, archive.PutRequest{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), SHA256: sum(body), Retention: ret})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func read(t *testing.T, a archive.Archive, key, version string) ([]byte, archive.ObjectInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, info, err := a.Get(ctx, key, version)
	if err != nil {
		t.Fatalf("get %s@%s: %v", key, version, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

// runContract holds every Archive implementation to the same behaviour.
// missingVersion is a well-formed version id the store has never issued.
func runContract(t *testing.T, a testArchive, missingVersion string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	locked := archive.Retention{Mode: archive.Governance, Until: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}

	t.Run("PutGetStat", func(t *testing.T) {
		key, err := archive.SegmentKey("s1", "p1", "camera", 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "")
		if err != nil {
			t.Fatal(err)
		}
		body := []byte("segment bytes \x00\x01\x02")
		info := put(t, a, key, body, locked)
		if info.VersionID == "" || info.SHA256 != sum(body) || info.Size != int64(len(body)) {
			t.Fatalf("put info = %+v", info)
		}
		got, ginfo := read(t, a, key, info.VersionID)
		if !bytes.Equal(got, body) {
			t.Fatalf("get returned %q, want %q", got, body)
		}
		if ginfo.VersionID != info.VersionID {
			t.Fatalf("get version %q, want %q", ginfo.VersionID, info.VersionID)
		}
		st, err := a.Stat(ctx, key, "")
		if err != nil {
			t.Fatal(err)
		}
		if st.SHA256 != sum(body) || st.Size != int64(len(body)) || st.VersionID != info.VersionID {
			t.Fatalf("stat = %+v, want sha %s size %d version %s", st, sum(body), len(body), info.VersionID)
		}
		if st.Retention.Mode != archive.Governance || !st.Retention.Until.Equal(locked.Until) {
			t.Fatalf("stat retention = %+v, want %+v", st.Retention, locked)
		}
		if st.LegalHold {
			t.Fatal("fresh object reports legal hold")
		}
	})

	t.Run("EmptyObject", func(t *testing.T) {
		info := put(t, a, "sessions/empty/manifest.sig", nil, archive.Retention{})
		got, _ := read(t, a, "sessions/empty/manifest.sig", info.VersionID)
		if len(got) != 0 {
			t.Fatalf("empty object read back %d bytes", len(got))
		}
	})

	t.Run("BadChecksumRefused", func(t *testing.T) {
		body := []byte("what the recorder wrote")
		key := "sessions/bad/segments/p/camera/000001-x.webm"
		_, err := a.Put(ctx, archive.PutRequest{Key: key, Body: bytes.NewReader(body), Size: int64(len(body)), SHA256: sum([]byte("something else")), Retention: locked})
		if !errors.Is(err, archive.ErrChecksumMismatch) {
			t.Fatalf("put with wrong sha256: err = %v, want ErrChecksumMismatch", err)
		}
		if _, err := a.Stat(ctx, key, ""); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("refused object exists anyway: stat err = %v", err)
		}
		// Corruption in the very last byte of a large body: the request must be
		// aborted on the final read, not completed.
		big := bytes.Repeat([]byte("segment "), 200_000)
		want := sum(big)
		big[len(big)-1] ^= 1
		_, err = a.Put(ctx, archive.PutRequest{Key: key, Body: bytes.NewReader(big), Size: int64(len(big)), SHA256: want, Retention: locked})
		if !errors.Is(err, archive.ErrChecksumMismatch) {
			t.Fatalf("put with corrupt last byte: err = %v, want ErrChecksumMismatch", err)
		}
		if _, err := a.Stat(ctx, key, ""); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("corrupt object exists anyway: stat err = %v", err)
		}
		// A body shorter than declared is refused too.
		_, err = a.Put(ctx, archive.PutRequest{Key: key, Body: bytes.NewReader(body[:5]), Size: int64(len(body)), SHA256: sum(body), Retention: locked})
		if !errors.Is(err, archive.ErrSizeMismatch) && !errors.Is(err, archive.ErrChecksumMismatch) {
			t.Fatalf("put with short body: err = %v, want a size or checksum error", err)
		}
		if _, err := a.Stat(ctx, key, ""); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("short object exists anyway: stat err = %v", err)
		}
	})

	t.Run("OverwriteKeepsLockedVersion", func(t *testing.T) {
		key := "sessions/ow/manifest.json"
		v1 := put(t, a, key, []byte("first"), locked)
		v2 := put(t, a, key, []byte("second, longer"), locked)
		if v1.VersionID == v2.VersionID {
			t.Fatalf("overwrite reused version %q", v1.VersionID)
		}
		if got, _ := read(t, a, key, v1.VersionID); string(got) != "first" {
			t.Fatalf("locked version now reads %q", got)
		}
		if got, info := read(t, a, key, ""); string(got) != "second, longer" || info.VersionID != v2.VersionID {
			t.Fatalf("latest = %q (%s), want second version %s", got, info.VersionID, v2.VersionID)
		}
	})

	t.Run("RetainedVersionCannotBeDeleted", func(t *testing.T) {
		key := "sessions/del/segments/p/camera/000001-x.webm"
		v := put(t, a, key, []byte("evidence"), locked)
		err := a.Delete(ctx, key, v.VersionID)
		if !errors.Is(err, archive.ErrRetained) {
			t.Fatalf("delete of retained version: err = %v, want ErrRetained", err)
		}
		if got, _ := read(t, a, key, v.VersionID); string(got) != "evidence" {
			t.Fatalf("retained version reads %q after refused delete", got)
		}
		free := put(t, a, "sessions/del/scratch", []byte("not evidence"), archive.Retention{})
		if err := a.Delete(ctx, "sessions/del/scratch", free.VersionID); err != nil {
			t.Fatalf("delete of unretained version: %v", err)
		}
		if _, err := a.Stat(ctx, "sessions/del/scratch", free.VersionID); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("deleted version still there: %v", err)
		}
	})

	t.Run("LegalHold", func(t *testing.T) {
		key := "sessions/hold/segments/p/camera/000001-x.webm"
		v := put(t, a, key, []byte("disputed"), archive.Retention{})
		if err := a.SetLegalHold(ctx, key, v.VersionID, true); err != nil {
			t.Fatalf("set legal hold: %v", err)
		}
		st, err := a.Stat(ctx, key, v.VersionID)
		if err != nil || !st.LegalHold {
			t.Fatalf("after hold on: legal hold = %v, err = %v", st.LegalHold, err)
		}
		if err := a.Delete(ctx, key, v.VersionID); !errors.Is(err, archive.ErrRetained) {
			t.Fatalf("delete under legal hold: err = %v, want ErrRetained", err)
		}
		if err := a.SetLegalHold(ctx, key, v.VersionID, false); err != nil {
			t.Fatalf("clear legal hold: %v", err)
		}
		st, err = a.Stat(ctx, key, v.VersionID)
		if err != nil || st.LegalHold {
			t.Fatalf("after hold off: legal hold = %v, err = %v", st.LegalHold, err)
		}
		if err := a.Delete(ctx, key, v.VersionID); err != nil {
			t.Fatalf("delete after hold cleared: %v", err)
		}
	})

	t.Run("ListByPrefix", func(t *testing.T) {
		for _, k := range []string{"sessions/la/manifest.json", "sessions/la/segments/p/camera/000002-x.webm", "sessions/la/segments/p/camera/000001-x.webm", "sessions/lab/manifest.json"} {
			put(t, a, k, []byte(k), archive.Retention{})
		}
		latest := put(t, a, "sessions/la/manifest.json", []byte("v2"), archive.Retention{})
		list, err := a.List(ctx, "sessions/la/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range list {
			keys = append(keys, o.Key)
			if o.Key == "sessions/la/manifest.json" && (o.VersionID != latest.VersionID || o.Size != 2) {
				t.Errorf("list gives %+v for the manifest, want latest version %s", o, latest.VersionID)
			}
		}
		want := "sessions/la/manifest.json,sessions/la/segments/p/camera/000001-x.webm,sessions/la/segments/p/camera/000002-x.webm"
		if strings.Join(keys, ",") != want {
			t.Fatalf("list = %v, want %s", keys, want)
		}
		if list, err := a.List(ctx, "sessions/none/"); err != nil || len(list) != 0 {
			t.Fatalf("list of empty prefix = %v, %v", list, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		if _, err := a.Stat(ctx, "sessions/nope/manifest.json", ""); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("stat missing key: %v", err)
		}
		if _, _, err := a.Get(ctx, "sessions/nope/manifest.json", ""); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("get missing key: %v", err)
		}
		put(t, a, "sessions/nv/manifest.json", []byte("x"), archive.Retention{})
		if _, err := a.Stat(ctx, "sessions/nv/manifest.json", missingVersion); !errors.Is(err, archive.ErrNotFound) {
			t.Fatalf("stat missing version: %v", err)
		}
	})

	t.Run("UnsafeKeysRefused", func(t *testing.T) {
		for _, k := range []string{"../x", "sessions/../../x", "a//b", "a/./b", "/abs", "a/b/", "a\x00b", "a\\b", "a\nb", ".hidden"} {
			_, err := a.Put(ctx, archive.PutRequest{Key: k, Body: strings.NewReader("x"), Size: 1, SHA256: sum([]byte("x"))})
			if !errors.Is(err, archive.ErrInvalidKey) {
				t.Errorf("put %q: err = %v, want ErrInvalidKey", k, err)
			}
			if _, _, err := a.Get(ctx, k, ""); !errors.Is(err, archive.ErrInvalidKey) {
				t.Errorf("get %q: err = %v, want ErrInvalidKey", k, err)
			}
		}
	})

	t.Run("RetentionNeedsDate", func(t *testing.T) {
		_, err := a.Put(ctx, archive.PutRequest{Key: "sessions/r/x", Body: strings.NewReader("x"), Size: 1, SHA256: sum([]byte("x")), Retention: archive.Retention{Mode: archive.Compliance}})
		if !errors.Is(err, archive.ErrInvalidRetention) {
			t.Fatalf("lock without date: err = %v, want ErrInvalidRetention", err)
		}
	})

	t.Run("PutFile", func(t *testing.T) {
		path := t.TempDir() + "/seg.webm"
		body := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: several reads
		if err := writeFile(path, body); err != nil {
			t.Fatal(err)
		}
		info, err := archive.PutFile(ctx, a, "sessions/pf/segments/p/camera/000001-x.webm", path, sum(body), locked, "video/webm")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := read(t, a, info.Key, info.VersionID)
		if !bytes.Equal(got, body) {
			t.Fatal("PutFile stored different bytes")
		}
	})
}

func TestDirContract(t *testing.T) {
	d, err := archive.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	runContract(t, d, fmt.Sprintf("%020d", 999))
}

func TestS3Contract(t *testing.T) {
	srv := miniotest.Start(t)
	s := newS3(t, srv, "contract")
	runContract(t, s, "6c6d4d5e-0d8b-4b4e-9e7f-2c1d3b4a5f60")
}
