package signaling

import "time"

// bucket is a token bucket driven by the caller's clock, so tests need no
// sleeps. It is owned by one connection's reader and not safe for
// concurrent use.
type bucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// allow takes one token if there is one.
func (b *bucket) allow(now time.Time) bool {
	if el := now.Sub(b.last); el > 0 {
		b.tokens += el.Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// flood tracks how long a client has been over its rate. A client that
// sends 60 messages a second gets most of them through, so "continuous"
// cannot mean "every message refused": a flood lasts as long as refusals
// keep coming less than gap apart.
type flood struct {
	gap, limit time.Duration
	errEvery   time.Duration

	start, lastRefusal, lastReport time.Time
}

// floodVerdict says what to do with a refused message.
type floodVerdict struct {
	report bool // send a rate_limited error now
	close  bool // the flood lasted too long: close with 4008
}

func (f *flood) refused(now time.Time) floodVerdict {
	newFlood := f.lastRefusal.IsZero() || now.Sub(f.lastRefusal) >= f.gap
	if newFlood {
		f.start = now
	}
	f.lastRefusal = now
	var v floodVerdict
	// One error per errEvery: answering each refused message would let a
	// flooding client fill its own outbound queue with our errors.
	if newFlood || now.Sub(f.lastReport) >= f.errEvery {
		v.report = true
		f.lastReport = now
	}
	if now.Sub(f.start) >= f.limit {
		v.close = true
	}
	return v
}
