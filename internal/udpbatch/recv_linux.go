package udpbatch

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ducha-dev/ducha/internal/arrival"
)

// readBatch is how many datagrams one recvmmsg may return.
const readBatch = 32

// readBufSize matches pion/ice's receive MTU, so nothing that a plain read
// would have returned whole gets truncated here.
const readBufSize = 8192

// receiver reads datagrams with recvmmsg and hands them out one per call:
// one system call per burst instead of one per packet. The ICE mux reads
// from a single goroutine; the mutex only keeps concurrent callers safe.
type receiver struct {
	rc syscall.RawConn

	mu    sync.Mutex
	next  int
	count int
	bufs  [readBatch][]byte
	hdrs  [readBatch]mmsghdr
	iovs  [readBatch]unix.Iovec
	addrs [readBatch]unix.RawSockaddrInet6 // large enough for either family
	oobs  [readBatch][64]byte              // each datagram's receive timestamp

	r     uintptr
	errno syscall.Errno
	call  func(fd uintptr) bool
}

func newReceiver(udp *net.UDPConn) (*receiver, error) {
	rc, err := udp.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &receiver{rc: rc}
	buf := make([]byte, readBatch*readBufSize)
	for i := range r.bufs {
		r.bufs[i] = buf[i*readBufSize : (i+1)*readBufSize : (i+1)*readBufSize]
	}
	for i := range r.hdrs {
		h := &r.hdrs[i]
		h.hdr.Name = (*byte)(unsafe.Pointer(&r.addrs[i]))
		h.hdr.Namelen = unix.SizeofSockaddrInet6
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(readBufSize)
		h.hdr.Iov = &r.iovs[i]
		h.hdr.SetIovlen(1)
		h.hdr.Control = &r.oobs[i][0]
		h.hdr.SetControllen(len(r.oobs[i]))
	}
	// The kernel stamps each datagram as it queues it on the socket: the
	// time it arrived, however long the reader took to come for it.
	arrival.EnableTimestamps(udp)
	r.call = r.recvmmsg
	return r, nil
}

// recvmmsg is a raw system call, for the reason given at sendmmsg: the
// socket is non-blocking and the poller waits on EAGAIN.
func (r *receiver) recvmmsg(fd uintptr) bool {
	// The kernel rewrites only the address length (and the outputs) of the
	// headers it filled last time: reset those, not all 32.
	for i := 0; i < r.count; i++ {
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].hdr.SetControllen(len(r.oobs[i]))
	}
	r.r, _, r.errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), readBatch, 0, 0, 0)
	return r.errno != unix.EAGAIN
}

func (r *receiver) buffered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count - r.next
}

// read returns the next datagram and when the kernel received it (zero
// if it did not say).
func (r *receiver) read(b []byte) (int, netip.AddrPort, time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.next >= r.count {
		if err := r.rc.Read(r.call); err != nil {
			return 0, netip.AddrPort{}, time.Time{}, &net.OpError{Op: "read", Net: "udp", Err: err}
		}
		if r.errno != 0 {
			if r.errno == unix.EINTR {
				continue
			}
			return 0, netip.AddrPort{}, time.Time{}, &net.OpError{Op: "read", Net: "udp",
				Err: os.NewSyscallError("recvmmsg", r.errno)}
		}
		r.next, r.count = 0, int(r.r)
	}
	i := r.next
	r.next++
	n := copy(b, r.bufs[i][:r.hdrs[i].len])
	at, _ := arrival.KernelTime(r.oobs[i][:r.hdrs[i].hdr.Controllen])
	return n, sockaddrToAddrPort(&r.addrs[i]), at, nil
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			// Link-local peer: keep the zone, or replies could not be routed
			// (the send side turns it back into a scope id).
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(ip, port)
	}
	return netip.AddrPort{}
}
