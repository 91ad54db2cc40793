package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

// sessionIndexes keeps the list indexes in the same transaction as the
// session record.
func (s *Store) sessionIndexes(pipe redis.Pipeliner, cur *rooms.Session, next rooms.Session) {
	ctx := context.Background()
	score := float64(next.ScheduledStart.UnixMilli())
	pipe.ZAdd(ctx, s.k.sessionsByStart(), redis.Z{Score: score, Member: next.ID})
	if cur != nil && cur.Supervisor != next.Supervisor {
		pipe.ZRem(ctx, s.k.sessionsBySup(cur.Supervisor), next.ID)
	}
	pipe.ZAdd(ctx, s.k.sessionsBySup(next.Supervisor), redis.Z{Score: score, Member: next.ID})
	if cur != nil && cur.Status != next.Status {
		pipe.SRem(ctx, s.k.sessionsByStatus(string(cur.Status)), next.ID)
	}
	pipe.SAdd(ctx, s.k.sessionsByStatus(string(next.Status)), next.ID)
}

// CreateSession implements rooms.SessionStore.
func (s *Store) CreateSession(ctx context.Context, in rooms.Session) (rooms.Session, error) {
	sess, err := rooms.PrepareSession(in, s.clock.Now())
	if err != nil {
		return rooms.Session{}, err
	}
	wid := rooms.NewID()
	create := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, s.k.session(sess.ID), wid, func(cur *rooms.Session, w string) (rooms.Session, error) {
			switch {
			case cur == nil:
				return sess, nil
			case w == wid:
				return sess, errSkip
			}
			return sess, fmt.Errorf("%w: session %s", rooms.ErrExists, sess.ID)
		}, s.sessionIndexes)
		if err == nil {
			s.cache.putSession(v)
		}
		return err
	}
	err = s.write(ctx, create, func() (op, error) {
		if _, ok := s.cache.session(sess.ID); ok {
			return op{}, fmt.Errorf("%w: session %s", rooms.ErrExists, sess.ID)
		}
		return op{name: "session.create", sessionID: sess.ID, apply: create, commit: func() { s.cache.putSession(sess) }}, nil
	})
	if err != nil {
		return rooms.Session{}, err
	}
	return sess.Clone(), nil
}

// GetSession implements rooms.SessionStore.
func (s *Store) GetSession(ctx context.Context, id string) (rooms.Session, error) {
	var out rooms.Session
	err := s.read(ctx, func(ctx context.Context) error {
		v, err := getRecord[rooms.Session](ctx, s.rdb, s.k.session(id), "session "+id)
		if err == nil {
			s.cache.putSession(v)
			out = v
		}
		return err
	}, func() bool {
		v, ok := s.cache.session(id)
		out = v
		return ok
	})
	return out.Clone(), err
}

// UpdateSession implements rooms.SessionStore.
func (s *Store) UpdateSession(ctx context.Context, id string, fn func(*rooms.Session) error) (rooms.Session, error) {
	wid := rooms.NewID()
	now := s.clock.Now()
	key := s.k.session(id)
	var out rooms.Session
	direct := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Session, _ string) (rooms.Session, error) {
			if cur == nil {
				return rooms.Session{}, fmt.Errorf("%w: session %s", rooms.ErrNotFound, id)
			}
			return rooms.ApplySessionUpdate(*cur, fn, now)
		}, s.sessionIndexes)
		if err == nil {
			s.cache.putSession(v)
			out = v
		}
		return err
	}
	err := s.write(ctx, direct, func() (op, error) {
		base, ok := s.cache.session(id)
		if !ok {
			return op{}, unavailable("session " + id)
		}
		next, err := rooms.ApplySessionUpdate(base, fn, now)
		if err != nil {
			return op{}, err
		}
		out = next
		replay := func(ctx context.Context) error {
			v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Session, w string) (rooms.Session, error) {
				switch {
				case cur == nil, cur.Version == base.Version:
					return next, nil
				case w == wid:
					return next, errSkip
				}
				// Another node changed the session meanwhile: apply the
				// change to what it wrote, as a direct update would have.
				return rooms.ApplySessionUpdate(*cur, fn, now)
			}, s.sessionIndexes)
			if err == nil {
				s.cache.putSession(v)
			}
			return err
		}
		return op{name: "session.update", sessionID: id, apply: replay, commit: func() { s.cache.putSession(next) }}, nil
	})
	if err != nil {
		return rooms.Session{}, err
	}
	return out.Clone(), nil
}

// ListSessions implements rooms.SessionStore. It reads the smallest index
// that covers the filter, then filters the records with SessionFilter.Match.
func (s *Store) ListSessions(ctx context.Context, f rooms.SessionFilter) ([]rooms.Session, error) {
	var out []rooms.Session
	err := s.read(ctx, func(ctx context.Context) error {
		ids, err := s.sessionCandidates(ctx, f)
		if err != nil {
			return err
		}
		ks := make([]string, len(ids))
		for i, id := range ids {
			ks[i] = s.k.session(id)
		}
		recs, err := getRecords[rooms.Session](ctx, s.rdb, ks)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range recs {
			// While queued writes are replayed the cache may be newer.
			if c, ok := s.cache.session(r.ID); ok && c.Version > r.Version {
				r = c
			}
			if f.Match(r) {
				out = append(out, r)
			}
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	rooms.SortSessions(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *Store) sessionCandidates(ctx context.Context, f rooms.SessionFilter) ([]string, error) {
	if len(f.Status) > 0 && f.Supervisor == "" && f.From.IsZero() && f.To.IsZero() {
		ks := make([]string, len(f.Status))
		for i, st := range f.Status {
			ks[i] = s.k.sessionsByStatus(string(st))
		}
		return s.rdb.SUnion(ctx, ks...).Result()
	}
	// Scores are milliseconds; Match decides the sub-millisecond edges.
	rng := &redis.ZRangeBy{Min: "-inf", Max: "+inf"}
	if !f.From.IsZero() {
		rng.Min = strconv.FormatInt(f.From.UnixMilli()-1, 10)
	}
	if !f.To.IsZero() {
		rng.Max = strconv.FormatInt(f.To.UnixMilli()+1, 10)
	}
	key := s.k.sessionsByStart()
	if f.Supervisor != "" {
		key = s.k.sessionsBySup(f.Supervisor)
	}
	return s.rdb.ZRangeByScore(ctx, key, rng).Result()
}
