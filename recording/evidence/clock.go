package evidence

import "time"

// Clock is the time source of the uploader: retention dates, manifest
// creation time and the backoff sleeps. Tests inject one that does not sleep.
type Clock interface {
	Now() time.Time
	// After is time.After: the uploader waits on it together with ctx.Done,
	// so a backoff never delays shutdown.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
