package redisstore

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if a store's background goroutine outlives the
// tests: every store must be closed.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkNoLeak(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func checkNoLeak() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "(*writeBehind).run") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked write-behind goroutine:\n%s", stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
