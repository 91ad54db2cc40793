package token

import "errors"

var (
	// ErrInvalid: the token is missing, malformed, not signed with EdDSA by
	// our key, or lacks the issuer/audience/claims a join token must carry.
	ErrInvalid = errors.New("token: invalid join token")
	// ErrExpired: the token's exp has passed, or its nbf is still in the
	// future (beyond the allowed clock skew).
	ErrExpired = errors.New("token: join token expired or not yet valid")
	// ErrWrongRoom: the token is valid but was issued for another room.
	ErrWrongRoom = errors.New("token: join token is for another room")
	// ErrBadRole: the role claim is not supervisor, county or observer.
	ErrBadRole = errors.New("token: bad role")
	// ErrBadClaims: Issue was given claims that no verifier would accept.
	ErrBadClaims = errors.New("token: bad claims")
	// ErrKeyFile: the key file exists but cannot be used.
	ErrKeyFile = errors.New("token: unusable key file")
)
