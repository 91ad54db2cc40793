package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ducha-dev/ducha/signaling/token"
)

// serverHandle is the ducha server under load: one we spawned, or one that
// was already running.
type serverHandle struct {
	baseURL string // http://host:port
	wsURL   string
	key     ed25519.PrivateKey
	pid     int // 0 when unknown: CPU and memory then come from /metrics
	now     func() time.Time
	log     *slog.Logger

	// Spawned servers only.
	cmd     *exec.Cmd
	tmpDir  string
	logPath string
	exited  chan struct{}
	stopped sync.Once
}

// attachServer uses a running server whose data directory we can read.
func attachServer(cfg config, now func() time.Time, log *slog.Logger) (*serverHandle, error) {
	key, err := token.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: join token key in %s: %v", ErrServer, cfg.DataDir, err)
	}
	s := &serverHandle{key: key, pid: cfg.ServerPID, now: now, log: log}
	if err := s.setURL(cfg.Server); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *serverHandle) setURL(raw string) error {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: --server %q: want http://host:port", ErrConfig, raw)
	}
	s.baseURL = u.Scheme + "://" + u.Host
	ws := "ws"
	if u.Scheme == "https" {
		ws = "wss"
	}
	s.wsURL = ws + "://" + u.Host + "/ws"
	return nil
}

// servingLine finds the address in the server's "ducha serving" log line.
var servingLine = regexp.MustCompile(`msg="ducha serving".* http=(\S+)`)

// spawnServer builds (unless --server-bin names a binary) and starts a
// ducha server on free loopback ports in a temporary directory. The server
// gets SIGKILL if this process dies first, so no run leaves one behind.
func spawnServer(ctx context.Context, cfg config, now func() time.Time, log *slog.Logger) (_ *serverHandle, err error) {
	tmp, err := os.MkdirTemp("", "ducha-load-")
	if err != nil {
		return nil, fmt.Errorf("%w: temporary directory: %v", ErrServer, err)
	}
	s := &serverHandle{tmpDir: tmp, now: now, log: log, exited: make(chan struct{}), logPath: filepath.Join(tmp, "server.log")}
	defer func() {
		if err != nil {
			s.stop(true)
		}
	}()
	bin := cfg.ServerBin
	if bin == "" {
		if bin, err = buildServer(ctx, tmp, log); err != nil {
			return nil, err
		}
	}
	dataDir := filepath.Join(tmp, "data")
	args := append([]string{"serve", "--http-addr", "127.0.0.1:0", "--data-dir", dataDir, "--udp-port", "0",
		"--tcp-port", "-1", "--include-loopback", "--log-level", "info"}, cfg.ServerArgs...)
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("%w: server log: %v", ErrServer, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = serverEnv(os.Environ())
	cmd.Stdout = logFile
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%w: %v", ErrServer, err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%w: start %s: %v", ErrServer, bin, err)
	}
	s.cmd, s.pid = cmd, cmd.Process.Pid
	addr := make(chan string, 1)
	go func() {
		defer close(s.exited)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logFile, stderr)
		_ = cmd.Wait()
	}()
	select {
	case a := <-addr:
		if err := s.setURL("http://" + a); err != nil {
			return nil, err
		}
	case <-s.exited:
		return nil, fmt.Errorf("%w: server exited at start; log:\n%s", ErrServer, s.logTail())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%w: server did not report its address in 30 s; log:\n%s", ErrServer, s.logTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := s.waitHealthy(ctx, 20*time.Second); err != nil {
		return nil, err
	}
	if s.key, err = token.LoadOrCreateKey(dataDir); err != nil {
		return nil, fmt.Errorf("%w: join token key: %v", ErrServer, err)
	}
	log.Info("server spawned", "url", s.baseURL, "pid", s.pid, "log", s.logPath)
	return s, nil
}

// serverEnv drops our own DUCHA_LOAD_* variables, which the server would
// report as unknown.
func serverEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "DUCHA_LOAD_") {
			out = append(out, kv)
		}
	}
	return out
}

// buildServer compiles cmd/ducha from the module the working directory is in.
func buildServer(ctx context.Context, dir string, log *slog.Logger) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: --spawn without --server-bin needs the go tool: %v", ErrServer, err)
	}
	out := filepath.Join(dir, "ducha")
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/ducha-dev/ducha/cmd/ducha")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: go build ./cmd/ducha (run inside the ducha module, or pass --server-bin): %v\n%s",
			ErrServer, err, b)
	}
	log.Info("server built", "bin", out, "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

func (s *serverHandle) waitHealthy(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	cl := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/healthz", nil)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrServer, err)
		}
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s/healthz not OK after %s (last error %v)", ErrServer, s.baseURL, d, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// token mints a join token with the server's key.
func (s *serverHandle) token(room, identity, role string) (string, error) {
	return token.NewIssuer(s.key, s.now).Issue(token.Claims{Room: room, Identity: identity, Name: identity,
		Role: role, ExpiresAt: s.now().Add(6 * time.Hour)})
}

// stop ends a spawned server (SIGTERM; after 15 s SIGQUIT, whose goroutine
// dump lands in the log, then SIGKILL) and removes its directory, keeping
// its log when keepLog is set (a failed run) or the server hung; it does
// nothing to a server we did not start.
func (s *serverHandle) stop(keepLog bool) {
	s.stopped.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(15 * time.Second):
				// A Go server dumps every goroutine on SIGQUIT: the log
				// then shows where it is stuck.
				s.log.Warn("server ignored SIGTERM for 15 s; SIGQUIT for a goroutine dump, then SIGKILL", "pid", s.pid)
				keepLog = true
				_ = s.cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-s.exited:
				case <-time.After(5 * time.Second):
					_ = s.cmd.Process.Kill()
					<-s.exited
				}
			}
		}
		if keepLog && s.cmd != nil {
			kept := filepath.Join(os.TempDir(), fmt.Sprintf("ducha-load-server-%d.log", s.pid))
			if err := os.Rename(s.logPath, kept); err == nil {
				s.log.Info("server log kept", "path", kept)
			}
		}
		if s.tmpDir != "" {
			if err := os.RemoveAll(s.tmpDir); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("could not remove the server's directory", "dir", s.tmpDir, "err", err)
			}
		}
	})
}

// logTail is the end of a spawned server's log, for error messages.
func (s *serverHandle) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
