package udpbatch

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr; Go pads it to the C layout on 32 and 64 bits.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

type sysBatch struct {
	hdrs [MaxBatch]mmsghdr
	iovs [MaxBatch]unix.Iovec
	sa4  [MaxBatch]unix.RawSockaddrInet4
	sa6  [MaxBatch]unix.RawSockaddrInet6

	// One sendmmsg call's arguments and results. call is bound once, so
	// handing it to RawConn.Write allocates nothing.
	off, n int
	r      uintptr
	errno  syscall.Errno
	call   func(fd uintptr) bool
}

func (s *sysBatch) init() { s.call = s.sendmmsg }

// sendmmsg is a raw system call (no entersyscall): the socket is
// non-blocking, so the call never waits, and the poller waits for room on
// EAGAIN. Through unix.Syscall6 a goroutine in a long sendmmsg (on
// loopback the kernel delivers each datagram inside it: up to a few
// hundred µs for a full batch) showed the runtime's monitor a processor
// stuck in a system call. The monitor then handed that processor to
// another thread, woke it, and kept polling every 20 µs instead of
// backing off to 10 ms: in a profile of S1 (8 rooms of 1+4) the monitor's
// sleeps and wake-ups alone were about 11 % of the server's CPU. Raw calls
// cut the CPU per forwarded packet by 16-33 % (docs/benchmarks.md, ninth
// session). The cost: a processor is not given up during the call, so a
// garbage collection's stop waits for it, at most one batch's time.
func (s *sysBatch) sendmmsg(fd uintptr) bool {
	s.r, _, s.errno = unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
		uintptr(unsafe.Pointer(&s.hdrs[s.off])), uintptr(s.n-s.off), 0, 0, 0)
	return s.errno != unix.EAGAIN
}

type mmsgSender struct {
	rc  syscall.RawConn
	ip6 bool // the socket is AF_INET6: IPv4 peers are written as v4-mapped
}

func newSender(udp *net.UDPConn) (sender, error) {
	rc, err := udp.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("udpbatch: getsockname: %w", serr)
	}
	_, ip6 := sa.(*unix.SockaddrInet6)
	return &mmsgSender{rc: rc, ip6: ip6}, nil
}

// send fills the headers and calls sendmmsg until every packet is written
// or refused. A refused packet (bad address, unreachable network) is
// skipped: UDP makes no promise, and one bad peer must not stall the rest.
func (s *mmsgSender) send(b *batch) int {
	refused := 0
	n := 0
	for i := 0; i < b.n; i++ {
		if !s.fill(b, n, i) {
			refused++
			continue
		}
		n++
	}
	sb := &b.sys
	sb.off, sb.n = 0, n
	for sb.off < n {
		err := s.rc.Write(sb.call)
		switch {
		case err != nil: // the socket is closed
			return refused + n - sb.off
		case sb.errno != 0:
			refused++ // the message at off failed; the rest may not
			sb.off++
		default:
			sb.off += int(sb.r)
		}
	}
	return refused
}

// fill writes packet i's header into slot j and reports whether its address
// suits the socket.
func (s *mmsgSender) fill(b *batch, j, i int) bool {
	addr := b.addrs[i]
	h := &b.sys.hdrs[j]
	*h = mmsghdr{}
	ip := addr.Addr()
	switch {
	case ip.Is4() && !s.ip6, ip.Is4In6() && !s.ip6:
		sa := &b.sys.sa4[j]
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		putPort(&sa.Port, addr.Port())
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		h.hdr.Namelen = unix.SizeofSockaddrInet4
	case s.ip6 && ip.IsValid():
		sa := &b.sys.sa6[j]
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16(), Scope_id: scope(ip)}
		putPort(&sa.Port, addr.Port())
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		h.hdr.Namelen = unix.SizeofSockaddrInet6
	default:
		return false
	}
	buf := b.bufs[i]
	iov := &b.sys.iovs[j]
	iov.Base = nil
	if len(buf) > 0 {
		iov.Base = &buf[0]
	}
	iov.SetLen(len(buf))
	h.hdr.Iov = iov
	h.hdr.SetIovlen(1)
	return true
}

// putPort stores the port in network byte order whatever the host's order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0] = byte(port >> 8)
	b[1] = byte(port)
}

func scope(ip netip.Addr) uint32 {
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			return uint32(ifi.Index)
		}
	}
	return 0
}
