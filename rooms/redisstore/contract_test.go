package redisstore

import (
	"context"
	"errors"
	"testing"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

func TestContract(t *testing.T) {
	sharedClient(t) // skip or fail once, not in every subtest
	storetest.Run(t, func(t *testing.T) rooms.Store {
		rdb, prefix := sharedClient(t)
		st, err := New(context.Background(), rdb, Options{Prefix: prefix, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		if !st.Healthy() {
			t.Fatal("new store on a running redis is not healthy")
		}
		return st
	})
}

// TestRestart is a server restart: a new store instance on the same prefix
// sees what the first one wrote.
func TestRestart(t *testing.T) {
	rdb, prefix := sharedClient(t)
	storetest.RunPersistence(t, func(t *testing.T) rooms.Store {
		st, err := New(context.Background(), rdb, Options{Prefix: prefix, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// TestOpen connects from a DUCHA_REDIS_URL-style address.
func TestOpen(t *testing.T) {
	_, prefix := sharedClient(t)
	ctx := context.Background()
	if _, err := Open(ctx, "http://nope", Options{}); err == nil {
		t.Fatal("bad url accepted")
	}
	st, err := Open(ctx, "redis://"+sharedRedisAddr()+"/0", Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy() {
		t.Fatal("not healthy")
	}
	if _, err := st.CreateAccount(ctx, rooms.Account{Username: "open", Role: rooms.RoleAdmin, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAccount(ctx, rooms.Account{Username: "late", Role: rooms.RoleAdmin, PasswordHash: "h"}); !errors.Is(err, rooms.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}
