package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

const (
	// CookieName is the console session cookie.
	CookieName = "ducha_session"
	// SessionLifetime is how long a sign-in lasts. Cookies are stateless, so
	// this is also the longest a stolen cookie stays useful; a password
	// change ends it sooner (see cookieSession.PW).
	SessionLifetime = 12 * time.Hour
	// MinCookieKeyLen is the shortest HMAC key accepted.
	MinCookieKeyLen = 32

	cookieKeyFile   = "keys/cookie.key"
	maxCookieLen    = 1024
	cookieMACDomain = "ducha-console-session-v1."
	pwMACDomain     = "ducha-console-password."
)

// cookieSession is what the signed cookie says. It is stateless: the server
// keeps nothing per sign-in.
type cookieSession struct {
	V    int        `json:"v"`
	Sub  string     `json:"sub"` // account ID
	Role rooms.Role `json:"role"`
	Exp  int64      `json:"exp"` // Unix seconds
	CSRF string     `json:"csrf"`
	// PW fingerprints the password hash at sign-in, so resetting a
	// password signs out every cookie issued before.
	PW string `json:"pw"`
}

// cookieCodec signs and checks session cookies with HMAC-SHA256.
type cookieCodec struct {
	key []byte
}

func (c cookieCodec) mac(domain, payload string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(domain))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// passwordFingerprint is a short keyed digest of a password hash; keyed so
// the cookie reveals nothing about the hash.
func (c cookieCodec) passwordFingerprint(hash string) string {
	return base64.RawURLEncoding.EncodeToString(c.mac(pwMACDomain, hash)[:12])
}

func (c cookieCodec) encode(s cookieSession) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(c.mac(cookieMACDomain, payload)), nil
}

// decode checks the signature and expiry of a cookie value. Anything else
// shaped like a token (a join JWT has three parts and no HMAC of ours) is
// refused.
func (c cookieCodec) decode(v string, now time.Time) (cookieSession, error) {
	if v == "" || len(v) > maxCookieLen {
		return cookieSession{}, fmt.Errorf("%w: empty or too long", ErrBadCookie)
	}
	payload, sig, ok := strings.Cut(v, ".")
	if !ok || strings.Contains(sig, ".") {
		return cookieSession{}, fmt.Errorf("%w: not two parts", ErrBadCookie)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.mac(cookieMACDomain, payload)) {
		return cookieSession{}, fmt.Errorf("%w: bad signature", ErrBadCookie)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return cookieSession{}, fmt.Errorf("%w: payload: %v", ErrBadCookie, err)
	}
	var s cookieSession
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return cookieSession{}, fmt.Errorf("%w: payload: %v", ErrBadCookie, err)
	}
	switch {
	case s.V != 1 || s.Sub == "" || s.CSRF == "" || !s.Role.AccountRole():
		return cookieSession{}, fmt.Errorf("%w: incomplete", ErrBadCookie)
	case !now.Before(time.Unix(s.Exp, 0)):
		return cookieSession{}, fmt.Errorf("%w: expired", ErrBadCookie)
	}
	return s, nil
}

func newCSRFToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// LoadOrCreateCookieKey returns the HMAC key for console cookies, stored hex
// encoded at dataDir/keys/cookie.key (mode 0600, directory 0700) and
// generated on first use. Every node of a deployment must share this file,
// or a sign-in works on one node only.
//
// Several processes starting on a fresh data directory agree on one key: the
// new key is hard-linked into place, which never replaces an existing file.
func LoadOrCreateCookieKey(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, filepath.FromSlash(cookieKeyFile))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("httpapi: create key directory: %w", err)
	}
	key, err := readCookieKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createCookieKey(path); err != nil {
		return nil, err
	}
	return readCookieKey(path)
}

func readCookieKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	// Whoever reads this file can sign in as any account.
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is accessible by group or others (mode %v); run chmod 600 on it",
			ErrKeyFile, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < MinCookieKeyLen {
		return nil, fmt.Errorf("%w: %s must hold at least %d hex-encoded bytes", ErrKeyFile, path, MinCookieKeyLen)
	}
	return key, nil
}

func createCookieKey(path string) error {
	key := make([]byte, MinCookieKeyLen)
	_, _ = rand.Read(key)
	data := []byte(hex.EncodeToString(key) + "\n")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cookie-key-*.tmp")
	if err != nil {
		return fmt.Errorf("httpapi: create temporary key file: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("httpapi: write temporary key file: %w", werr)
	}
	err = os.Link(name, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	// No hard links on this filesystem: an exclusive create still never
	// replaces a key another process wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("httpapi: create key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("httpapi: write key file: %w", err)
	}
	return f.Close()
}
