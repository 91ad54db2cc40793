package sfu

import "sync"

// slotSize bounds one cached packet. 1500-byte MTU plus slack; larger
// packets are not cached (and not forwarded: they would not fit a
// subscriber's path MTU either).
const slotSize = 1504

// packetCache is the one copy of a published track's recent packets. The
// publisher's reader stores each packet once; fan-out writers, NACK
// retransmission and the recorder all read from it, so memory per track is
// fixed and does not grow with subscribers.
//
// Slots are indexed by sequence number modulo the (power of two) size, so a
// lookup is O(1). A late packet whose slot already holds a newer one is
// refused: the cache never goes back in time.
type packetCache struct {
	mu    sync.Mutex
	mask  uint16
	slots []cacheSlot
	data  []byte
}

type cacheSlot struct {
	seq   uint16
	n     uint16
	valid bool
}

// newPacketCache makes a cache of size slots, rounded up to a power of two
// between 16 and 32768.
func newPacketCache(size int) *packetCache {
	n := 16
	for n < size && n < 1<<15 {
		n <<= 1
	}
	return &packetCache{
		mask:  uint16(n - 1),
		slots: make([]cacheSlot, n),
		data:  make([]byte, n*slotSize),
	}
}

// storeResult says what store did with a packet.
type storeResult int

const (
	stored    storeResult = iota
	duplicate             // the same sequence number is already cached
	tooOld                // its slot holds a newer packet
	tooLarge              // does not fit a slot
)

// store copies pkt into the cache under seq.
func (c *packetCache) store(seq uint16, pkt []byte) storeResult {
	if len(pkt) > slotSize {
		return tooLarge
	}
	i := seq & c.mask
	c.mu.Lock()
	s := &c.slots[i]
	if s.valid {
		if s.seq == seq {
			c.mu.Unlock()
			return duplicate
		}
		if int16(s.seq-seq) > 0 {
			c.mu.Unlock()
			return tooOld
		}
	}
	off := int(i) * slotSize
	copy(c.data[off:off+slotSize], pkt)
	s.seq, s.n, s.valid = seq, uint16(len(pkt)), true
	c.mu.Unlock()
	return stored
}

// get copies the packet with seq into dst and returns its length, or 0 when
// it is not (or no longer) cached.
func (c *packetCache) get(seq uint16, dst []byte) int {
	i := seq & c.mask
	c.mu.Lock()
	s := c.slots[i]
	if !s.valid || s.seq != seq {
		c.mu.Unlock()
		return 0
	}
	off := int(i) * slotSize
	n := copy(dst, c.data[off:off+int(s.n)])
	c.mu.Unlock()
	return n
}

// size is the number of slots.
func (c *packetCache) size() int { return len(c.slots) }
