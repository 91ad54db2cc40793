//go:build !linux

package udpbatch

import "net"

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
