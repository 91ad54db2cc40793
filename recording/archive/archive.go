// Package archive stores evidence objects (recording segments, manifests and
// their signatures) where they cannot be silently replaced or deleted before
// their retention date: a directory for the embedded default, and an S3 bucket
// with object lock (MinIO in production) for real deployments.
//
// Every write carries the SHA-256 the caller already computed; an archive
// refuses the object when the bytes it received do not hash to that value, so a
// segment that changed in the spool between hashing and upload never reaches the
// archive under the old hash.
package archive

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"
)

// Mode is an object-lock retention mode, spelled as S3 spells it.
type Mode string

// Retention modes. NoRetention writes objects without a lock; it exists for
// tests and for buckets an operator deliberately runs without WORM.
const (
	NoRetention Mode = ""
	Compliance  Mode = "COMPLIANCE"
	Governance  Mode = "GOVERNANCE"
)

// Valid reports whether m is a mode an archive accepts.
func (m Mode) Valid() bool {
	return m == NoRetention || m == Compliance || m == Governance
}

// ParseMode accepts the mode names in any letter case.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "none", "NONE":
		return NoRetention, nil
	case "COMPLIANCE", "compliance", "Compliance":
		return Compliance, nil
	case "GOVERNANCE", "governance", "Governance":
		return Governance, nil
	}
	return NoRetention, fmt.Errorf("%w: %q (want COMPLIANCE or GOVERNANCE)", ErrInvalidRetention, s)
}

// Retention is the lock put on one object version.
type Retention struct {
	Mode  Mode
	Until time.Time
}

// IsZero reports whether r asks for no lock at all.
func (r Retention) IsZero() bool { return r.Mode == NoRetention }

// validate refuses a lock without a date or with an unknown mode: both would be
// silently dropped by some servers, leaving evidence deletable.
func (r Retention) validate() error {
	if !r.Mode.Valid() {
		return fmt.Errorf("%w: unknown mode %q", ErrInvalidRetention, r.Mode)
	}
	if r.Mode != NoRetention && r.Until.IsZero() {
		return fmt.Errorf("%w: mode %s without a retain-until date", ErrInvalidRetention, r.Mode)
	}
	return nil
}

// ActiveAt reports whether the retention still protects the object at now.
func (r Retention) ActiveAt(now time.Time) bool {
	return r.Mode != NoRetention && now.Before(r.Until)
}

// Policy is how long new objects are retained; the uploader turns it into a
// Retention at write time.
type Policy struct {
	Mode Mode
	Days int
}

// Validate checks the policy is usable.
func (p Policy) Validate() error {
	if !p.Mode.Valid() {
		return fmt.Errorf("%w: unknown mode %q", ErrInvalidRetention, p.Mode)
	}
	if p.Mode != NoRetention && p.Days <= 0 {
		return fmt.Errorf("%w: mode %s needs a positive number of days", ErrInvalidRetention, p.Mode)
	}
	return nil
}

// RetentionAt returns the retention for an object written at now.
func (p Policy) RetentionAt(now time.Time) Retention {
	if p.Mode == NoRetention {
		return Retention{}
	}
	return Retention{Mode: p.Mode, Until: now.Add(time.Duration(p.Days) * 24 * time.Hour).UTC()}
}

// ObjectInfo describes one stored object version.
type ObjectInfo struct {
	Key       string
	VersionID string // "" when the store does not keep versions
	SHA256    string // lowercase hex; "" when the store did not report it (List)
	Size      int64
	Modified  time.Time
	Retention Retention
	LegalHold bool
}

// PutRequest is one object to store.
type PutRequest struct {
	Key string
	// Body is read exactly once, to Size bytes.
	Body io.Reader
	Size int64
	// SHA256 is the lowercase hex digest the caller computed; the write fails
	// with ErrChecksumMismatch when Body does not hash to it.
	SHA256      string
	Retention   Retention
	ContentType string
}

func (r PutRequest) validate() error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	if r.Body == nil {
		return fmt.Errorf("%w: nil body for %s", ErrInvalidArgument, r.Key)
	}
	if r.Size < 0 {
		return fmt.Errorf("%w: negative size for %s", ErrInvalidArgument, r.Key)
	}
	if err := ValidateSHA256(r.SHA256); err != nil {
		return err
	}
	return r.Retention.validate()
}

// Archive is what the evidence uploader and verifier need from a store. Both
// Dir and S3 implement it; the contract tests hold them to the same behaviour.
type Archive interface {
	// Put stores a new version of req.Key and returns what the store confirmed.
	Put(ctx context.Context, req PutRequest) (ObjectInfo, error)
	// Get opens one version ("" means the latest). The caller closes the reader.
	Get(ctx context.Context, key, versionID string) (io.ReadCloser, ObjectInfo, error)
	// Stat describes one version ("" means the latest).
	Stat(ctx context.Context, key, versionID string) (ObjectInfo, error)
	// List returns the latest version of every key under prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// SetLegalHold turns the legal hold of one version on or off.
	SetLegalHold(ctx context.Context, key, versionID string, on bool) error
}

// ValidateSHA256 checks s is a lowercase hex SHA-256 digest.
func ValidateSHA256(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrInvalidArgument, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: sha256 %q is not lowercase hex", ErrInvalidArgument, s)
		}
	}
	return nil
}

// Putter is the one method PutFile needs.
type Putter interface {
	Put(ctx context.Context, req PutRequest) (ObjectInfo, error)
}

// PutFile is a convenience over Put for a file on disk: it passes the file's
// size from the open handle so the store never has to guess it.
func PutFile(ctx context.Context, a Putter, key, path, sha256Hex string, ret Retention, contentType string) (ObjectInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", path, err)
	}
	return a.Put(ctx, PutRequest{
		Key: key, Body: f, Size: st.Size(), SHA256: sha256Hex,
		Retention: ret, ContentType: contentType,
	})
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
