package mux

import (
	"math/bits"
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

// jbMeta is what the buffer knows about one sequence number of its window,
// in two bytes: the slotState in the low 3 bits and, above them, the bits
// of the sequence number above the window index (which gives the rest).
type jbMeta uint16

const metaStateBits = 3

func (m jbMeta) state() slotState { return slotState(m & (1<<metaStateBits - 1)) }

// jbSlot holds a packet waiting to be released.
type jbSlot struct {
	marker  bool
	seq     uint16
	ts      uint32
	arrival time.Time
	buf     *buffer // the payload; nil when it is empty
}

// payload is the packet's payload.
func (s *jbSlot) payload() []byte {
	if s.buf == nil {
		return nil
	}
	return s.buf.b
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
// meta, 2 bytes per sequence number of the window, remembers what became of
// each one (so a copy arriving after its packet was released still counts as
// a duplicate, not as late); the packets themselves sit in a ring of slots
// that starts small and doubles while packets are held further ahead (a disk
// stall), up to the window; trim gives back what a burst made it grow to
// once two trim periods in a row did not need it. Payloads are copied into
// buffers lent by the recorders' shared BufferPool, so a steady stream
// allocates nothing and a burst's buffers serve other tracks afterwards.
type jitterBuffer struct {
	meta      []jbMeta // one per sequence number of the window, index seq & metaMask
	metaMask  uint16
	metaShift uint8    // log2 of the window: seq >> metaShift is what an entry stores of seq
	slots     []jbSlot // waiting packets, index seq & slotMask; grows on demand
	slotMask  uint16
	minSlots  int
	hold      time.Duration
	pool      *BufferPool
	started   bool
	next      uint16 // next sequence number to release
	count     int    // filled slots
	resync    bool   // the next packet follows a known upstream drop
	resetGap  bool   // a discontinuity must be reported before the next packet
	// Until the first release the start of the stream is not known: the
	// first packet to arrive may not be the first sent.
	releasedAny  bool
	firstArrival time.Time
	maxAhead     int // largest distance from next of a buffered packet
	// trim's bookkeeping: the farthest packet ahead of next (plus one) in
	// this trim period and in the one before.
	trimPeriod         trimPeriod
	peakSpan, prevSpan int
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
// (a power of two from 8 to 32768: an entry of meta keeps 16-3 bits of the
// sequence number) holding gaps open for hold, with payload buffers from
// pool.
func newJitterBuffer(size int, hold time.Duration, pool *BufferPool) *jitterBuffer {
	n := min(size, ringStart)
	return &jitterBuffer{
		meta:      make([]jbMeta, size),
		metaMask:  uint16(size - 1),
		metaShift: uint8(bits.TrailingZeros(uint(size))),
		slots:     make([]jbSlot, n),
		slotMask:  uint16(n - 1),
		minSlots:  n,
		hold:      hold,
		pool:      pool,
	}
}

// size is the window: packets further ahead than this are refused.
func (j *jitterBuffer) size() int { return len(j.meta) }

// stateOf is what became of seq: slotEmpty when its entry of meta was last
// about another sequence number.
func (j *jitterBuffer) stateOf(seq uint16) slotState {
	m := j.meta[seq&j.metaMask]
	if uint16(m>>metaStateBits) != seq>>j.metaShift {
		return slotEmpty
	}
	return m.state()
}

// mark records what became of seq.
func (j *jitterBuffer) mark(seq uint16, st slotState) {
	j.meta[seq&j.metaMask] = jbMeta(seq>>j.metaShift)<<metaStateBits | jbMeta(st)
}

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
		if st := j.stateOf(seq); st == slotReleased || st == slotFilled {
			j.stats.Duplicate++
		} else {
			j.stats.Late++
		}
		return
	}
	if resync {
		for d := 0; d < diff; d++ {
			gs := j.next + uint16(d)
			if j.stateOf(gs) != slotFilled {
				j.clear(gs)
				j.mark(gs, slotSkipped)
			}
		}
	}
	if j.meta[seq&j.metaMask].state() == slotFilled {
		// Same slot and within the window: it is this very sequence number.
		j.stats.Duplicate++
		return
	}
	j.fit(diff + 1)
	j.mark(seq, slotFilled)
	s := &j.slots[seq&j.slotMask]
	s.seq = seq
	s.ts = p.Timestamp
	s.marker = p.Marker
	s.arrival = now
	s.buf = nil
	if len(p.Payload) > 0 {
		s.buf = j.pool.get(len(p.Payload))
		s.buf.b = append(s.buf.b, p.Payload...)
	}
	j.count++
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
		if j.stateOf(s.seq) == slotFilled {
			j.slots[s.seq&j.slotMask] = *s
		}
	}
}

// trim gives back what a burst made the ring grow to once the last two
// trim periods did not need it: it shrinks to the most they held ahead.
// Two periods, so that a stream whose bursts recur (keyframes) keeps what
// they need and allocates nothing. Called after each drain.
func (j *jitterBuffer) trim(now time.Time) {
	if !j.trimPeriod.due(now) {
		return
	}
	span := max(j.peakSpan, j.prevSpan)
	j.prevSpan = j.peakSpan
	j.peakSpan = j.span()
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
		if j.stateOf(j.next+uint16(d)) == slotFilled {
			return d + 1
		}
	}
	return 0
}

// restart forgets everything buffered and expects seq next.
func (j *jitterBuffer) restart(seq uint16) {
	for i := range j.meta {
		j.clear(uint16(i))
	}
	j.count = 0
	j.started = true
	j.next = seq
	j.releasedAny = false
	j.maxAhead = 0
}

// clear empties the entry of meta that seq falls on, giving a waiting
// packet's buffer back to the pool (the ring is no larger than the window,
// so seq's slot is that packet's).
func (j *jitterBuffer) clear(seq uint16) {
	m := &j.meta[seq&j.metaMask]
	if m.state() == slotFilled {
		j.count--
		s := &j.slots[seq&j.slotMask]
		j.pool.put(s.buf)
		s.buf = nil
	}
	*m &^= 1<<metaStateBits - 1 // slotEmpty
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
	switch j.stateOf(j.next) {
	case slotFilled:
		return &j.slots[j.next&j.slotMask], popPacket
	case slotSkipped:
		j.mark(j.next, slotLost)
		j.stats.Lost++
		j.next++
		return nil, popGap
	}
	if j.count == 0 {
		return nil, popNone
	}
	if !force && now.Sub(j.firstArrivalAfterGap()) < j.hold {
		return nil, popNone
	}
	j.clear(j.next)
	j.mark(j.next, slotLost)
	j.stats.Lost++
	j.next++
	return nil, popGap
}

// advance releases the packet pop returned.
func (j *jitterBuffer) advance() {
	j.clear(j.next)
	j.mark(j.next, slotReleased)
	j.next++
	j.releasedAny = true
}

// firstArrivalAfterGap is when the first packet behind the gap at next
// arrived: the moment the gap became visible.
func (j *jitterBuffer) firstArrivalAfterGap() time.Time {
	for d := 1; d < len(j.slots); d++ {
		seq := j.next + uint16(d)
		if j.stateOf(seq) == slotFilled {
			return j.slots[seq&j.slotMask].arrival
		}
	}
	return time.Time{}
}
