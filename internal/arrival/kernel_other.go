//go:build !(linux && (amd64 || arm64))

package arrival

import (
	"net"
	"time"
)

// EnableTimestamps: no kernel receive timestamps here.
func EnableTimestamps(*net.UDPConn) bool { return false }

// KernelTime: none here.
func KernelTime([]byte) (time.Time, bool) { return time.Time{}, false }
