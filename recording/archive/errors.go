package archive

import "errors"

// Sentinel errors; implementations wrap them with %w so callers use errors.Is.
var (
	// ErrNotFound: the key or version does not exist.
	ErrNotFound = errors.New("archive: object not found")
	// ErrChecksumMismatch: the bytes did not hash to the SHA-256 given or stored.
	ErrChecksumMismatch = errors.New("archive: sha256 mismatch")
	// ErrSizeMismatch: the body was shorter or longer than the declared size.
	ErrSizeMismatch = errors.New("archive: size mismatch")
	// ErrRetained: the version is under retention or legal hold and cannot be
	// deleted or replaced.
	ErrRetained = errors.New("archive: object is retained (WORM)")
	// ErrInvalidKey: a key or key part is empty, too long or unsafe.
	ErrInvalidKey = errors.New("archive: invalid object key")
	// ErrInvalidArgument: a malformed request (nil body, bad digest...).
	ErrInvalidArgument = errors.New("archive: invalid argument")
	// ErrInvalidRetention: an unknown mode or a lock without a date.
	ErrInvalidRetention = errors.New("archive: invalid retention")
	// ErrNoObjectLock: the bucket exists but was created without object lock,
	// so nothing written there could be protected.
	ErrNoObjectLock = errors.New("archive: bucket has no object lock")
	// ErrConfig: the archive configuration is incomplete or inconsistent.
	ErrConfig = errors.New("archive: invalid configuration")
)
