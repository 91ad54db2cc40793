package evidence_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ducha-dev/ducha/recording/evidence"
)

func TestNodeKeyCreateLoadExport(t *testing.T) {
	dir := t.TempDir()
	k1, err := evidence.LoadOrCreateNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := evidence.NodeKeyPath(dir)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v, want 0700", dst.Mode().Perm())
	}
	k2, err := evidence.LoadOrCreateNodeKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load gave a different key (%v)", err)
	}
	pemBytes, err := evidence.PublicKeyPEM(pubOf(k1))
	if err != nil || !bytes.Contains(pemBytes, []byte("BEGIN PUBLIC KEY")) {
		t.Fatalf("PublicKeyPEM = %s, %v", pemBytes, err)
	}
	for _, in := range [][]byte{pemBytes, mustRead(t, path)} {
		pub, err := evidence.ParsePublicKeyPEM(in)
		if err != nil || !pub.Equal(pubOf(k1)) {
			t.Fatalf("ParsePublicKeyPEM: %v", err)
		}
	}
	if _, err := evidence.ParsePublicKeyPEM([]byte("not pem")); !errors.Is(err, evidence.ErrInvalidKey) {
		t.Fatalf("garbage accepted: %v", err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.LoadOrCreateNodeKey(dir); !errors.Is(err, evidence.ErrKeyPermissions) {
		t.Fatalf("world-readable key: err = %v, want ErrKeyPermissions", err)
	}
}

// An outsider checks a manifest signature with openssl alone.
func TestSignatureVerifiesWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not installed (CI=true): apt-get install -y openssl")
		}
		t.Skip("openssl not installed; run `make test`")
	}
	dir := t.TempDir()
	k, err := evidence.LoadOrCreateNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := evidence.PublicKeyPEM(pubOf(k))
	manifest := []byte(`{"format":"ducha-evidence-manifest/1","session":{"id":"s"}}` + "\n")
	files := map[string][]byte{"pub.pem": pemBytes, "manifest.json": manifest, "manifest.sig": evidence.SignManifest(k, manifest)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func() error {
		cmd := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
			"-in", "manifest.json", "-sigfile", "manifest.sig")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	}
	if err := check(); err != nil {
		t.Fatalf("openssl rejects a good signature: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(manifest, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	if check() == nil {
		t.Fatal("openssl accepts the signature for altered manifest bytes")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
