package archive

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Object keys:
//
//	sessions/<session>/segments/<participant>/<source>/<seq>-<start>.<ext>
//	sessions/<session>/manifest.json
//	sessions/<session>/manifest.sig
//
// Session, participant and source ids come from users (invitation links, client
// messages), so each is escaped into one safe path component before it is used:
// a key never contains "..", ".", an empty component, a backslash or a control
// character, whatever the ids were.

// maxPartLen bounds one raw id; S3 keys are limited to 1024 bytes in total.
const maxPartLen = 128

// startLayout sorts lexically in time order and has no characters that need
// escaping in URLs or file names.
const startLayout = "20060102T150405.000Z"

// EscapePart turns a user-controlled id into one safe key component. Letters,
// digits, '-' and '_' are kept; '.' is kept except in first position (so "."
// and ".." cannot appear and files are never hidden); every other byte,
// including '%' itself, becomes %XX. The mapping is injective, so two
// different ids never share a key.
func EscapePart(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: empty id", ErrInvalidKey)
	}
	if len(id) > maxPartLen {
		return "", fmt.Errorf("%w: id longer than %d bytes", ErrInvalidKey, maxPartLen)
	}
	if !utf8.ValidString(id) {
		return "", fmt.Errorf("%w: id is not valid UTF-8", ErrInvalidKey)
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case isPlain(c), c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String(), nil
}

// UnescapePart reverses EscapePart.
func UnescapePart(part string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(part); i++ {
		c := part[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(part) {
			return "", fmt.Errorf("%w: truncated escape in %q", ErrInvalidKey, part)
		}
		v, err := strconv.ParseUint(part[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("%w: bad escape in %q", ErrInvalidKey, part)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// ValidateKey checks a full key only uses what the key builders produce: safe
// components separated by single slashes. Every implementation calls it, so a
// key read from a tampered manifest cannot reach outside the archive.
func ValidateKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: %q has a bad length", ErrInvalidKey, key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || part[0] == '.' {
			return fmt.Errorf("%w: %q has an empty or dot component", ErrInvalidKey, key)
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; !isPlain(c) && c != '.' && c != '%' {
				return fmt.Errorf("%w: %q contains %q", ErrInvalidKey, key, c)
			}
		}
	}
	return nil
}

// validatePrefix accepts "" or anything that could begin a valid key.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	// A trailing slash is normal for a prefix; the rest must be key-shaped.
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// SessionPrefix is the prefix of every object of a session, with a trailing slash.
func SessionPrefix(sessionID string) (string, error) {
	s, err := EscapePart(sessionID)
	if err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return "sessions/" + s + "/", nil
}

// ManifestKey is where a session's manifest is stored.
func ManifestKey(sessionID string) (string, error) {
	p, err := SessionPrefix(sessionID)
	if err != nil {
		return "", err
	}
	return p + "manifest.json", nil
}

// SignatureKey is where the Ed25519 signature of the manifest is stored.
func SignatureKey(sessionID string) (string, error) {
	p, err := SessionPrefix(sessionID)
	if err != nil {
		return "", err
	}
	return p + "manifest.sig", nil
}

// SegmentKey names one recorded segment. ext is the container ("webm", "mp4");
// "" means webm.
func SegmentKey(sessionID, participantID, source string, seq uint64, start time.Time, ext string) (string, error) {
	p, err := SessionPrefix(sessionID)
	if err != nil {
		return "", err
	}
	part, err := EscapePart(participantID)
	if err != nil {
		return "", fmt.Errorf("participant id: %w", err)
	}
	src, err := EscapePart(source)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	if ext == "" {
		ext = "webm"
	}
	if len(ext) > 8 {
		return "", fmt.Errorf("%w: extension %q", ErrInvalidKey, ext)
	}
	for i := 0; i < len(ext); i++ {
		if c := ext[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return "", fmt.Errorf("%w: extension %q", ErrInvalidKey, ext)
		}
	}
	return fmt.Sprintf("%ssegments/%s/%s/%06d-%s.%s", p, part, src, seq, start.UTC().Format(startLayout), ext), nil
}
