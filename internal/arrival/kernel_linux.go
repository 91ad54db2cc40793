//go:build linux && (amd64 || arm64)

package arrival

import (
	"encoding/binary"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// EnableTimestamps asks the kernel to stamp every datagram udp receives
// (SO_TIMESTAMPNS); KernelTime reads the stamp from a read's control
// messages.
func EnableTimestamps(udp *net.UDPConn) bool {
	rc, err := udp.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// KernelTime finds the SCM_TIMESTAMPNS message in oob without allocating:
// a 64-bit cmsghdr (len, level, type) and a struct timespec. The kernel
// turns stamping on from a work queue a moment after the first socket
// asks, and until then recvmsg stamps at the read.
func KernelTime(oob []byte) (time.Time, bool) {
	const hdr = unix.SizeofCmsghdr // 16 on 64-bit Linux
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < hdr || l > len(oob) {
			return time.Time{}, false
		}
		if level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr : hdr+8]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8 : hdr+16]))
			return time.Unix(sec, nsec), true
		}
		next := (l + 7) &^ 7 // CMSG_ALIGN
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
