//go:build !(linux && (amd64 || arm64))

package arrival

import (
	"net"
	"time"
)

func enableTimestamps(*net.UDPConn) bool { return false }

func kernelTime([]byte) (time.Time, bool) { return time.Time{}, false }
