package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// On this test bed the server shares two cores with 118 simulated
// clients, which in a real deployment run on their own machines. With
// --nice the load tool lowers its own scheduling priority once the server
// is up (a spawned server keeps the priority it started with), so the
// server is not starved by what plays its clients, and what is measured
// is what the server adds. The clients' own timing survives being
// deprioritised: arrivals are the kernel's timestamps (socket.go). Only
// the senders' stamps, taken before their Pion send path, can be late.

// reniceSelf sets every thread of this process to nice n. Linux keeps a
// nice value per thread and a new thread takes its creator's, so after
// this the Go runtime's future threads are niced too.
func reniceSelf(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("--nice: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread that ended meanwhile is no error.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("--nice %d: thread %d: %w", n, tid, err)
		}
	}
	return nil
}

// niceOf reads a process's (its main thread's) nice value from
// /proc/PID/stat; ok is false where there is none.
func niceOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'. Nice is field 19 of the line, the 17th after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 17 {
		return 0, false
	}
	n, err := strconv.Atoi(f[16])
	return n, err == nil
}
