package accounts

import "errors"

var (
	// ErrBadCredentials means the username or the password is wrong; which
	// one is not said, so usernames cannot be probed.
	ErrBadCredentials = errors.New("accounts: wrong username or password")
	// ErrLocked means too many failed sign-ins; the wrapping message says
	// until when.
	ErrLocked = errors.New("accounts: account locked after repeated failed sign-ins")
	// ErrMalformedHash means a stored password hash cannot be parsed.
	ErrMalformedHash = errors.New("accounts: malformed password hash")
	// ErrWeakPassword means the password does not meet the length policy.
	ErrWeakPassword = errors.New("accounts: password too short or too long")
)
