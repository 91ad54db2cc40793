package accounts

import (
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Policy is when repeated failed sign-ins lock an account.
type Policy struct {
	// MaxFailures in a row lock the account. Default 5.
	MaxFailures int
	// LockFor is how long it stays locked. Default 15 minutes.
	LockFor time.Duration
}

// DefaultPolicy locks after 5 failures for 15 minutes.
func DefaultPolicy() Policy { return Policy{MaxFailures: 5, LockFor: 15 * time.Minute} }

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MaxFailures <= 0 {
		p.MaxFailures = d.MaxFailures
	}
	if p.LockFor <= 0 {
		p.LockFor = d.LockFor
	}
	return p
}

// Locked reports whether a is locked at now.
func (p Policy) Locked(a rooms.Account, now time.Time) bool {
	return now.Before(a.LockedUntil)
}

// RecordFailure counts a failed sign-in at now and locks the account when
// the count reaches MaxFailures. The count restarts after a lock, so an
// unlocked account gets MaxFailures fresh attempts. It reports whether this
// failure locked the account.
func (p Policy) RecordFailure(a *rooms.Account, now time.Time) bool {
	p = p.withDefaults()
	if p.Locked(*a, now) {
		return false
	}
	a.FailedLogins++
	if a.FailedLogins >= p.MaxFailures {
		a.FailedLogins = 0
		a.LockedUntil = now.Add(p.LockFor)
		return true
	}
	return false
}

// RecordSuccess clears failures after a successful sign-in.
func (p Policy) RecordSuccess(a *rooms.Account) {
	a.FailedLogins = 0
	a.LockedUntil = time.Time{}
}
