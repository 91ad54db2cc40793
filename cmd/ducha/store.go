package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"log/slog"
	"path/filepath"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/filestore"
	"github.com/ducha-dev/ducha/rooms/redisstore"
)

// openStore picks the rooms store: Redis when configured (production,
// several nodes), otherwise a journal in the data directory (the embedded
// default keeps sessions, accounts and event logs across restarts).
func openStore(ctx context.Context, cfg config, log *slog.Logger) (rooms.Store, func(), error) {
	if cfg.store != nil {
		return cfg.store, func() {}, nil
	}
	if cfg.RedisURL != "" {
		// go-redis logs every failed dial through a process-wide logger;
		// route it to ours at debug level (the store reports outages itself).
		redis.SetLogger(redisLog{log.With("component", "go-redis")})
		st, err := redisstore.Open(ctx, cfg.RedisURL, redisstore.Options{
			Logger: log.With("component", "redis"),
			OnHealth: func(ok bool, err error) {
				if ok {
					log.Info("redis is reachable again; queued state is being written")
				} else {
					log.Error("redis is down; state changes are queued in memory until it is back", "err", err)
				}
			},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("redis store: %w", err)
		}
		return st, func() { _ = st.Close() }, nil
	}
	st, err := filestore.Open(filepath.Join(cfg.DataDir, "state"), rooms.SystemClock{}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("state in %s: %w", cfg.DataDir, err)
	}
	return st, func() { _ = st.Close() }, nil
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
