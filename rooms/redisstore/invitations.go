package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

func (s *Store) invitationIndexes(pipe redis.Pipeliner, _ *rooms.Invitation, next rooms.Invitation) {
	pipe.SAdd(context.Background(), s.k.invitations(next.SessionID), next.ID)
}

// CreateInvitation implements rooms.InvitationStore.
func (s *Store) CreateInvitation(ctx context.Context, in rooms.Invitation) (rooms.Invitation, error) {
	inv, err := rooms.PrepareInvitation(in, s.clock.Now())
	if err != nil {
		return rooms.Invitation{}, err
	}
	wid := rooms.NewID()
	create := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, s.k.invitation(inv.ID), wid, func(cur *rooms.Invitation, w string) (rooms.Invitation, error) {
			switch {
			case cur == nil:
				return inv, nil
			case w == wid:
				return inv, errSkip
			}
			return inv, fmt.Errorf("%w: invitation %s", rooms.ErrExists, inv.ID)
		}, s.invitationIndexes)
		if err == nil {
			s.cache.putInvitation(v)
		}
		return err
	}
	direct := func(ctx context.Context) error {
		n, err := s.rdb.Exists(ctx, s.k.session(inv.SessionID)).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: session %s", rooms.ErrNotFound, inv.SessionID)
		}
		return create(ctx)
	}
	err = s.write(ctx, direct, func() (op, error) {
		if _, ok := s.cache.session(inv.SessionID); !ok {
			return op{}, unavailable("session " + inv.SessionID)
		}
		if _, ok := s.cache.invitation(inv.ID); ok {
			return op{}, fmt.Errorf("%w: invitation %s", rooms.ErrExists, inv.ID)
		}
		return op{name: "invitation.create", sessionID: inv.SessionID, apply: create, commit: func() { s.cache.putInvitation(inv) }}, nil
	})
	if err != nil {
		return rooms.Invitation{}, err
	}
	return inv, nil
}

// GetInvitation implements rooms.InvitationStore.
func (s *Store) GetInvitation(ctx context.Context, id string) (rooms.Invitation, error) {
	var out rooms.Invitation
	err := s.read(ctx, func(ctx context.Context) error {
		v, err := getRecord[rooms.Invitation](ctx, s.rdb, s.k.invitation(id), "invitation "+id)
		if err == nil {
			s.cache.putInvitation(v)
			out = v
		}
		return err
	}, func() bool {
		v, ok := s.cache.invitation(id)
		out = v
		return ok
	})
	return out, err
}

// ListInvitations implements rooms.InvitationStore. While Redis is down it
// answers with the invitations this node knows.
func (s *Store) ListInvitations(ctx context.Context, sessionID string) ([]rooms.Invitation, error) {
	var out []rooms.Invitation
	err := s.read(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.listInvitations(ctx, sessionID)
		return err
	}, func() bool {
		if _, ok := s.cache.session(sessionID); !ok {
			return false
		}
		out = s.cache.sessionInvitations(sessionID)
		return true
	})
	rooms.SortInvitations(out)
	return out, err
}

func (s *Store) listInvitations(ctx context.Context, sessionID string) ([]rooms.Invitation, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.invitations(sessionID)).Result()
	if err != nil {
		return nil, err
	}
	ks := make([]string, len(ids))
	for i, id := range ids {
		ks[i] = s.k.invitation(id)
	}
	out, err := getRecords[rooms.Invitation](ctx, s.rdb, ks)
	for _, inv := range out {
		s.cache.putInvitation(inv)
	}
	return out, err
}

// revoke marks one invitation revoked; it reports whether this call revoked
// it. Revoking is idempotent, so replay needs no write ID check.
func (s *Store) revoke(ctx context.Context, id string, at time.Time) (rooms.Invitation, bool, error) {
	v, wrote, err := casRecord(ctx, s.rdb, s.k.invitation(id), rooms.NewID(), func(cur *rooms.Invitation, _ string) (rooms.Invitation, error) {
		if cur == nil {
			return rooms.Invitation{}, fmt.Errorf("%w: invitation %s", rooms.ErrNotFound, id)
		}
		if cur.Revoked() {
			return *cur, errSkip
		}
		next := *cur
		next.RevokedAt = at
		return next, nil
	}, nil)
	if err == nil {
		s.cache.putInvitation(v)
	}
	return v, wrote, err
}

// RevokeInvitation implements rooms.InvitationStore.
func (s *Store) RevokeInvitation(ctx context.Context, id string, at time.Time) (rooms.Invitation, error) {
	var out rooms.Invitation
	err := s.write(ctx, func(ctx context.Context) error {
		v, _, err := s.revoke(ctx, id, at)
		out = v
		return err
	}, func() (op, error) {
		cur, ok := s.cache.invitation(id)
		if !ok {
			return op{}, unavailable("invitation " + id)
		}
		if !cur.Revoked() {
			cur.RevokedAt = at
		}
		out = cur
		apply := func(ctx context.Context) error { _, _, err := s.revoke(ctx, id, at); return err }
		return op{name: "invitation.revoke", sessionID: cur.SessionID, apply: apply, commit: func() { s.cache.putInvitation(cur) }}, nil
	})
	return out, err
}

// RevokeUnitInvitations implements rooms.InvitationStore. While Redis is
// down the revocation is queued and applied to every matching invitation in
// Redis on replay; the count returned then is what this node knows of.
func (s *Store) RevokeUnitInvitations(ctx context.Context, sessionID, unitCode string, at time.Time) (int, error) {
	revokeAll := func(ctx context.Context) (int, error) {
		invs, err := s.listInvitations(ctx, sessionID)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, inv := range invs {
			if inv.UnitCode != unitCode || inv.Revoked() {
				continue
			}
			_, wrote, err := s.revoke(ctx, inv.ID, at)
			if err != nil {
				return n, err
			}
			if wrote {
				n++
			}
		}
		return n, nil
	}
	var n int
	err := s.write(ctx, func(ctx context.Context) error {
		var err error
		n, err = revokeAll(ctx)
		return err
	}, func() (op, error) {
		var changed []rooms.Invitation
		for _, inv := range s.cache.sessionInvitations(sessionID) {
			if inv.UnitCode == unitCode && !inv.Revoked() {
				inv.RevokedAt = at
				changed = append(changed, inv)
			}
		}
		n = len(changed)
		apply := func(ctx context.Context) error { _, err := revokeAll(ctx); return err }
		commit := func() {
			for _, inv := range changed {
				s.cache.putInvitation(inv)
			}
		}
		return op{name: "invitation.revoke_unit", sessionID: sessionID, apply: apply, commit: commit}, nil
	})
	return n, err
}
