package rooms

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxUsernameLen caps account usernames.
const MaxUsernameLen = 64

// Account is a console user: supervisor, auditor or administrator. County
// officials have no accounts; they join with invitations.
type Account struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	Role        Role   `json:"role"`
	// PasswordHash is a PHC-style argon2id string (see rooms/accounts).
	PasswordHash string    `json:"passwordHash"`
	FailedLogins int       `json:"failedLogins"`
	LockedUntil  time.Time `json:"lockedUntil,omitzero"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	Version      int64     `json:"version"`
}

// Validate checks the fields a store must never accept wrong. Usernames are
// restricted to lower-case ASCII letters, digits and ".-_" so they are
// safe in keys, logs and URLs, and so "Zhang" and "zhang" cannot be two
// accounts (callers lower-case what users type).
func (a Account) Validate() error {
	switch {
	case a.ID == "":
		return fmt.Errorf("%w: account id is empty", ErrInvalid)
	case !validUsername(a.Username):
		return fmt.Errorf("%w: username must be 1 to %d of a-z 0-9 . - _", ErrInvalid, MaxUsernameLen)
	case !a.Role.AccountRole():
		return fmt.Errorf("%w: account role %q", ErrInvalid, a.Role)
	case utf8.RuneCountInString(a.DisplayName) > MaxNameLen:
		return fmt.Errorf("%w: display name longer than %d characters", ErrInvalid, MaxNameLen)
	case a.PasswordHash == "":
		return fmt.Errorf("%w: password hash is empty", ErrInvalid)
	}
	return nil
}

func validUsername(u string) bool {
	if u == "" || len(u) > MaxUsernameLen {
		return false
	}
	for _, c := range u {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
