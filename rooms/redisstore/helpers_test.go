package redisstore

import (
	"context"
	"github.com/ducha-dev/ducha/rooms/redisstore/redistest"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ducha-dev/ducha/rooms"
)

// sharedRedisAddr is the Redis every developer machine and CI runs (make
// test starts it), 127.0.0.1:6379 unless DUCHA_TEST_REDIS_ADDR says
// otherwise; tests use key prefixes of their own in DB 0 and delete them.
func sharedRedisAddr() string {
	if a := os.Getenv("DUCHA_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// need fails under CI and skips locally when a dependency is missing.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s unavailable (CI=true, so this is a failure): %v", what, err)
	}
	t.Skipf("%s unavailable: %v; run `make test` to start it", what, err)
}

func newClient(addr string) *redis.Client {
	o := &redis.Options{Addr: addr}
	Tune(o)
	return redis.NewClient(o)
}

// sharedClient connects to the shared Redis and returns a fresh key prefix
// whose keys are deleted when the test ends.
func sharedClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := sharedRedisAddr()
	rdb := newClient(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		need(t, "redis at "+addr, err)
	}
	prefix := "ducha-test:" + rooms.NewID() + ":"
	t.Cleanup(func() {
		deletePrefix(t, rdb, prefix)
		rdb.Close()
	})
	return rdb, prefix
}

func deletePrefix(t *testing.T, rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			rdb.Del(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Del(ctx, batch...)
	}
	if err := iter.Err(); err != nil {
		t.Errorf("cleaning up %s: %v", prefix, err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// redisServer is a redis-server of the test's own (see redistest).
type redisServer struct{ *redistest.Server }

func startRedisServer(t *testing.T) *redisServer { return &redisServer{redistest.Start(t)} }

func startVolatileRedisServer(t *testing.T) *redisServer {
	return &redisServer{redistest.StartVolatile(t)}
}

func (s *redisServer) addr() string { return s.Addr() }
func (s *redisServer) start()       { s.Start() }
func (s *redisServer) kill()        { s.Kill() }

// startListenerAndClose returns a loopback address that was free a moment
// ago and is closed now, so connections to it are refused.
func startListenerAndClose(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
