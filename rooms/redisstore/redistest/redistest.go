// Package redistest runs a redis-server of a test's own, which the test may
// kill and restart (never the shared one on 6379). Tests of the Redis store
// and of the server's behaviour during Redis outages use it.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server on a free loopback port.
type Server struct {
	t       testing.TB
	dir     string
	port    int
	persist bool
	cmd     *exec.Cmd
}

// Start starts a server that keeps its data across restarts in an
// fsync-always append-only file, as production Redis must be configured.
func Start(t testing.TB) *Server { return start(t, true) }

// StartVolatile starts a server that comes back empty after a restart,
// like the shared development Redis.
func StartVolatile(t testing.TB) *Server { return start(t, false) }

func start(t testing.TB, persist bool) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server unavailable (CI=true, so this is a failure): %v", err)
		}
		t.Skipf("redis-server unavailable: %v; run `make test` to install it", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, dir: t.TempDir(), port: port, persist: persist}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Start (re)starts the server on its port and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	aof := "no"
	if s.persist {
		aof = "yes"
	}
	s.cmd = exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--dir", s.dir, "--save", "", "--appendonly", aof, "--appendfsync", "always",
		"--daemonize", "no", "--logfile", "redis.log")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.dir + "/redis.log")
			s.t.Fatalf("redis-server on %s did not answer: %v\n%s", s.Addr(), err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server the hard way, as a crash or a power cut would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *Server) String() string { return fmt.Sprintf("redis-server %s in %s", s.Addr(), s.dir) }
