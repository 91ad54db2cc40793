// Package miniotest runs a private MinIO server for one test: its own
// temporary directory, free ports on 127.0.0.1, killed in Cleanup. Stop and
// Restart let a test take the archive away and bring it back on the same
// address with the same data.
package miniotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvBinary names the MinIO binary; the default is $(go env GOPATH)/bin/minio.
const EnvBinary = "DUCHA_MINIO_BIN"

// Generous: a cold MinIO on a busy 2-core machine takes a few seconds.
const (
	readyTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second
)

// Server is one running MinIO.
type Server struct {
	Endpoint  string // host:port of the S3 API
	AccessKey string
	Secret    string

	t       testing.TB
	bin     string
	dataDir string
	console string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer
}

// Binary finds the MinIO binary.
func Binary() (string, error) {
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			gopath = build.Default.GOPATH
		}
		gopath, _, _ = strings.Cut(gopath, string(os.PathListSeparator))
		bin = filepath.Join(gopath, "bin", "minio")
	}
	st, err := os.Stat(bin)
	if err != nil {
		return bin, fmt.Errorf("minio binary %s: %w", bin, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return bin, fmt.Errorf("minio binary %s is not executable", bin)
	}
	return bin, nil
}

// Start launches MinIO and waits until it is live. Without a binary the test
// fails when CI=true and is skipped otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("miniotest: %v (CI=true: the MinIO binary is required; build it with `make test` or set %s)", err, EnvBinary)
		}
		t.Skipf("miniotest: %v; run `make test` (it builds MinIO) or set %s", err, EnvBinary)
	}
	s := &Server{
		AccessKey: "ducha-test",
		Secret:    "ducha-test-secret",
		t:         t,
		bin:       bin,
		dataDir:   t.TempDir(),
	}
	t.Cleanup(s.Stop)
	// A port picked free can be taken before MinIO binds it; try fresh ones.
	for attempt := 1; ; attempt++ {
		s.Endpoint, s.console = freeAddr(t), freeAddr(t)
		err := s.launch()
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(s.out.String(), "address already in use") {
			t.Fatalf("miniotest: start: %v\n%s", err, s.out.String())
		}
	}
}

// Stop terminates the server (SIGTERM, then SIGKILL). Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops the server if needed and starts it again on the same address
// and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		s.t.Fatalf("miniotest: restart: %v\n%s", err, s.out.String())
	}
}

// Client returns a plain minio-go client for the server, for tests that need
// to act on the bucket behind the archive's back (tamper, delete).
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Endpoint, &minio.Options{
		Creds:           credentials.NewStaticV4(s.AccessKey, s.Secret, ""),
		Region:          "us-east-1",
		TrailingHeaders: true,
		MaxRetries:      1,
	})
}

// Logs returns the tail of the server's output.
func (s *Server) Logs() string { return s.out.String() }

func (s *Server) launch() error {
	s.out = &tailBuffer{max: 64 << 10}
	cmd := exec.Command(s.bin, "server", filepath.Join(s.dataDir, "data"),
		"--address", s.Endpoint, "--console-address", s.console,
		"--certs-dir", filepath.Join(s.dataDir, "certs"), "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.Secret,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	// Its own process group, so a signal to the test's group does not race us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := waitLive(s.Endpoint, done); err != nil {
		s.Stop()
		return err
	}
	if err := s.waitServing(done); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// waitServing waits until S3 requests work: /minio/health/live answers before
// the object layer is up ("Server not initialized yet").
func (s *Server) waitServing(exited <-chan struct{}) error {
	client, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		_, err := client.ListBuckets(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("minio exited before it served requests")
		case <-ctx.Done():
			return fmt.Errorf("minio at %s not serving after %s: %v", s.Endpoint, readyTimeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitLive(endpoint string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + endpoint + "/minio/health/live"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("minio exited before it was live")
		case <-ctx.Done():
			return fmt.Errorf("minio not live at %s after %s", endpoint, readyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// tailBuffer keeps the last max bytes of the server's output for failure
// messages; MinIO can be chatty over a long test.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
