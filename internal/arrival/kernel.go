package arrival

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// WrapUDP is Wrap for a plain UDP socket, timed by the kernel: where the
// platform has receive timestamps (Linux, SO_TIMESTAMPNS), each
// datagram's time is when the kernel queued it on the socket, so a reader
// that waits for a CPU does not move it. That is what a receiver on its
// own machine would see, and on one box shared by a hundred simulated
// clients it is the only time that says what the network (here: the
// sender) did. Elsewhere, or if the option is refused, it is Wrap.
func WrapUDP(udp *net.UDPConn, now func() time.Time, obs Observer) net.PacketConn {
	return WrapUDPTaking(udp, now, func(b []byte, _ netip.AddrPort, at time.Time) bool {
		obs(b, at)
		return false
	})
}

// WrapUDPTaking is WrapUDP with a Taker.
func WrapUDPTaking(udp *net.UDPConn, now func() time.Time, take Taker) net.PacketConn {
	if !EnableTimestamps(udp) {
		return WrapTaking(udp, now, take)
	}
	return &kernelConn{apConn: apConn{plainConn: plainConn{udp, now, take}, ap: udpAddrPort{udp}}, udp: udp}
}

// kernelConn reads with recvmsg to get the timestamp. Pion's mux reads
// from one goroutine; mu only keeps a second reader from sharing oob.
type kernelConn struct {
	apConn
	udp *net.UDPConn
	mu  sync.Mutex
	oob [128]byte
}

func (c *kernelConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		n, oobn, _, addr, err := c.udp.ReadMsgUDPAddrPort(b, c.oob[:])
		if err != nil {
			return n, addr, err
		}
		at, ok := KernelTime(c.oob[:oobn])
		if !ok {
			at = c.now()
		}
		if !c.take(b[:n], addr, at) {
			return n, addr, nil
		}
	}
}

func (c *kernelConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}
