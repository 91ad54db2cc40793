package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

func (s *Store) accountIndexes(pipe redis.Pipeliner, _ *rooms.Account, next rooms.Account) {
	ctx := context.Background()
	pipe.Set(ctx, s.k.accountID(next.ID), next.Username, 0)
	pipe.SAdd(ctx, s.k.accounts(), next.Username)
}

// CreateAccount implements rooms.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, in rooms.Account) (rooms.Account, error) {
	a, err := rooms.PrepareAccount(in, s.clock.Now())
	if err != nil {
		return rooms.Account{}, err
	}
	wid := rooms.NewID()
	create := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, s.k.account(a.Username), wid, func(cur *rooms.Account, w string) (rooms.Account, error) {
			switch {
			case cur == nil:
				return a, nil
			case w == wid:
				return a, errSkip
			}
			return a, fmt.Errorf("%w: account %s", rooms.ErrExists, a.Username)
		}, s.accountIndexes)
		if err == nil {
			s.cache.putAccount(v)
		}
		return err
	}
	err = s.write(ctx, create, func() (op, error) {
		// Another node may hold the username; the replay will then fail
		// loudly. Creating accounts during an outage is rare (an admin
		// command), so this is accepted rather than refused.
		if _, ok := s.cache.account(a.Username); ok {
			return op{}, fmt.Errorf("%w: account %s", rooms.ErrExists, a.Username)
		}
		return op{name: "account.create", apply: create, commit: func() { s.cache.putAccount(a) }}, nil
	})
	if err != nil {
		return rooms.Account{}, err
	}
	return a, nil
}

// GetAccount implements rooms.AccountStore. While Redis is down it answers
// from the accounts this node has seen, so people who signed in before can
// sign in again.
func (s *Store) GetAccount(ctx context.Context, username string) (rooms.Account, error) {
	var out rooms.Account
	err := s.read(ctx, func(ctx context.Context) error {
		v, err := getRecord[rooms.Account](ctx, s.rdb, s.k.account(username), "account "+username)
		if err == nil {
			s.cache.putAccount(v)
			out = v
		}
		return err
	}, func() bool {
		v, ok := s.cache.account(username)
		out = v
		return ok
	})
	return out, err
}

// GetAccountByID implements rooms.AccountStore.
func (s *Store) GetAccountByID(ctx context.Context, id string) (rooms.Account, error) {
	var out rooms.Account
	err := s.read(ctx, func(ctx context.Context) error {
		username, err := s.rdb.Get(ctx, s.k.accountID(id)).Result()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("%w: account id %s", rooms.ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		v, err := getRecord[rooms.Account](ctx, s.rdb, s.k.account(username), "account "+username)
		if err == nil {
			s.cache.putAccount(v)
			out = v
		}
		return err
	}, func() bool {
		v, ok := s.cache.accountByID(id)
		out = v
		return ok
	})
	return out, err
}

// UpdateAccount implements rooms.AccountStore.
func (s *Store) UpdateAccount(ctx context.Context, username string, fn func(*rooms.Account) error) (rooms.Account, error) {
	wid := rooms.NewID()
	now := s.clock.Now()
	key := s.k.account(username)
	var out rooms.Account
	direct := func(ctx context.Context) error {
		v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Account, _ string) (rooms.Account, error) {
			if cur == nil {
				return rooms.Account{}, fmt.Errorf("%w: account %s", rooms.ErrNotFound, username)
			}
			return rooms.ApplyAccountUpdate(*cur, fn, now)
		}, nil)
		if err == nil {
			s.cache.putAccount(v)
			out = v
		}
		return err
	}
	err := s.write(ctx, direct, func() (op, error) {
		base, ok := s.cache.account(username)
		if !ok {
			return op{}, unavailable("account " + username)
		}
		next, err := rooms.ApplyAccountUpdate(base, fn, now)
		if err != nil {
			return op{}, err
		}
		out = next
		replay := func(ctx context.Context) error {
			v, _, err := casRecord(ctx, s.rdb, key, wid, func(cur *rooms.Account, w string) (rooms.Account, error) {
				switch {
				case cur == nil, cur.Version == base.Version:
					return next, nil
				case w == wid:
					return next, errSkip
				}
				return rooms.ApplyAccountUpdate(*cur, fn, now)
			}, s.accountIndexes)
			if err == nil {
				s.cache.putAccount(v)
			}
			return err
		}
		return op{name: "account.update", apply: replay, commit: func() { s.cache.putAccount(next) }}, nil
	})
	if err != nil {
		return rooms.Account{}, err
	}
	return out, nil
}

// ListAccounts implements rooms.AccountStore.
func (s *Store) ListAccounts(ctx context.Context) ([]rooms.Account, error) {
	var out []rooms.Account
	err := s.read(ctx, func(ctx context.Context) error {
		names, err := s.rdb.SMembers(ctx, s.k.accounts()).Result()
		if err != nil {
			return err
		}
		ks := make([]string, len(names))
		for i, n := range names {
			ks[i] = s.k.account(n)
		}
		out, err = getRecords[rooms.Account](ctx, s.rdb, ks)
		return err
	}, nil)
	slices.SortFunc(out, func(a, b rooms.Account) int { return strings.Compare(a.Username, b.Username) })
	return out, err
}
