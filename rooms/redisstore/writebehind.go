package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// op is one queued write. apply must be idempotent: it may run again after an
// ambiguous failure. commit, when set, applies the write to the local cache;
// it runs once, when the op is accepted into the queue.
type op struct {
	name      string
	sessionID string
	apply     func(ctx context.Context) error
	commit    func()
}

// writeBehind keeps writes in order while Redis is unreachable and replays
// them, oldest first, from one goroutine. While anything is queued every new
// write is queued behind it, so a caller's writes reach Redis in the order
// the caller made them.
type writeBehind struct {
	clock      rooms.Clock
	log        *slog.Logger
	limit      int
	minBackoff time.Duration
	maxBackoff time.Duration
	opTimeout  time.Duration
	ping       func(ctx context.Context) error
	recovered  func(ctx context.Context) error // runs once Redis answers again, before replay
	onHealth   func(healthy bool, err error)

	wake chan struct{}
	// cbMu is taken before mu is released whenever health flips, so health
	// reports reach the log and onHealth in the order the flips happened.
	cbMu sync.Mutex

	mu        sync.Mutex
	queue     []op
	head      int
	reachable bool // the last Redis call succeeded
	reported  bool // health last reported to onHealth
	closed    bool
	lastErr   error
	changed   chan struct{} // closed on every state change, then replaced
	replayed  uint64
	failed    uint64
}

// Stats describes the write-behind state for logs and metrics.
type Stats struct {
	// Healthy is true when Redis answers and nothing is queued.
	Healthy bool
	// Queued is the number of writes waiting for Redis.
	Queued int
	// Replayed counts queued writes that reached Redis.
	Replayed uint64
	// Failed counts queued writes Redis refused for a reason other than
	// being unreachable (a conflicting change by another node); each one was
	// logged at error level.
	Failed uint64
	// LastError is the last Redis failure, empty when healthy.
	LastError string
}

func (w *writeBehind) init() {
	w.wake = make(chan struct{}, 1)
	w.changed = make(chan struct{})
	w.reachable, w.reported = true, true
}

// direct reports whether a write may go straight to Redis. After close it
// is false, so writes reach enqueue and are refused there.
func (w *writeBehind) direct() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.healthyLocked() && !w.closed
}

func (w *writeBehind) isReachable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reachable
}

func (w *writeBehind) healthyLocked() bool { return w.reachable && w.head == len(w.queue) }

// enqueue accepts o, or refuses it loudly when the queue is full: a refused
// write is reported to its caller, never dropped silently.
func (w *writeBehind) enqueue(o op) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return rooms.ErrClosed
	}
	if n := len(w.queue) - w.head; n >= w.limit {
		w.mu.Unlock()
		w.log.Error("write-behind queue full, refusing write", "op", o.name, "session", o.sessionID, "queued", n)
		return fmt.Errorf("%w: %w (%d writes waiting for redis)", rooms.ErrUnavailable, rooms.ErrQueueFull, n)
	}
	w.queue = append(w.queue, o)
	if o.commit != nil {
		o.commit()
	}
	w.changedUnlock()
	w.poke()
	return nil
}

// markDown records that Redis failed.
func (w *writeBehind) markDown(err error) {
	w.mu.Lock()
	w.reachable, w.lastErr = false, err
	w.changedUnlock()
	w.poke()
}

func (w *writeBehind) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// changedUnlock wakes flush waiters and reports a change of health. It
// unlocks w.mu so the callback runs without the lock held.
func (w *writeBehind) changedUnlock() {
	close(w.changed)
	w.changed = make(chan struct{})
	now := w.healthyLocked()
	flip := now != w.reported
	w.reported = now
	err, queued, replayed := w.lastErr, len(w.queue)-w.head, w.replayed
	if !flip {
		w.mu.Unlock()
		return
	}
	w.cbMu.Lock()
	defer w.cbMu.Unlock()
	w.mu.Unlock()
	if now {
		w.log.Info("redis healthy again, queued writes written", "replayed_total", replayed)
	} else {
		w.log.Warn("redis unreachable, keeping writes in memory until it is back", "err", err, "queued", queued)
	}
	if w.onHealth != nil {
		w.onHealth(now, err)
	}
}

func (w *writeBehind) stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Stats{
		Healthy:  w.healthyLocked(),
		Queued:   len(w.queue) - w.head,
		Replayed: w.replayed,
		Failed:   w.failed,
	}
	if !w.reachable && w.lastErr != nil {
		s.LastError = w.lastErr.Error()
	}
	return s
}

// flush waits until Redis is healthy and everything queued has reached it.
func (w *writeBehind) flush(ctx context.Context) error {
	return w.wait(ctx, w.healthyLocked)
}

// drain waits until the queue is empty, whether or not Redis answers.
func (w *writeBehind) drain(ctx context.Context) error {
	return w.wait(ctx, func() bool { return w.head == len(w.queue) })
}

func (w *writeBehind) wait(ctx context.Context, done func() bool) error {
	for {
		w.mu.Lock()
		ok := done()
		ch := w.changed
		n := len(w.queue) - w.head
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d writes queued: %w", ErrPendingWrites, n, ctx.Err())
		case <-ch:
		}
	}
}

// run drains the queue until ctx ends.
func (w *writeBehind) run(ctx context.Context) {
	backoff := w.minBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		for {
			progressed, err := w.step(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil && !progressed {
				break
			}
			if err == nil {
				backoff = w.minBackoff
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-w.clock.After(backoff):
			}
			backoff = nextBackoff(backoff, w.maxBackoff)
		}
	}
}

// step makes one unit of progress: reconnect, or replay the oldest queued
// write. It returns the transient error while Redis is unreachable, and
// progressed=false when there is nothing left to do.
func (w *writeBehind) step(ctx context.Context) (progressed bool, err error) {
	w.mu.Lock()
	reachable, empty := w.reachable, w.head == len(w.queue)
	var o op
	if !empty {
		o = w.queue[w.head]
	}
	w.mu.Unlock()

	if !reachable {
		octx, cancel := context.WithTimeout(ctx, w.opTimeout)
		err := w.ping(octx)
		if err == nil && w.recovered != nil {
			if rerr := w.recovered(octx); transient(rerr) {
				err = rerr
			} else if rerr != nil {
				// Retrying would not help and would hold every queued write
				// back; say so and go on.
				w.log.Error("checking redis after reconnecting failed", "err", rerr)
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.markDown(err)
			}
			return false, err
		}
		w.mu.Lock()
		w.reachable, w.lastErr = true, nil
		w.changedUnlock()
		return true, nil
	}
	if empty {
		return false, nil
	}

	octx, cancel := context.WithTimeout(ctx, w.opTimeout)
	err = o.apply(octx)
	cancel()
	if ctx.Err() != nil {
		// Stopping: the write stays queued and Close reports it.
		return false, ctx.Err()
	}
	if err != nil && transient(err) {
		w.markDown(err)
		return false, err
	}
	if err != nil {
		w.log.Error("queued write refused by redis, not applied", "op", o.name, "session", o.sessionID, "err", err)
	}
	w.mu.Lock()
	w.queue[w.head] = op{}
	w.head++
	if err != nil {
		w.failed++
	} else {
		w.replayed++
	}
	switch {
	case w.head == len(w.queue) && cap(w.queue) > 4096:
		// A long outage grew the queue; do not keep its memory forever.
		w.queue, w.head = nil, 0
	case w.head == len(w.queue):
		w.queue, w.head = w.queue[:0], 0
	case w.head > 1024 && w.head*2 > len(w.queue):
		w.queue, w.head = append([]op(nil), w.queue[w.head:]...), 0
	}
	w.changedUnlock()
	return true, nil
}

func (w *writeBehind) close() {
	w.mu.Lock()
	w.closed = true
	w.changedUnlock()
}

// nextBackoff doubles d up to limit.
func nextBackoff(d, limit time.Duration) time.Duration {
	return min(2*d, limit)
}
