// Package arrival times datagrams where they leave the kernel: a wrapper
// for the UDP socket under Pion's ICE mux that shows every datagram read
// to an observer before Pion's receive chain (ICE, DTLS/SRTP demux,
// decryption, interceptors, track buffers) hands it on. The server times
// its own forwarding from there (sfu), and the load tool times arrivals
// at its simulated browsers' sockets (cmd/ducha-load), as a browser's
// network thread does, or better: with the kernel's receive timestamp
// (WrapUDP), which no wait of the reading process can move.
package arrival

import (
	"net"
	"net/netip"
	"time"
)

// Observer sees every datagram read, on the mux's reader goroutine, with
// its arrival time; it must not keep b.
type Observer func(b []byte, at time.Time)

// Taker is an Observer that may take a datagram: one it has handled
// itself (the SFU's own SRTP ingress) is not returned to the reader, which
// reads the next one instead. from is the sender; b is the reader's
// buffer, valid until the call returns.
type Taker func(b []byte, from netip.AddrPort, at time.Time) (taken bool)

// addrPortConn is what Pion's mux reads and writes without allocating
// (ice.AddrPortReaderWriter); it uses those methods on *net.UDPConn
// itself or on any conn that has them, so the wrapper keeps them.
type addrPortConn interface {
	net.PacketConn
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Wrap returns conn with obs called on every datagram read, timed by now
// as it is read, or by conn itself if it is a TimedReader that knows. A
// *net.UDPConn, or a conn with the address-port methods (udpbatch.Conn),
// keeps Pion's allocation-free path; any other conn is read through
// ReadFrom.
func Wrap(conn net.PacketConn, now func() time.Time, obs Observer) net.PacketConn {
	return WrapTaking(conn, now, func(b []byte, _ netip.AddrPort, at time.Time) bool {
		obs(b, at)
		return false
	})
}

// WrapTaking is Wrap with a Taker.
func WrapTaking(conn net.PacketConn, now func() time.Time, take Taker) net.PacketConn {
	switch c := conn.(type) {
	case *net.UDPConn:
		return &apConn{plainConn: plainConn{c, now, take}, ap: udpAddrPort{c}}
	case addrPortConn:
		timed, _ := conn.(TimedReader)
		return &apConn{plainConn: plainConn{c, now, take}, ap: c, timed: timed}
	}
	return &plainConn{conn, now, take}
}

type plainConn struct {
	net.PacketConn
	now  func() time.Time
	take Taker
}

func (c *plainConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		var from netip.AddrPort
		if u, ok := addr.(*net.UDPAddr); ok {
			from = u.AddrPort()
		}
		if !c.take(b[:n], from, c.now()) {
			return n, addr, nil
		}
	}
}

type addrPortRW interface {
	ReadFromAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// TimedReader is a conn that knows when each datagram arrived
// (udpbatch.Conn, with kernel timestamps): at is zero when it does not.
type TimedReader interface {
	ReadFromAddrPortAt(b []byte) (n int, addr netip.AddrPort, at time.Time, err error)
}

type apConn struct {
	plainConn
	ap    addrPortRW
	timed TimedReader // nil: timed at the read
}

func (c *apConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		var n int
		var addr netip.AddrPort
		var at time.Time
		var err error
		if c.timed != nil {
			n, addr, at, err = c.timed.ReadFromAddrPortAt(b)
		} else {
			n, addr, err = c.ap.ReadFromAddrPort(b)
		}
		if err != nil {
			return n, addr, err
		}
		if at.IsZero() {
			at = c.now()
		}
		if !c.take(b[:n], addr, at) {
			return n, addr, nil
		}
	}
}

func (c *apConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.ap.WriteToAddrPort(b, addr)
}

// udpAddrPort gives *net.UDPConn's address-port methods the names Pion
// looks for.
type udpAddrPort struct{ c *net.UDPConn }

func (u udpAddrPort) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return u.c.ReadFromUDPAddrPort(b)
}

func (u udpAddrPort) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(b, addr)
}

// RTP returns a datagram's SSRC and sequence number if it is RTP: not
// STUN, DTLS or RTCP (RTCP types 192-223 share the first byte's range,
// RFC 5761). The header is in the clear in SRTP.
func RTP(b []byte) (ssrc uint32, seq uint16, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, 0, false
	}
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 {
		return 0, 0, false
	}
	return uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11]), uint16(b[2])<<8 | uint16(b[3]), true
}
