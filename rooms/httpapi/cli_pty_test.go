//go:build linux

package httpapi

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
	"github.com/ducha-dev/ducha/rooms/memstore"
)

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		ptm.Close()
		t.Fatalf("pty setup: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptm.Close()
		t.Fatalf("open pts: %v", err)
	}
	t.Cleanup(func() { pts.Close(); ptm.Close() })
	return ptm, pts
}

// TestUserCLITerminal types the password twice on a real terminal, where it
// must not be echoed.
func TestUserCLITerminal(t *testing.T) {
	for _, tc := range []struct {
		name, first, second string
		code                int
	}{
		{"match", "typed-password-1", "typed-password-1", 0},
		{"mismatch", "typed-password-1", "typed-password-2", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptm, pts := openPTY(t)
			st := memstore.New(nil)
			open := func() (rooms.Store, func(), error) { return st, func() {}, nil }
			var out bytes.Buffer
			var errb syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- RunUserCLI([]string{"add", "--username", "tty", "--name", "终端", "--role", "auditor"}, open, pts, &out, &errb)
			}()
			echoed := make(chan string, 1)
			go func() {
				var all []byte
				buf := make([]byte, 256)
				for {
					n, err := ptm.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						echoed <- string(all)
						return
					}
				}
			}()
			// Type each line only once the prompt is out and echo is off,
			// as a person would; typed earlier, the terminal would echo it
			// whatever the CLI does.
			typeAfter := func(prompt, line string) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(errb.String(), prompt) || echoOn(t, pts) {
					if time.Now().After(deadline) {
						t.Fatalf("no %q prompt with echo off; stderr %q", prompt, errb.String())
					}
					time.Sleep(5 * time.Millisecond)
				}
				if _, err := ptm.Write([]byte(line + "\n")); err != nil {
					t.Fatal(err)
				}
			}
			typeAfter("Password:", tc.first)
			typeAfter("Repeat:", tc.second)
			select {
			case code := <-done:
				if code != tc.code {
					t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errb.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("CLI did not finish")
			}
			if !strings.Contains(errb.String(), "Password:") || !strings.Contains(errb.String(), "Repeat:") {
				t.Fatalf("prompts %q", errb.String())
			}
			pts.Close()
			ptm.Close()
			if e := <-echoed; strings.Contains(e, "typed-password") {
				t.Fatalf("password echoed: %q", e)
			}
			a, err := st.GetAccount(t.Context(), "tty")
			if tc.code == 0 {
				if ok, _ := accounts.Verify(a.PasswordHash, tc.first); err != nil || !ok {
					t.Fatalf("account %+v %v", a, err)
				}
			} else if err == nil || !strings.Contains(errb.String(), "do not match") {
				t.Fatalf("mismatch stored an account or said nothing: %v %q", err, errb.String())
			}
		})
	}
}

func echoOn(t *testing.T, pts *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("termios: %v", err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// syncBuffer is a bytes.Buffer safe to read while the CLI writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
