package httpapi

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func TestLoadOrCreateCookieKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateCookieKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != MinCookieKeyLen {
		t.Fatalf("key of %d bytes", len(k1))
	}
	path := filepath.Join(dir, "keys", "cookie.key")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v", di.Mode())
	}
	k2, err := LoadOrCreateCookieKey(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("reload gave another key (%v)", err)
	}

	// Readable by others: refused with advice.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCookieKey(dir); !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	for name, content := range map[string]string{"not hex": "zz\n", "short": strings.Repeat("ab", 31) + "\n", "empty": ""} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCookieKey(dir); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s key file: %v", name, err)
		}
	}
}

// TestCookieKeyConcurrentStart: nodes starting together on a fresh data
// directory agree on one key.
func TestCookieKeyConcurrentStart(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateCookieKey(dir) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("caller %d: %v (keys differ: %v)", i, errs[i], !bytes.Equal(keys[i], keys[0]))
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "keys", ".cookie-key-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestCookieCodec(t *testing.T) {
	c := cookieCodec{key: bytes.Repeat([]byte{7}, 32)}
	now := time.Unix(1_772_000_000, 0)
	s := cookieSession{V: 1, Sub: "A1", Role: rooms.RoleAuditor, Exp: now.Add(time.Hour).Unix(), CSRF: "tok", PW: "fp"}
	v, err := c.encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.decode(v, now)
	if err != nil || got != s {
		t.Fatalf("round trip %+v, %v", got, err)
	}
	other := cookieCodec{key: bytes.Repeat([]byte{8}, 32)}
	forged, _ := other.encode(s)
	bad := []struct {
		name string
		v    string
		now  time.Time
	}{
		{"expired", v, now.Add(time.Hour)},
		{"other key", forged, now},
		{"empty", "", now},
		{"jwt shape", v + ".x", now},
		{"no signature", strings.Split(v, ".")[0], now},
		{"huge", strings.Repeat("a", 2000), now},
	}
	for _, b := range bad {
		if _, err := c.decode(b.v, b.now); !errors.Is(err, ErrBadCookie) {
			t.Errorf("%s: %v", b.name, err)
		}
	}
	// Signed but incomplete or with a non-account role: refused.
	for _, mod := range []func(*cookieSession){
		func(s *cookieSession) { s.V = 2 },
		func(s *cookieSession) { s.Sub = "" },
		func(s *cookieSession) { s.CSRF = "" },
		func(s *cookieSession) { s.Role = rooms.RoleCounty },
	} {
		x := s
		mod(&x)
		v, _ := c.encode(x)
		if _, err := c.decode(v, now); !errors.Is(err, ErrBadCookie) {
			t.Errorf("incomplete %+v accepted", x)
		}
	}
	if c.passwordFingerprint("h1") == c.passwordFingerprint("h2") || c.passwordFingerprint("h1") == other.passwordFingerprint("h1") {
		t.Fatal("fingerprints collide")
	}
}
