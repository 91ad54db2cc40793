package mux

import "errors"

// Sentinel errors. Callers match them with errors.Is; the recorder wraps them
// with the detail that explains the case.
var (
	// ErrInvalidConfig is returned by New when the configuration cannot work.
	ErrInvalidConfig = errors.New("mux: invalid recorder config")
	// ErrUnsafeName is returned when a file name component could escape the
	// spool directory or is otherwise not a plain identifier.
	ErrUnsafeName = errors.New("mux: unsafe file name")
	// ErrUnsupportedCodec is returned for a MIME type the recorder cannot
	// re-mux without transcoding.
	ErrUnsupportedCodec = errors.New("mux: unsupported codec")
	// ErrTrackExists is returned when a second track of the same kind is
	// added: one recorder holds at most one audio and one video track.
	ErrTrackExists = errors.New("mux: track of this kind already recorded")
	// ErrTrackRemoved is returned by WriteRTP after the track was removed.
	ErrTrackRemoved = errors.New("mux: track removed from recorder")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("mux: recorder closed")
	// ErrMalformedPacket marks an RTP payload that its depacketizer rejects.
	ErrMalformedPacket = errors.New("mux: malformed RTP payload")
	// ErrWrite marks a failure to write or sync a segment file.
	ErrWrite = errors.New("mux: writing segment failed")

	errBadSPS = errors.New("mux: malformed H.264 SPS")
)
