package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

// A participant is a record (never expires) plus a liveness marker key with a
// TTL and a member of the session's live sorted set scored by last-seen
// milliseconds. The marker expiring is what drops a crashed node's
// participants; heartbeats move the score rather than rewrite the record.

// UpsertParticipant implements rooms.ParticipantStore.
func (s *Store) UpsertParticipant(ctx context.Context, p rooms.Participant, ttl time.Duration) (rooms.Participant, error) {
	if _, err := rooms.ApplyUpsert(nil, p, s.clock.Now()); err != nil {
		return rooms.Participant{}, err
	}
	ttl = max(ttl, time.Millisecond)
	now := s.clock.Now()
	wid := rooms.NewID()
	key := s.k.participant(p.SessionID, p.ID)
	var out rooms.Participant
	live := func(pipe redis.Pipeliner, _ *rooms.Participant, next rooms.Participant) {
		ctx := context.Background()
		ms := next.LastSeen.UnixMilli()
		pipe.SAdd(ctx, s.k.participants(next.SessionID), next.ID)
		pipe.SRem(ctx, s.k.left(next.SessionID), next.ID)
		pipe.Set(ctx, s.k.liveMarker(next.SessionID, next.ID), ms, ttl)
		pipe.ZAdd(ctx, s.k.live(next.SessionID), redis.Z{Score: float64(ms), Member: next.ID})
	}
	upsert := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Participant, w string) (rooms.Participant, error) {
			if cur != nil && w == wid {
				return *cur, errSkip
			}
			return rooms.ApplyUpsert(cur, p, now)
		}, live)
		if err == nil {
			s.cache.putParticipant(v, now.Add(ttl))
			out = v
		}
		return err
	}
	direct := func(ctx context.Context) error {
		n, err := s.rdb.Exists(ctx, s.k.session(p.SessionID)).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: session %s", rooms.ErrNotFound, p.SessionID)
		}
		return upsert(ctx)
	}
	err := s.write(ctx, direct, func() (op, error) {
		if _, ok := s.cache.session(p.SessionID); !ok {
			return op{}, unavailable("session " + p.SessionID)
		}
		var cur *rooms.Participant
		if c, ok := s.cache.participant(p.SessionID, p.ID); ok {
			cur = &c
		}
		next, err := rooms.ApplyUpsert(cur, p, now)
		if err != nil {
			return op{}, err
		}
		out = next
		return op{name: "participant.upsert", sessionID: p.SessionID, apply: upsert,
			commit: func() { s.cache.putParticipant(next, now.Add(ttl)) }}, nil
	})
	if err != nil {
		return rooms.Participant{}, err
	}
	return out, nil
}

// UpdateParticipant implements rooms.ParticipantStore.
func (s *Store) UpdateParticipant(ctx context.Context, sessionID, id string, fn func(*rooms.Participant) error) (rooms.Participant, error) {
	wid := rooms.NewID()
	key := s.k.participant(sessionID, id)
	var out rooms.Participant
	direct := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Participant, _ string) (rooms.Participant, error) {
			if cur == nil {
				return rooms.Participant{}, fmt.Errorf("%w: participant %s", rooms.ErrNotFound, id)
			}
			return rooms.ApplyParticipantUpdate(*cur, fn)
		}, nil)
		if err == nil {
			s.cache.putParticipant(v, time.Time{})
			out = v
		}
		return err
	}
	err := s.write(ctx, direct, func() (op, error) {
		base, ok := s.cache.participant(sessionID, id)
		if !ok {
			return op{}, unavailable("participant " + id)
		}
		next, err := rooms.ApplyParticipantUpdate(base, fn)
		if err != nil {
			return op{}, err
		}
		out = next
		replay := func(ctx context.Context) error {
			v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Participant, w string) (rooms.Participant, error) {
				switch {
				case cur == nil, cur.Version == base.Version:
					return next, nil
				case w == wid:
					return next, errSkip
				}
				return rooms.ApplyParticipantUpdate(*cur, fn)
			}, nil)
			if err == nil {
				s.cache.putParticipant(v, time.Time{})
			}
			return err
		}
		return op{name: "participant.update", sessionID: sessionID, apply: replay,
			commit: func() { s.cache.putParticipant(next, time.Time{}) }}, nil
	})
	if err != nil {
		return rooms.Participant{}, err
	}
	return out, nil
}

// Heartbeat implements rooms.ParticipantStore. Heartbeats are not queued
// while Redis is down (they only matter for the next TTL); the cache keeps
// the participant live locally, and the first heartbeat after Redis is back
// revives the marker.
func (s *Store) Heartbeat(ctx context.Context, sessionID, id string, ttl time.Duration) error {
	ttl = max(ttl, time.Millisecond)
	now := s.clock.Now()
	if s.wb.direct() {
		octx, cancel := context.WithTimeout(ctx, s.opTimeout)
		ok, err := s.sc.heartbeat.Run(octx, s.rdb,
			[]string{s.k.participant(sessionID, id), s.k.left(sessionID), s.k.liveMarker(sessionID, id), s.k.live(sessionID)},
			id, ttl.Milliseconds(), now.UnixMilli()).Int64()
		cancel()
		switch {
		case err == nil && ok == 1:
			s.cache.touch(sessionID, id, now, now.Add(ttl))
			return nil
		case err == nil:
			return fmt.Errorf("%w: participant %s", rooms.ErrNotFound, id)
		case !transient(err) || ctx.Err() != nil:
			return err
		}
		s.wb.markDown(err)
	}
	if !s.cache.touch(sessionID, id, now, now.Add(ttl)) {
		return unavailable("participant " + id)
	}
	return nil
}

// LeaveParticipant implements rooms.ParticipantStore.
func (s *Store) LeaveParticipant(ctx context.Context, sessionID, id string, at time.Time) (rooms.Participant, error) {
	key := s.k.participant(sessionID, id)
	gone := func(pipe redis.Pipeliner, _ *rooms.Participant, _ rooms.Participant) {
		ctx := context.Background()
		pipe.Del(ctx, s.k.liveMarker(sessionID, id))
		pipe.ZRem(ctx, s.k.live(sessionID), id)
		pipe.SAdd(ctx, s.k.left(sessionID), id)
	}
	var out rooms.Participant
	leave := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, key, rooms.NewID(), func(cur *rooms.Participant, _ string) (rooms.Participant, error) {
			if cur == nil {
				return rooms.Participant{}, fmt.Errorf("%w: participant %s", rooms.ErrNotFound, id)
			}
			if !cur.LeftAt.IsZero() {
				return *cur, errSkip
			}
			return rooms.ApplyLeave(*cur, at), nil
		}, gone)
		if err == nil {
			s.cache.putParticipant(v, time.Time{})
			out = v
		}
		return err
	}
	err := s.write(ctx, leave, func() (op, error) {
		cur, ok := s.cache.participant(sessionID, id)
		if !ok {
			return op{}, unavailable("participant " + id)
		}
		out = rooms.ApplyLeave(cur, at)
		next := out
		return op{name: "participant.leave", sessionID: sessionID, apply: leave,
			commit: func() { s.cache.putParticipant(next, time.Time{}) }}, nil
	})
	if err != nil {
		return rooms.Participant{}, err
	}
	return out, nil
}

// GetParticipant implements rooms.ParticipantStore.
func (s *Store) GetParticipant(ctx context.Context, sessionID, id string) (rooms.Participant, error) {
	var out rooms.Participant
	err := s.read(ctx, func(ctx context.Context) error {
		pipe := s.rdb.Pipeline()
		rec := pipe.Get(ctx, s.k.participant(sessionID, id))
		score := pipe.ZScore(ctx, s.k.live(sessionID), id)
		pttl := pipe.PTTL(ctx, s.k.liveMarker(sessionID, id))
		_, err := pipe.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		raw, err := rec.Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("%w: participant %s", rooms.ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		p, _, err := decode[rooms.Participant](raw)
		if err != nil {
			return err
		}
		if sc, err := score.Result(); err == nil {
			p.LastSeen = lastSeen(p.LastSeen, sc)
		}
		s.cache.putParticipant(p, s.expiry(pttl.Val()))
		out = p
		return nil
	}, func() bool {
		p, ok := s.cache.participant(sessionID, id)
		out = p
		return ok
	})
	return out, err
}

// ListParticipants implements rooms.ParticipantStore.
func (s *Store) ListParticipants(ctx context.Context, sessionID string) ([]rooms.Participant, error) {
	var out []rooms.Participant
	err := s.read(ctx, func(ctx context.Context) error {
		ids, err := s.rdb.SMembers(ctx, s.k.participants(sessionID)).Result()
		if err != nil {
			return err
		}
		scores, err := s.rdb.ZRangeWithScores(ctx, s.k.live(sessionID), 0, -1).Result()
		if err != nil {
			return err
		}
		seen := make(map[string]float64, len(scores))
		for _, z := range scores {
			if m, ok := z.Member.(string); ok {
				seen[m] = z.Score
			}
		}
		ks := make([]string, len(ids))
		for i, id := range ids {
			ks[i] = s.k.participant(sessionID, id)
		}
		out, err = getRecords[rooms.Participant](ctx, s.rdb, ks)
		for i := range out {
			if sc, ok := seen[out[i].ID]; ok {
				out[i].LastSeen = lastSeen(out[i].LastSeen, sc)
			}
		}
		return err
	}, func() bool {
		if _, ok := s.cache.session(sessionID); !ok {
			return false
		}
		out = s.cache.sessionParticipants(sessionID, time.Time{})
		return true
	})
	rooms.SortParticipants(out)
	return out, err
}

// ListLive implements rooms.ParticipantStore.
func (s *Store) ListLive(ctx context.Context, sessionID string) ([]rooms.Participant, error) {
	var out []rooms.Participant
	err := s.read(ctx, func(ctx context.Context) error {
		res, err := s.sc.listLive.Run(ctx, s.rdb, []string{s.k.live(sessionID)}, s.k.liveMarkerPrefix(sessionID)).Slice()
		if err != nil {
			return err
		}
		type liveInfo struct {
			seen float64
			ttl  int64
		}
		info := make(map[string]liveInfo, len(res)/3)
		var ks []string
		for i := 0; i+2 < len(res); i += 3 {
			id, _ := res[i].(string)
			sc, _ := strconv.ParseFloat(fmt.Sprint(res[i+1]), 64)
			ttl, _ := res[i+2].(int64)
			info[id] = liveInfo{seen: sc, ttl: ttl}
			ks = append(ks, s.k.participant(sessionID, id))
		}
		recs, err := getRecords[rooms.Participant](ctx, s.rdb, ks)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, p := range recs {
			li := info[p.ID]
			p.LastSeen = lastSeen(p.LastSeen, li.seen)
			s.cache.putParticipant(p, s.expiry(time.Duration(li.ttl)*time.Millisecond))
			if p.LeftAt.IsZero() {
				out = append(out, p)
			}
		}
		return nil
	}, func() bool {
		if _, ok := s.cache.session(sessionID); !ok {
			return false
		}
		out = s.cache.sessionParticipants(sessionID, s.clock.Now())
		return true
	})
	rooms.SortParticipants(out)
	return out, err
}

// lastSeen combines the record's time with the heartbeat score (ms).
func lastSeen(rec time.Time, scoreMS float64) time.Time {
	hb := time.UnixMilli(int64(scoreMS))
	if hb.After(rec) {
		return hb
	}
	return rec
}

// expiry turns a marker's remaining TTL into a cache expiry; a missing
// marker means expired now.
func (s *Store) expiry(pttl time.Duration) time.Time {
	return s.clock.Now().Add(max(pttl, 0))
}
