package sfu

import (
	"sync/atomic"
	"time"
)

// The SFU's own forwarding delay: from a packet's arrival at the server's
// media socket (the kernel's receive timestamp: handed to ingest by the own
// ingress, or kept by socketTimes for a packet that takes Pion's receive
// chain; the time of ingest for a stream not yet registered) to the moment a fan-out writer has handed the last copy to its subscribers'
// connections (after SRTP, into the send batch). End to end, a receiver
// sees that plus the sender's stack, the kernel and its own stack and, in
// a load test, the simulated clients' own CPU queue; this part is what
// the server adds, and a production node can watch it.

// fwdDelayBounds are the histogram's bucket upper bounds.
var fwdDelayBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
}

// ForwardDelayBounds returns the bucket upper bounds of
// Stats.ForwardDelayCounts, in seconds (the last count is above them all).
func ForwardDelayBounds() []float64 {
	out := make([]float64, len(fwdDelayBounds))
	for i, b := range fwdDelayBounds {
		out[i] = b.Seconds()
	}
	return out
}

// fwdDelayHist counts forwarding delays; observe is lock-free.
type fwdDelayHist struct {
	counts [len(fwdDelayBounds) + 1]atomic.Uint64
	sumNs  atomic.Uint64
	// missed: forwarded packets whose arrival slot was reused before the
	// writer looked (it lagged the socket by arrival.Slots packets of the
	// layer): the slowest, so their share says how far to trust the tail.
	missed atomic.Uint64
}

func (h *fwdDelayHist) observe(d time.Duration) { h.observeN(d, 1) }

// observeN counts n packets that each took d.
func (h *fwdDelayHist) observeN(d time.Duration, n int) {
	i := 0
	for i < len(fwdDelayBounds) && d > fwdDelayBounds[i] {
		i++
	}
	h.counts[i].Add(uint64(n))
	h.sumNs.Add(uint64(d) * uint64(n))
}

func (h *fwdDelayHist) snapshot() (counts []uint64, sum float64) {
	counts = make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, time.Duration(h.sumNs.Load()).Seconds()
}
