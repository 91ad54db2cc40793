//go:build !linux

package udpbatch

import (
	"net"
	"net/netip"
	"time"
)

type sysBatch struct{}

func (*sysBatch) init() {}

// loopSender writes one packet per call where sendmmsg does not exist.
type loopSender struct{ udp *net.UDPConn }

func newSender(udp *net.UDPConn) (sender, error) { return loopSender{udp}, nil }

func (s loopSender) send(b *batch) int {
	refused := 0
	for i := 0; i < b.n; i++ {
		if _, err := s.udp.WriteToUDPAddrPort(b.bufs[i], b.addrs[i]); err != nil {
			refused++
		}
	}
	return refused
}

// receiver reads one datagram per call where recvmmsg does not exist.
type receiver struct{ udp *net.UDPConn }

func newReceiver(udp *net.UDPConn) (*receiver, error) { return &receiver{udp}, nil }

func (r *receiver) buffered() int { return 0 }

func (r *receiver) read(b []byte) (int, netip.AddrPort, time.Time, error) {
	n, addr, err := r.udp.ReadFromUDPAddrPort(b)
	return n, addr, time.Time{}, err
}
