package accounts

import (
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func TestPolicy(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	p := Policy{} // defaults: 5 failures, 15 minutes
	var a rooms.Account
	for i := 1; i <= 4; i++ {
		if p.RecordFailure(&a, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("locked after %d failures", i)
		}
		if a.FailedLogins != i || p.Locked(a, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("after %d failures: %+v", i, a)
		}
	}
	lockAt := t0.Add(5 * time.Second)
	if !p.RecordFailure(&a, lockAt) {
		t.Fatal("5th failure did not lock")
	}
	cases := []struct {
		at     time.Time
		locked bool
	}{
		{lockAt, true},
		{lockAt.Add(15*time.Minute - time.Nanosecond), true},
		{lockAt.Add(15 * time.Minute), false},
	}
	for _, c := range cases {
		if got := p.Locked(a, c.at); got != c.locked {
			t.Errorf("Locked at +%v = %v, want %v", c.at.Sub(lockAt), got, c.locked)
		}
	}
	// Failures while locked do not extend the lock or count.
	if p.RecordFailure(&a, lockAt.Add(time.Minute)) || !a.LockedUntil.Equal(lockAt.Add(15*time.Minute)) || a.FailedLogins != 0 {
		t.Fatalf("failure while locked changed %+v", a)
	}
	// After the lock expires, a fresh set of attempts.
	after := lockAt.Add(16 * time.Minute)
	if p.RecordFailure(&a, after) || a.FailedLogins != 1 {
		t.Fatalf("first failure after unlock: %+v", a)
	}
	p.RecordSuccess(&a)
	if a.FailedLogins != 0 || !a.LockedUntil.IsZero() {
		t.Fatalf("success did not clear: %+v", a)
	}

	custom := Policy{MaxFailures: 2, LockFor: time.Hour}
	var b rooms.Account
	custom.RecordFailure(&b, t0)
	if !custom.RecordFailure(&b, t0) || !b.LockedUntil.Equal(t0.Add(time.Hour)) {
		t.Fatalf("custom policy: %+v", b)
	}
}
