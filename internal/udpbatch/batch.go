package udpbatch

import (
	"net/netip"
	"time"
)

// batch is up to MaxBatch packets with their destinations. The buffers are
// kept between uses, so a warmed-up Conn allocates nothing per packet.
type batch struct {
	n       int
	firstAt time.Time // when the first packet queued
	bufs    [MaxBatch][]byte
	addrs   [MaxBatch]netip.AddrPort
	sys     sysBatch // the platform's system-call scratch space
}

// packetCap fits any media packet on a 1500-byte MTU; larger writes grow
// their slot once.
const packetCap = 1500

func newBatch() *batch {
	b := &batch{}
	b.sys.init()
	return b
}

func (b *batch) add(p []byte, addr netip.AddrPort) {
	buf := b.bufs[b.n]
	if buf == nil {
		buf = make([]byte, 0, max(packetCap, len(p)))
	}
	b.bufs[b.n] = append(buf[:0], p...)
	b.addrs[b.n] = addr
	b.n++
}

func (b *batch) reset() { b.n = 0 }
