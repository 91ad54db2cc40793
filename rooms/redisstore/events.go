package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ducha-dev/ducha/rooms"
)

// The event log of a session is a Redis Stream whose entry IDs are 0-Seq,
// with one field "e" holding the event as JSON. A hash maps event IDs to Seq
// so an append is stored once however often it is retried.

// AppendEvent implements rooms.EventLog. While Redis is down the event is
// queued with its time and order, and returned with Seq 0; Seq is assigned
// when it reaches Redis.
func (s *Store) AppendEvent(ctx context.Context, in rooms.Event) (rooms.Event, error) {
	e, err := rooms.PrepareEvent(in, s.clock.Now())
	if err != nil {
		return rooms.Event{}, err
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return rooms.Event{}, err
	}
	ks := []string{s.k.session(e.SessionID), s.k.events(e.SessionID), s.k.eventIDs(e.SessionID), s.k.eventSeq(e.SessionID)}
	appendOnce := func(ctx context.Context, requireSession bool) (int64, error) {
		check := "0"
		if requireSession {
			check = "1"
		}
		res, err := s.sc.appendEvent.Run(ctx, s.rdb, ks, e.ID, payload, check).Int64Slice()
		if err != nil {
			return 0, err
		}
		if len(res) != 2 {
			return 0, fmt.Errorf("redisstore: append script returned %v", res)
		}
		if res[0] < 0 {
			return 0, fmt.Errorf("%w: session %s", rooms.ErrNotFound, e.SessionID)
		}
		return res[0], nil
	}
	err = s.write(ctx, func(ctx context.Context) error {
		seq, err := appendOnce(ctx, true)
		e.Seq = seq
		return err
	}, func() (op, error) {
		if _, ok := s.cache.session(e.SessionID); !ok {
			return op{}, unavailable("session " + e.SessionID)
		}
		e.Seq = 0
		// The session was checked against the cache; on replay the event is
		// written even if Redis lost the session record, because losing an
		// event is worse than an event without its session.
		apply := func(ctx context.Context) error { _, err := appendOnce(ctx, false); return err }
		return op{name: "event.append", sessionID: e.SessionID, apply: apply}, nil
	})
	if err != nil {
		return rooms.Event{}, err
	}
	return e.Clone(), nil
}

// ListEvents implements rooms.EventLog. It needs Redis: the log is not
// cached, so while Redis is down it returns ErrUnavailable. While queued
// events are being replayed it returns what Redis has so far.
func (s *Store) ListEvents(ctx context.Context, sessionID string, afterSeq int64, limit int) ([]rooms.Event, error) {
	var out []rooms.Event
	err := s.read(ctx, func(ctx context.Context) error {
		out = out[:0]
		const page = 1000
		next := max(afterSeq, 0) + 1
		for limit <= 0 || len(out) < limit {
			n := int64(page)
			if limit > 0 {
				n = int64(min(page, limit-len(out)))
			}
			msgs, err := s.rdb.XRangeN(ctx, s.k.events(sessionID), "0-"+strconv.FormatInt(next, 10), "+", n).Result()
			if err != nil {
				return err
			}
			for _, m := range msgs {
				e, err := decodeEvent(m.ID, m.Values)
				if err != nil {
					return err
				}
				out = append(out, e)
				next = e.Seq + 1
			}
			if int64(len(msgs)) < n {
				break
			}
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeEvent(id string, values map[string]any) (rooms.Event, error) {
	seqStr, ok := strings.CutPrefix(id, "0-")
	seq, err := strconv.ParseInt(seqStr, 10, 64)
	if !ok || err != nil {
		return rooms.Event{}, fmt.Errorf("redisstore: unexpected stream entry id %q", id)
	}
	raw, ok := values["e"].(string)
	if !ok {
		return rooms.Event{}, fmt.Errorf("redisstore: stream entry %s has no event", id)
	}
	var e rooms.Event
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return rooms.Event{}, fmt.Errorf("redisstore: corrupt event %s: %w", id, err)
	}
	e.Seq = seq
	return e, nil
}
