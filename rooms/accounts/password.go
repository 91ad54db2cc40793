// Package accounts signs console users in: argon2id password hashes and a
// lockout after repeated failures, over a rooms.AccountStore.
package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Time    uint32 // passes over memory
	Memory  uint32 // KiB
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultParams follow the OWASP minimum for argon2id (19 MiB, 2 passes, 1
// thread): the servers have 2 cores shared with media forwarding, so a
// sign-in must not take a core for long.
func DefaultParams() Params {
	return Params{Time: 2, Memory: 19 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}
}

// Limits on parameters read from a stored hash, so a corrupt or hostile hash
// cannot make Verify allocate gigabytes.
const (
	maxMemory  = 1 << 20 // KiB = 1 GiB
	maxTime    = 64
	maxKeyLen  = 1024
	minKeyLen  = 16
	maxSaltLen = 1024
	minSaltLen = 8
)

// Password length policy, in bytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// Hash returns password hashed with argon2id as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
// rnd supplies the salt; nil means crypto/rand.
func Hash(password string, p Params, rnd io.Reader) (string, error) {
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return "", fmt.Errorf("%w: %d to %d bytes", ErrWeakPassword, MinPasswordLen, MaxPasswordLen)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("accounts: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC-encoded hash, comparing in
// constant time.
func Verify(encoded, password string) (bool, error) {
	p, salt, key, err := Decode(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordLen {
		return false, nil
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than p,
// so a successful sign-in can upgrade it.
func NeedsRehash(encoded string, p Params) bool {
	got, salt, key, err := Decode(encoded)
	if err != nil {
		return true
	}
	return got.Time != p.Time || got.Memory != p.Memory || got.Threads != p.Threads ||
		uint32(len(key)) != p.KeyLen || uint32(len(salt)) != p.SaltLen
}

// Decode parses a PHC argon2id string.
func Decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrMalformedHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	if p.Memory == 0 || p.Memory > maxMemory || p.Time == 0 || p.Time > maxTime || threads == 0 || threads > 255 || p.Memory < 8*threads {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters out of range %q", ErrMalformedHash, parts[3])
	}
	p.Threads = uint8(threads)
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return Params{}, nil, nil, fmt.Errorf("%w: salt", ErrMalformedHash)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return Params{}, nil, nil, fmt.Errorf("%w: hash", ErrMalformedHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
