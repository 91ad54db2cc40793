package mux

import (
	"time"

	"github.com/pion/rtp"
)

// slotState is what became of a sequence number in the jitter buffer's
// window.
type slotState uint8

const (
	slotEmpty    slotState = iota
	slotFilled             // a packet waits to be released
	slotReleased           // the packet was released; a copy arriving now is a duplicate
	slotLost               // given up on; the packet arriving now is late
	slotSkipped            // dropped upstream (Resync): release as lost without waiting
)

// jbMeta is what the buffer knows about one sequence number of its window.
type jbMeta struct {
	seq   uint16
	state slotState
}

// jbSlot holds a packet waiting to be released.
type jbSlot struct {
	marker  bool
	seq     uint16
	ts      uint32
	arrival time.Time
	payload []byte
}

// popEvent is what jitterBuffer.pop found at the head of the buffer.
type popEvent uint8

const (
	popNone   popEvent = iota // nothing to release yet
	popPacket                 // the next packet in sequence; call advance after use
	popGap                    // one or more packets will never be released
)

// jitterStats counts what happened to the packets of one track.
type jitterStats struct {
	Received  uint64 // packets passed to insert
	Bytes     uint64 // payload bytes passed to insert
	Lost      uint64 // sequence numbers given up on (or discarded at a discontinuity)
	Late      uint64 // packets that arrived after their sequence number was given up on
	Duplicate uint64 // copies of packets already buffered or released
	Overflow  uint64 // packets refused because the buffer was full
}

// jitterBuffer puts one track's packets back in sequence order. A packet is
// released as soon as everything before it was released; a gap is held open
// for `hold` after the first packet behind it arrived, so that NACK
// retransmissions can fill it, then counted lost.
//
// The window (how far ahead a packet may be, so how long a stalled owner is
// absorbed) is fixed at creation, but memory follows what actually waits:
// meta, 4 bytes per sequence number of the window, remembers what became of
// each one (so a copy arriving after its packet was released still counts as
// a duplicate, not as late); the packets themselves sit in a ring of slots
// that starts small and doubles while packets are held further ahead (a disk
// stall), up to the window. Payload buffers, sized to the track's packets,
// come from a free list, so a steady stream allocates nothing. What a burst
// made the buffer grow to is given back by trim once two trim periods in a
// row did not need it.
type jitterBuffer struct {
	meta     []jbMeta // one per sequence number of the window, index seq & metaMask
	metaMask uint16
	slots    []jbSlot // waiting packets, index seq & slotMask; grows on demand
	slotMask uint16
	minSlots int
	hold     time.Duration
	free     [][]byte
	bufCap   int // capacity of new payload buffers: the largest payload so far, plus headroom
	started  bool
	next     uint16 // next sequence number to release
	count    int    // filled slots
	resync   bool   // the next packet follows a known upstream drop
	resetGap bool   // a discontinuity must be reported before the next packet
	// Until the first release the start of the stream is not known: the
	// first packet to arrive may not be the first sent.
	releasedAny  bool
	firstArrival time.Time
	maxAhead     int // largest distance from next of a buffered packet
	// trim's bookkeeping: the most packets held at once and the farthest
	// one ahead of next (plus one) in this trim period and the one before.
	trimPeriod         trimPeriod
	peakHeld, peakSpan int
	prevHeld, prevSpan int
	stats              jitterStats
}

// Ring sizing.
const (
	// ringStart is the initial number of slots: enough for JitterHold of a
	// county's camera or of audio without growing; a 1 Mbit/s camera grows
	// once or twice.
	ringStart = 64
	// trimEvery is the trim period: memory a burst needed is given back
	// between one and two periods after it was last needed.
	trimEvery = 10 * time.Second
)

// newJitterBuffer returns a buffer with a window of size sequence numbers
// (a power of two, at most 32768) holding gaps open for hold.
func newJitterBuffer(size int, hold time.Duration) *jitterBuffer {
	n := min(size, ringStart)
	return &jitterBuffer{
		meta:     make([]jbMeta, size),
		metaMask: uint16(size - 1),
		slots:    make([]jbSlot, n),
		slotMask: uint16(n - 1),
		minSlots: n,
		hold:     hold,
	}
}

// size is the window: packets further ahead than this are refused.
func (j *jitterBuffer) size() int { return len(j.meta) }

// markResync records that packets were dropped before the next one on
// purpose: the gap is released at once instead of being waited for.
func (j *jitterBuffer) markResync() { j.resync = true }

// insert copies p into the buffer.
func (j *jitterBuffer) insert(p *rtp.Packet, now time.Time) {
	j.stats.Received++
	j.stats.Bytes += uint64(len(p.Payload))
	seq := p.SequenceNumber
	if !j.started {
		j.restart(seq)
	}
	resync := j.resync
	j.resync = false
	n := j.size()
	diff := int(int16(seq - j.next))
	if diff >= n || diff < -n {
		if j.count > 0 && !resync {
			// Either the owner is behind and the window is full, or the
			// stream jumped while packets still wait: they go first, and
			// this packet is refused until they are out.
			j.stats.Overflow++
			return
		}
		j.stats.Lost += uint64(j.count)
		j.restart(seq)
		j.resetGap = true
		diff = 0
	}
	if diff < 0 && !j.releasedAny && j.maxAhead-diff < n {
		// Reordered at the very start: this packet was sent before the
		// one that arrived first.
		j.maxAhead -= diff
		j.next = seq
		diff = 0
		j.fit(j.maxAhead + 1)
	}
	if diff < 0 {
		m := &j.meta[seq&j.metaMask]
		if m.seq == seq && (m.state == slotReleased || m.state == slotFilled) {
			j.stats.Duplicate++
		} else {
			j.stats.Late++
		}
		return
	}
	if resync {
		for d := 0; d < diff; d++ {
			gs := j.next + uint16(d)
			m := &j.meta[gs&j.metaMask]
			if m.state != slotFilled || m.seq != gs {
				j.clear(m)
				m.state, m.seq = slotSkipped, gs
			}
		}
	}
	m := &j.meta[seq&j.metaMask]
	if m.state == slotFilled {
		// Same slot and within the window: it is this very sequence number.
		j.stats.Duplicate++
		return
	}
	j.fit(diff + 1)
	var buf []byte
	if k := len(j.free); k > 0 {
		buf, j.free = j.free[k-1], j.free[:k-1]
	}
	if need := len(p.Payload); cap(buf) < need {
		// Too small (or none spare): a new buffer, with headroom so that a
		// payload a little larger than any before does not start this over.
		if need > j.bufCap {
			j.bufCap = need + need/4
		}
		buf = make([]byte, 0, j.bufCap)
	}
	m.state, m.seq = slotFilled, seq
	s := &j.slots[seq&j.slotMask]
	s.seq = seq
	s.ts = p.Timestamp
	s.marker = p.Marker
	s.arrival = now
	s.payload = append(buf[:0], p.Payload...)
	j.count++
	j.peakHeld = max(j.peakHeld, j.count)
	if !j.releasedAny {
		if j.count == 1 {
			j.firstArrival = now
		}
		j.maxAhead = max(j.maxAhead, diff)
	}
}

// fit makes the ring hold packets up to span-1 ahead of next.
func (j *jitterBuffer) fit(span int) {
	j.peakSpan = max(j.peakSpan, span)
	if span <= len(j.slots) {
		return
	}
	c := len(j.slots)
	for c < span {
		c *= 2
	}
	j.resize(min(c, j.size()))
}

// resize moves the waiting packets into a ring of c slots (a power of two
// larger than the distance of any of them from next).
func (j *jitterBuffer) resize(c int) {
	old, oldMask := j.slots, j.slotMask
	j.slots, j.slotMask = make([]jbSlot, c), uint16(c-1)
	for i := range old {
		s := &old[i]
		if int(s.seq&oldMask) != i {
			continue // never used
		}
		if m := j.meta[s.seq&j.metaMask]; m.state == slotFilled && m.seq == s.seq {
			j.slots[s.seq&j.slotMask] = *s
		}
	}
}

// trim gives back what a burst made the buffer grow to once the last two
// trim periods did not need it: the ring shrinks to the most they held
// ahead, and spare payload buffers beyond the most they held at once are
// dropped. Two periods, so that a stream whose bursts recur (keyframes)
// keeps what they need and allocates nothing. Called after each drain.
func (j *jitterBuffer) trim(now time.Time) {
	if !j.trimPeriod.due(now) {
		return
	}
	held, span := max(j.peakHeld, j.prevHeld), max(j.peakSpan, j.prevSpan)
	j.prevHeld, j.prevSpan = j.peakHeld, j.peakSpan
	j.peakHeld, j.peakSpan = j.count, j.span()
	j.free = trimSpares(j.free, max(held-j.count, 0), ringStart)
	c := len(j.slots)
	for c/2 >= max(span, j.minSlots) {
		c /= 2
	}
	if c < len(j.slots) && j.peakSpan <= c {
		j.resize(c)
	}
}

// span is one more than the distance from next of the farthest waiting
// packet (0 when none waits).
func (j *jitterBuffer) span() int {
	if j.count == 0 {
		return 0
	}
	for d := len(j.slots) - 1; d >= 0; d-- {
		seq := j.next + uint16(d)
		if m := j.meta[seq&j.metaMask]; m.state == slotFilled && m.seq == seq {
			return d + 1
		}
	}
	return 0
}

// restart forgets everything buffered and expects seq next.
func (j *jitterBuffer) restart(seq uint16) {
	for i := range j.meta {
		j.clear(&j.meta[i])
	}
	j.count = 0
	j.started = true
	j.next = seq
	j.releasedAny = false
	j.maxAhead = 0
}

// clear empties the sequence number of m, putting its packet's buffer on
// the free list.
func (j *jitterBuffer) clear(m *jbMeta) {
	if m.state == slotFilled {
		j.count--
		s := &j.slots[m.seq&j.slotMask]
		j.free = append(j.free, s.payload[:0])
		s.payload = nil
	}
	m.state = slotEmpty
}

// pop returns what is at the head of the buffer at time now. With force,
// gaps are given up on at once (used when the recording ends). After
// popPacket the caller reads the returned slot and must call advance.
func (j *jitterBuffer) pop(now time.Time, force bool) (*jbSlot, popEvent) {
	if !j.started {
		return nil, popNone
	}
	if j.resetGap {
		j.resetGap = false
		return nil, popGap
	}
	if !j.releasedAny && !force && j.count > 0 && now.Sub(j.firstArrival) < j.hold {
		return nil, popNone
	}
	m := &j.meta[j.next&j.metaMask]
	if m.seq == j.next {
		switch m.state {
		case slotFilled:
			return &j.slots[j.next&j.slotMask], popPacket
		case slotSkipped:
			m.state = slotLost
			j.stats.Lost++
			j.next++
			return nil, popGap
		}
	}
	if j.count == 0 {
		return nil, popNone
	}
	if !force && now.Sub(j.firstArrivalAfterGap()) < j.hold {
		return nil, popNone
	}
	j.clear(m)
	m.state, m.seq = slotLost, j.next
	j.stats.Lost++
	j.next++
	return nil, popGap
}

// advance releases the packet pop returned.
func (j *jitterBuffer) advance() {
	m := &j.meta[j.next&j.metaMask]
	j.clear(m)
	m.state = slotReleased
	j.next++
	j.releasedAny = true
}

// firstArrivalAfterGap is when the first packet behind the gap at next
// arrived: the moment the gap became visible.
func (j *jitterBuffer) firstArrivalAfterGap() time.Time {
	for d := 1; d < len(j.slots); d++ {
		seq := j.next + uint16(d)
		if m := j.meta[seq&j.metaMask]; m.state == slotFilled && m.seq == seq {
			return j.slots[seq&j.slotMask].arrival
		}
	}
	return time.Time{}
}
