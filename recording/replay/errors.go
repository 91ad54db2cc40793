package replay

import "errors"

// Sentinel errors, wrapped with %w.
var (
	// ErrNotFound: no such recording in the index or the archive.
	ErrNotFound = errors.New("replay: recording not found")
	// ErrSegmentNotFound: the recording has no segment with that index.
	ErrSegmentNotFound = errors.New("replay: no such segment")
	// ErrSegmentLost: the manifest declares the segment lost before archiving.
	ErrSegmentLost = errors.New("replay: segment was lost before archiving")
	// ErrSegmentMissing: the manifest names the segment but the archive does
	// not hold it (deleted or never uploaded).
	ErrSegmentMissing = errors.New("replay: segment missing from the archive")
	// ErrInvalidManifest: a manifest that cannot be read as one.
	ErrInvalidManifest = errors.New("replay: invalid manifest")
	// ErrAccessLog: an access could not be recorded; the access must then be
	// refused, since unrecorded access is what the log exists to prevent.
	ErrAccessLog = errors.New("replay: access log unavailable")
	// ErrInvalidRange: an access-log query with a bad time range.
	ErrInvalidRange = errors.New("replay: invalid time range")
	// ErrConfig: New was given an unusable Config.
	ErrConfig = errors.New("replay: invalid config")
)
