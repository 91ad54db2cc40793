package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

// envelope is how a record is stored: the value plus the ID of the write that
// produced it. Replaying a queued write whose ID is already stored is a no-op,
// which makes replay after an ambiguous failure (the write went through but
// the reply was lost) safe.
type envelope[T any] struct {
	W string `json:"w"`
	D T      `json:"d"`
}

func encode[T any](v T, writeID string) (string, error) {
	b, err := json.Marshal(envelope[T]{W: writeID, D: v})
	return string(b), err
}

func decode[T any](raw string) (T, string, error) {
	var e envelope[T]
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		var zero T
		return zero, "", fmt.Errorf("redisstore: corrupt record: %w", err)
	}
	return e.D, e.W, nil
}

// errSkip from a compute function means: the stored value is already right,
// write nothing.
var errSkip = errors.New("skip")

// maxCASAttempts bounds optimistic retries; each lost race means another
// writer made progress, so reaching it needs heavy contention on one record.
const maxCASAttempts = 100

// casRecord is an optimistic read-modify-write of the record at key (WATCH,
// GET, MULTI, SET, EXEC), retried when another writer changed the key in
// between. compute gets the current value (nil when the key is missing) and
// its write ID, and returns the value to store or errSkip; extra queues more
// commands (indexes) into the same transaction. It returns the stored value
// (or the current one on errSkip) and whether something was written.
func casRecord[T any](ctx context.Context, rdb redis.UniversalClient, key, writeID string,
	compute func(cur *T, curWrite string) (T, error),
	extra func(pipe redis.Pipeliner, cur *T, next T),
) (T, bool, error) {
	var result T
	var wrote bool
	txf := func(tx *redis.Tx) error {
		wrote = false
		var cur *T
		var curWrite string
		raw, err := tx.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			v, w, err := decode[T](raw)
			if err != nil {
				return err
			}
			cur, curWrite = &v, w
		}
		next, err := compute(cur, curWrite)
		if errors.Is(err, errSkip) {
			if cur != nil {
				result = *cur
			}
			return nil
		}
		if err != nil {
			return err
		}
		enc, err := encode(next, writeID)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, key, enc, 0)
			if extra != nil {
				extra(pipe, cur, next)
			}
			return nil
		})
		if err == nil {
			result, wrote = next, true
		}
		return err
	}
	for attempt := range maxCASAttempts {
		err := rdb.Watch(ctx, txf, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return result, wrote, err
		}
		// Back off a little, with jitter, so racing writers spread out. This
		// is contention handling measured in microseconds, not timing logic,
		// so it uses the real clock.
		d := time.Duration(rand.IntN(attempt+1)+1) * 200 * time.Microsecond
		select {
		case <-ctx.Done():
			return result, false, ctx.Err()
		case <-time.After(d):
		}
	}
	return result, false, fmt.Errorf("%w: %s", rooms.ErrConflict, key)
}

// getRecord reads one record; ErrNotFound when missing.
func getRecord[T any](ctx context.Context, rdb redis.UniversalClient, key, what string) (T, error) {
	raw, err := rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		var zero T
		return zero, fmt.Errorf("%w: %s", rooms.ErrNotFound, what)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	v, _, err := decode[T](raw)
	return v, err
}

// getRecords reads many records at once, skipping missing keys.
func getRecords[T any](ctx context.Context, rdb redis.UniversalClient, ks []string) ([]T, error) {
	var out []T
	const chunk = 500
	for len(ks) > 0 {
		n := min(chunk, len(ks))
		vals, err := rdb.MGet(ctx, ks[:n]...).Result()
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue
			}
			rec, _, err := decode[T](s)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
		ks = ks[n:]
	}
	return out, nil
}
