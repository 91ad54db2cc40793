package evidence

import "errors"

// Sentinel errors, wrapped with %w.
var (
	// ErrSessionClosed: the session's manifest is being (or was) made; no more
	// segments or gaps can join its chain.
	ErrSessionClosed = errors.New("evidence: session already closed")
	// ErrInvalidSegment: a segment or gap description is incomplete or inconsistent.
	ErrInvalidSegment = errors.New("evidence: invalid segment")
	// ErrCorruptSpool: a spool record cannot be read or breaks the chain.
	ErrCorruptSpool = errors.New("evidence: corrupt spool")
	// ErrKeyPermissions: the node key file is readable by others.
	ErrKeyPermissions = errors.New("evidence: node key file permissions too open")
	// ErrInvalidKey: a PEM block is not an Ed25519 key.
	ErrInvalidKey = errors.New("evidence: not an Ed25519 key")
	// ErrInvalidManifest: manifest input or content is malformed.
	ErrInvalidManifest = errors.New("evidence: invalid manifest")

	// errTooLarge: an object is bigger than anything ducha writes at its key.
	errTooLarge = errors.New("evidence: object too large")
)
