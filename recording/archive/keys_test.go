package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

func TestEscapePart(t *testing.T) {
	cases := []struct{ in, want string }{
		{"abc-DEF_123", "abc-DEF_123"},
		{"a.b", "a.b"},
		{".", "%2E"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"a/b", "a%2Fb"},
		{"../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd"},
		{"a\\b", "a%5Cb"},
		{"a\x00b\nc", "a%00b%0Ac"},
		{"100%", "100%25"},
		{"县 01", "%E5%8E%BF%2001"},
	}
	for _, c := range cases {
		got, err := archive.EscapePart(c.in)
		if err != nil || got != c.want {
			t.Errorf("EscapePart(%q) = %q, %v; want %q", c.in, got, err, c.want)
			continue
		}
		if strings.Contains(got, "/") || got == "." || got == ".." || strings.HasPrefix(got, ".") {
			t.Errorf("EscapePart(%q) = %q is not one safe component", c.in, got)
		}
		back, err := archive.UnescapePart(got)
		if err != nil || back != c.in {
			t.Errorf("UnescapePart(%q) = %q, %v; want %q", got, back, err, c.in)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 129), "\xff\xfe"} {
		if _, err := archive.EscapePart(bad); !errors.Is(err, archive.ErrInvalidKey) {
			t.Errorf("EscapePart(%q): err = %v, want ErrInvalidKey", bad, err)
		}
	}
	// Injective: ids that differ only by what gets escaped stay apart.
	a, _ := archive.EscapePart("a/b")
	b, _ := archive.EscapePart("a%2Fb")
	if a == b {
		t.Fatalf("%q and %q escape to the same part", "a/b", "a%2Fb")
	}
}

func TestSegmentKeyShape(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.FixedZone("CST", 8*3600))
	key, err := archive.SegmentKey("sess-1", "county-7", "camera", 12, start, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "sessions/sess-1/segments/county-7/camera/000012-20260303T210607.890Z.webm"
	if key != want {
		t.Fatalf("SegmentKey = %q, want %q", key, want)
	}
	if _, err := archive.SegmentKey("s", "p", "camera", 1, start, "../x"); !errors.Is(err, archive.ErrInvalidKey) {
		t.Fatalf("bad extension accepted: %v", err)
	}
	mk, _ := archive.ManifestKey("sess-1")
	sk, _ := archive.SignatureKey("sess-1")
	if mk != "sessions/sess-1/manifest.json" || sk != "sessions/sess-1/manifest.sig" {
		t.Fatalf("manifest keys %q %q", mk, sk)
	}
}

// Hostile ids from invitation links or client messages must stay inside the
// archive root, each as a single escaped directory level.
func TestHostileIDsStayInsideDir(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "archive")
	d, err := archive.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{"..", "../..", "../../../../tmp/x", "/etc/passwd", "a\x00b", "con\r\nsole", ".", "a/../../b"}
	for i, id := range hostile {
		key, err := archive.SegmentKey(id, id, id, uint64(i), time.Unix(0, 0), "")
		if err != nil {
			t.Fatalf("SegmentKey(%q): %v", id, err)
		}
		if err := archive.ValidateKey(key); err != nil {
			t.Fatalf("SegmentKey(%q) = %q fails ValidateKey: %v", id, key, err)
		}
		if n := strings.Count(key, "/"); n != 5 {
			t.Fatalf("SegmentKey(%q) = %q has %d slashes, want 5", id, key, n)
		}
		put(t, d, key, []byte(id), archive.Retention{})
	}
	entries, err := os.ReadDir(outer)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "archive" {
		t.Fatalf("archive wrote outside its root: %v", entries)
	}
	var files int
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, "..") {
			t.Errorf("file outside root: %s", p)
		}
		if strings.ContainsAny(rel, "\x00\r\n") {
			t.Errorf("control character in path %q", rel)
		}
		if !e.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 2*len(hostile) { // one data and one meta file each
		t.Fatalf("found %d files, want %d", files, 2*len(hostile))
	}
}

func TestDirFilesReadOnlyAndRetentionExpires(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d, err := archive.NewDir(t.TempDir(), archive.WithDirClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "sessions/s/segments/p/camera/000001-x.webm"
	v := put(t, d, key, []byte("locked"), archive.Retention{Mode: archive.Compliance, Until: now.Add(24 * time.Hour)})

	var modes []fs.FileMode
	filepath.WalkDir(d.Root(), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			st, _ := os.Stat(p)
			modes = append(modes, st.Mode().Perm())
		}
		return nil
	})
	for _, m := range modes {
		if m&0o222 != 0 {
			t.Fatalf("archived file is writable: %v", m)
		}
	}
	if err := d.Delete(ctx, key, v.VersionID); !errors.Is(err, archive.ErrRetained) {
		t.Fatalf("delete before expiry: %v", err)
	}
	now = now.Add(25 * time.Hour)
	if err := d.Delete(ctx, key, v.VersionID); err != nil {
		t.Fatalf("delete after expiry: %v", err)
	}
	if _, err := d.Stat(ctx, key, ""); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("stat after delete: %v", err)
	}
	// A new version after the deletion never reuses the old id.
	v2 := put(t, d, key, []byte("again"), archive.Retention{})
	if v2.VersionID <= v.VersionID {
		t.Fatalf("version %s reused or went backwards after %s", v2.VersionID, v.VersionID)
	}
	// A data file truncated behind the archive's back shows in Stat's size.
	dataPath := filepath.Join(d.Root(), filepath.FromSlash(key)+"@v", v2.VersionID+"-"+filepath.Base(key))
	if err := os.Chmod(dataPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dataPath, []byte("ag"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := d.Stat(ctx, key, v2.VersionID)
	if err != nil || st.Size != 2 {
		t.Fatalf("stat of truncated file: size %d, %v", st.Size, err)
	}
	if got, _ := read(t, d, key, v2.VersionID); !bytes.Equal(got, []byte("ag")) {
		t.Fatalf("read %q", got)
	}
}
