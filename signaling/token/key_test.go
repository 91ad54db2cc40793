package token

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateKeyCreatesThenReloads(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != ed25519.PrivateKeySize {
		t.Fatalf("key size %d", len(k1))
	}
	path := filepath.Join(dir, "keys", "join-token.pem")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v, want 0700", di.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second call returned a different key")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("key dir holds %d entries, want 1", len(ents))
	}
	// A token signed with the loaded key verifies with its public half.
	tok, err := NewIssuer(k2, nil).Issue(Claims{Room: "r", Identity: "i", Role: RoleObserver, ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(k1.Public().(ed25519.PublicKey), nil).Verify(tok, "r"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateKeyConcurrentStart(t *testing.T) {
	for round := 0; round < 5; round++ {
		dir := t.TempDir()
		const n = 16
		keys := make([]ed25519.PrivateKey, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				keys[i], errs[i] = LoadOrCreateKey(dir)
			}()
		}
		close(start)
		wg.Wait()
		for i := 0; i < n; i++ {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if !keys[i].Equal(keys[0]) {
				t.Fatalf("caller %d got a different key than caller 0", i)
			}
		}
		onDisk, err := LoadOrCreateKey(dir)
		if err != nil || !onDisk.Equal(keys[0]) {
			t.Fatalf("key on disk differs from the one returned (%v)", err)
		}
	}
}

func TestLoadOrCreateKeyRejectsBadFiles(t *testing.T) {
	write := func(t *testing.T, data string, mode os.FileMode) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "keys", "join-token.pem")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("garbage", func(t *testing.T) {
		if _, err := LoadOrCreateKey(write(t, "hello", 0o600)); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("err %v, want ErrKeyFile", err)
		}
	})
	t.Run("wrong PEM type", func(t *testing.T) {
		pemData := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
		if _, err := LoadOrCreateKey(write(t, pemData, 0o600)); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("err %v, want ErrKeyFile", err)
		}
	})
	t.Run("world readable", func(t *testing.T) {
		good := t.TempDir()
		if _, err := LoadOrCreateKey(good); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(good, "keys", "join-token.pem")
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(good); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("err %v, want ErrKeyFile", err)
		}
	})
}
