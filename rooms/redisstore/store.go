package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Prefix starts every key, e.g. "ducha:". Several deployments or tests
	// can share one Redis database with different prefixes.
	Prefix string
	// Logger receives health changes and refused writes. Default: discard.
	Logger *slog.Logger
	// Clock stamps CreatedAt/LastSeen defaults and times the retry backoff.
	// Default: the system clock.
	Clock rooms.Clock
	// QueueLimit bounds the write-behind queue. Default 100000.
	QueueLimit int
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts. Defaults 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// OpTimeout bounds one Redis round trip, so a hung Redis sends writes to
	// the queue instead of blocking callers. Default 2s.
	OpTimeout time.Duration
	// CloseTimeout bounds how long Close waits for queued writes. Default 5s.
	CloseTimeout time.Duration
	// OnHealth, when set, is called on every change of Healthy, in order,
	// from the goroutine that noticed it. Keep it short (update a gauge, log)
	// and do not write to the store from it.
	OnHealth func(healthy bool, err error)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = rooms.SystemClock{}
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 100_000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
}

// Store is the Redis rooms.Store. See the package documentation for the key
// layout and what happens while Redis is unreachable.
type Store struct {
	rdb       redis.UniversalClient
	ownClient bool
	k         keys
	clock     rooms.Clock
	log       *slog.Logger
	opTimeout time.Duration
	closeWait time.Duration
	sc        scripts
	cache     *cache
	wb        writeBehind
	// fallbackMu serialises writes made against the cache, so two of them
	// never start from the same cached version.
	fallbackMu sync.Mutex

	epochMu sync.Mutex
	epoch   string

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ rooms.Store = (*Store)(nil)

// Open connects to the Redis at url (redis://[user:pass@]host:port/db, as in
// DUCHA_REDIS_URL) and returns a store that owns the client.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: redis url: %w", err)
	}
	Tune(ro)
	rdb := redis.NewClient(ro)
	s, err := New(ctx, rdb, opts)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	s.ownClient = true
	return s, nil
}

// Tune fills client options that suit the write-behind queue, where the URL
// or caller left them unset: no hidden retries (the queue retries, in order)
// and short timeouts (an unreachable Redis must not hold callers for long).
func Tune(ro *redis.Options) {
	if ro.MaxRetries == 0 {
		ro.MaxRetries = -1
	}
	if ro.DialerRetries == 0 {
		ro.DialerRetries = 1
	}
	if ro.DialTimeout == 0 {
		ro.DialTimeout = time.Second
	}
	if ro.ReadTimeout == 0 {
		ro.ReadTimeout = 2 * time.Second
	}
	if ro.WriteTimeout == 0 {
		ro.WriteTimeout = 2 * time.Second
	}
}

// New returns a store over rdb. It does not fail when Redis is down: the
// store starts unhealthy and queues writes until Redis answers. The caller
// keeps ownership of rdb.
func New(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Store, error) {
	opts.defaults()
	s := &Store{
		rdb:       rdb,
		k:         keys{p: opts.Prefix},
		clock:     opts.Clock,
		log:       opts.Logger.With("component", "redisstore", "prefix", opts.Prefix),
		opTimeout: opts.OpTimeout,
		closeWait: opts.CloseTimeout,
		sc:        newScripts(),
		cache:     newCache(),
		done:      make(chan struct{}),
	}
	s.wb = writeBehind{
		clock:      opts.Clock,
		log:        s.log,
		limit:      opts.QueueLimit,
		minBackoff: opts.MinBackoff,
		maxBackoff: opts.MaxBackoff,
		opTimeout:  opts.OpTimeout,
		ping:       func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		recovered:  s.checkEpoch,
		onHealth:   opts.OnHealth,
	}
	s.wb.init()
	octx, cancel := context.WithTimeout(ctx, opts.OpTimeout)
	err := s.checkEpoch(octx)
	cancel()
	if err != nil {
		if !transient(err) {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		s.wb.markDown(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	go func() {
		defer close(s.done)
		s.wb.run(runCtx)
	}()
	return s, nil
}

// Healthy reports whether Redis answers and every accepted write has reached
// it.
func (s *Store) Healthy() bool { return s.wb.stats().Healthy }

// Stats returns the write-behind state, for /metrics.
func (s *Store) Stats() Stats { return s.wb.stats() }

// Flush waits until every accepted write has reached Redis, or ctx ends.
func (s *Store) Flush(ctx context.Context) error { return s.wb.flush(ctx) }

// Close refuses new writes (rooms.ErrClosed), waits up to CloseTimeout for
// queued ones, stops the background goroutine, and closes the client if Open
// created it. It returns ErrPendingWrites when writes were still queued: they
// are lost with this process, and the error says how many.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.wb.close()
		ctx, cancel := context.WithTimeout(context.Background(), s.closeWait)
		_ = s.wb.drain(ctx)
		cancel()
		s.cancel()
		<-s.done
		if n := s.wb.stats().Queued; n > 0 {
			err = fmt.Errorf("%w: %d writes", ErrPendingWrites, n)
			s.log.Error("closing with writes not persisted to redis", "queued", n)
		}
		if s.ownClient {
			err = errors.Join(err, s.rdb.Close())
		}
	})
	return err
}

// checkEpoch notices a Redis that came back empty (restarted without
// persistence, or flushed): the epoch key this store saw before is gone. It
// logs that loudly and writes back the records it still knows, so scheduled
// sessions, accounts and invitations survive; events appended before the
// loss cannot be restored (see the package documentation).
func (s *Store) checkEpoch(ctx context.Context) error {
	fresh := rooms.NewID()
	if err := s.rdb.SetNX(ctx, s.k.epoch(), fresh, 0).Err(); err != nil {
		return err
	}
	cur, err := s.rdb.Get(ctx, s.k.epoch()).Result()
	if err != nil {
		return err
	}
	s.epochMu.Lock()
	prev := s.epoch
	s.epoch = cur
	s.epochMu.Unlock()
	if prev == "" || prev == cur {
		return nil
	}
	s.log.Error("redis came back without ducha's data (restarted without persistence?); events written before the outage are lost from redis, restoring known sessions, invitations and accounts")
	return s.restore(ctx)
}

// restore writes back cached records that are missing from Redis.
func (s *Store) restore(ctx context.Context) error {
	for _, v := range s.cache.allSessions() {
		if err := restoreRecord(ctx, s.rdb, s.k.session(v.ID), v, s.sessionIndexes); err != nil {
			return err
		}
	}
	for _, v := range s.cache.allInvitations() {
		if err := restoreRecord(ctx, s.rdb, s.k.invitation(v.ID), v, s.invitationIndexes); err != nil {
			return err
		}
	}
	for _, v := range s.cache.allAccounts() {
		if err := restoreRecord(ctx, s.rdb, s.k.account(v.Username), v, s.accountIndexes); err != nil {
			return err
		}
	}
	return nil
}

func restoreRecord[T any](ctx context.Context, rdb redis.UniversalClient, key string, v T, extra func(redis.Pipeliner, *T, T)) error {
	_, _, err := casRecord(ctx, rdb, key, rooms.NewID(), func(cur *T, _ string) (T, error) {
		if cur != nil {
			return v, errSkip
		}
		return v, nil
	}, extra)
	return err
}

// write runs direct against Redis while it is healthy and nothing is queued.
// Otherwise, or when the direct attempt fails because Redis is unreachable,
// it asks fallback for the queued form of the write (which applies it to the
// cache on commit) and queues it. Non-transient errors go back to the caller
// unchanged.
func (s *Store) write(ctx context.Context, direct func(context.Context) error, fallback func() (op, error)) error {
	if s.wb.direct() {
		octx, cancel := context.WithTimeout(ctx, s.opTimeout)
		err := direct(octx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		s.wb.markDown(err)
	}
	s.fallbackMu.Lock()
	defer s.fallbackMu.Unlock()
	o, err := fallback()
	if err != nil {
		return err
	}
	return s.wb.enqueue(o)
}

// read runs remote against Redis while it is in sync. Otherwise it answers
// from the cache with local (false: the cache does not know), and falls back
// to Redis when Redis answers but writes are still being replayed.
func (s *Store) read(ctx context.Context, remote func(context.Context) error, local func() bool) error {
	if !s.wb.direct() {
		if local != nil && local() {
			return nil
		}
		if !s.wb.isReachable() {
			return fmt.Errorf("%w: redis is unreachable and this node has no copy", rooms.ErrUnavailable)
		}
	}
	octx, cancel := context.WithTimeout(ctx, s.opTimeout)
	err := remote(octx)
	cancel()
	if err == nil || !transient(err) || ctx.Err() != nil {
		return err
	}
	s.wb.markDown(err)
	if local != nil && local() {
		return nil
	}
	return fmt.Errorf("%w: %w", rooms.ErrUnavailable, err)
}

// unavailable is the error for a write that needs state this node does not
// hold while Redis is down.
func unavailable(what string) error {
	return fmt.Errorf("%w: redis is unreachable and this node has no copy of %s", rooms.ErrUnavailable, what)
}
