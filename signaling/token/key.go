package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keyFileName is relative to the data directory.
const keyFileName = "keys/join-token.pem"

// LoadOrCreateKey returns the node's join-token signing key, stored as a
// PKCS#8 PEM file at dataDir/keys/join-token.pem (mode 0600, directory 0700).
// The key is generated on first use.
//
// Several processes may start at once on a fresh data directory: the new key
// is written to a temporary file and hard-linked into place, and link never
// replaces an existing file, so exactly one key wins and every caller returns
// that one.
func LoadOrCreateKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, filepath.FromSlash(keyFileName))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("token: create key directory: %w", err)
	}
	key, err := readKey(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	return readKey(path)
}

func readKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	// Anyone who can read this file can mint join tokens for every room.
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is accessible by group or others (mode %v); run chmod 600 on it",
			ErrKeyFile, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s holds no PKCS#8 PEM block", ErrKeyFile, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeyFile, path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s holds a %T, want an Ed25519 key", ErrKeyFile, path, k)
	}
	return ek, nil
}

// createKey writes a fresh key to path unless a file is already there.
// Losing the race to another process is not an error.
func createKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("token: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("token: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	tmp, err := os.CreateTemp(filepath.Dir(path), ".join-token-*.tmp")
	if err != nil {
		return fmt.Errorf("token: create temporary key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	// CreateTemp already uses 0600; the Chmod guards against an odd umask
	// or platform default.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("token: chmod temporary key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write temporary key file: %w", err)
	}
	// The key must survive a crash once other nodes may have seen tokens
	// signed with it.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: sync temporary key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: close temporary key file: %w", err)
	}
	err = os.Link(tmpName, path)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return syncDir(filepath.Dir(path))
	default:
		// Some filesystems have no hard links; fall back to an exclusive
		// create, which still never replaces a key another process wrote.
		return createExclusive(path, data)
	}
}

func createExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token: create key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("token: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("token: sync key file: %w", err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("token: open key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("token: sync key directory: %w", err)
	}
	return nil
}
