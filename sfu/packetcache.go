package sfu

import (
	"sync"
	"time"
)

// slotSize bounds one cached packet. 1500-byte MTU plus slack; larger
// packets are not cached (and not forwarded: they would not fit a
// subscriber's path MTU either).
const slotSize = 1504

// packetCache is the one copy of a published track's recent packets. The
// publisher's reader stores each packet once; fan-out writers, NACK
// retransmission and the recorder all read from it, so memory per track is
// fixed and does not grow with subscribers.
//
// Slots are indexed by sequence number modulo the (power of two) number of
// slots, so a lookup is O(1). A late packet whose slot already holds a
// newer one is refused: the cache never goes back in time.
//
// The bytes live in a ring sized by traffic, not by slots times the MTU: a
// county's audio or thumbnail layer needs a few kilobytes for the second or
// two of history NACKs reach back to, a 720p layer a few hundred. The ring
// starts small and doubles (up to slots x slotSize) when it holds less than
// keepFor of what arrives; a slot whose bytes were overwritten reads as
// missing.
type packetCache struct {
	mu    sync.Mutex
	mask  uint16
	slots []cacheSlot
	data  []byte
	pos   uint64 // bytes ever written; a packet at absolute position p is at data[p % len(data)]
	max   int
	// Rate window for growing: bytes stored since winStart (nanoseconds).
	winStart int64
	winBytes int
	// starved: a reader asked for a packet whose bytes were already
	// overwritten; the ring doubles at the next store.
	starved bool
}

type cacheSlot struct {
	at    uint64
	seq   uint16
	n     uint16
	valid bool
}

// keepFor is the history the byte ring aims to hold; growth is checked every
// growCheck.
const (
	keepFor   = 2 * time.Second
	growCheck = 250 * time.Millisecond
)

// newPacketCache makes a cache of size slots, rounded up to a power of two
// between 16 and 32768, whose byte ring starts at initBytes (at least 4 KiB,
// at most slots x slotSize).
func newPacketCache(size, initBytes int) *packetCache {
	n := 16
	for n < size && n < 1<<15 {
		n <<= 1
	}
	maxBytes := n * slotSize
	initBytes = min(max(initBytes, 4096), maxBytes)
	return &packetCache{
		mask:  uint16(n - 1),
		slots: make([]cacheSlot, n),
		data:  make([]byte, initBytes),
		max:   maxBytes,
	}
}

// storeResult says what store did with a packet.
type storeResult int

const (
	stored    storeResult = iota
	duplicate             // the same sequence number is already cached
	tooOld                // its slot holds a newer packet
	tooLarge              // larger than slotSize
)

// store copies pkt into the cache under seq; now (Unix nanoseconds) paces
// the ring's growth.
func (c *packetCache) store(seq uint16, pkt []byte, now int64) storeResult {
	if len(pkt) > slotSize {
		return tooLarge
	}
	i := seq & c.mask
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[i]
	if s.valid { // by sequence number even when its bytes are gone: never forward twice, never go back
		if s.seq == seq {
			return duplicate
		}
		if int16(s.seq-seq) > 0 {
			return tooOld
		}
	}
	c.maybeGrow(len(pkt), now)
	ringCopy(c.data, c.pos, pkt)
	s.at, s.seq, s.n, s.valid = c.pos, seq, uint16(len(pkt)), true
	c.pos += uint64(len(pkt))
	return stored
}

// live reports whether a slot's bytes are still in the ring.
func (c *packetCache) live(s *cacheSlot) bool {
	return c.pos-s.at <= uint64(len(c.data))
}

func (c *packetCache) maybeGrow(n int, now int64) {
	c.winBytes += n
	need := 0
	switch {
	case c.starved:
		c.starved = false
		need = 2 * len(c.data)
	case c.winStart == 0 || now < c.winStart:
		c.winStart = now
		return
	case now-c.winStart < int64(growCheck):
		return
	default:
		need = int(int64(c.winBytes) * int64(keepFor) / (now - c.winStart))
		c.winStart, c.winBytes = now, 0
	}
	if need <= len(c.data) || len(c.data) >= c.max {
		return
	}
	size := len(c.data)
	for size < need && size < c.max {
		size *= 2
	}
	size = min(size, c.max)
	nd := make([]byte, size)
	// Re-lay the live bytes at their absolute positions in the new ring.
	from := c.pos - min(c.pos, uint64(len(c.data)))
	for p := from; p < c.pos; {
		src := c.data[p%uint64(len(c.data)):]
		if left := c.pos - p; uint64(len(src)) > left {
			src = src[:left]
		}
		ringCopy(nd, p, src)
		p += uint64(len(src))
	}
	c.data = nd
}

// ringCopy writes b into ring at absolute position p, wrapping at the end.
func ringCopy(ring []byte, p uint64, b []byte) {
	off := int(p % uint64(len(ring)))
	k := copy(ring[off:], b)
	copy(ring, b[k:])
}

// get copies the packet with seq into dst and returns its length, or 0 when
// it is not (or no longer) cached.
func (c *packetCache) get(seq uint16, dst []byte) int {
	i := seq & c.mask
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[i]
	if !s.valid || s.seq != seq || !c.live(s) || len(dst) < int(s.n) {
		return 0
	}
	off := int(s.at % uint64(len(c.data)))
	k := copy(dst[:s.n], c.data[off:])
	copy(dst[k:s.n], c.data)
	return int(s.n)
}

// markStarved says a packet that had to be there (queued for fan-out) was
// already overwritten: the ring doubles at the next store. A NACK for an old
// packet does not count: history beyond keepFor is not promised.
func (c *packetCache) markStarved() {
	c.mu.Lock()
	c.starved = true
	c.mu.Unlock()
}

// size is the number of slots.
func (c *packetCache) size() int { return len(c.slots) }

// bytes is the ring's current size.
func (c *packetCache) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.data)
}
