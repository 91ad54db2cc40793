package mux

import (
	"time"

	"github.com/pion/rtp"
)

// slotState is what a jitter buffer slot holds for its sequence number.
type slotState uint8

const (
	slotEmpty    slotState = iota
	slotFilled             // a packet waits to be released
	slotReleased           // the packet was released; a copy arriving now is a duplicate
	slotLost               // given up on; the packet arriving now is late
	slotSkipped            // dropped upstream (Resync): release as lost without waiting
)

type jbSlot struct {
	state   slotState
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
// Slots are indexed by sequence number modulo the ring size; payload buffers
// come from a free list, so a steady stream allocates nothing and memory
// follows the number of packets actually waiting.
type jitterBuffer struct {
	slots    []jbSlot
	mask     uint16
	hold     time.Duration
	free     [][]byte
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
	stats        jitterStats
}

// newJitterBuffer returns a buffer of size slots (a power of two, at most
// 32768) holding gaps open for hold.
func newJitterBuffer(size int, hold time.Duration) *jitterBuffer {
	return &jitterBuffer{
		slots: make([]jbSlot, size),
		mask:  uint16(size - 1),
		hold:  hold,
	}
}

func (j *jitterBuffer) size() int { return len(j.slots) }

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
			// Either the owner is behind and the ring is full, or the
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
	}
	if diff < 0 {
		s := &j.slots[seq&j.mask]
		if s.seq == seq && (s.state == slotReleased || s.state == slotFilled) {
			j.stats.Duplicate++
		} else {
			j.stats.Late++
		}
		return
	}
	if resync {
		for d := 0; d < diff; d++ {
			gs := j.next + uint16(d)
			s := &j.slots[gs&j.mask]
			if s.state != slotFilled || s.seq != gs {
				j.clearSlot(s)
				s.state, s.seq = slotSkipped, gs
			}
		}
	}
	s := &j.slots[seq&j.mask]
	if s.state == slotFilled {
		// Same slot and within the window: it is this very sequence number.
		j.stats.Duplicate++
		return
	}
	var buf []byte
	if k := len(j.free); k > 0 {
		buf, j.free = j.free[k-1], j.free[:k-1]
	} else {
		buf = make([]byte, 0, 1500)
	}
	s.state = slotFilled
	s.seq = seq
	s.ts = p.Timestamp
	s.marker = p.Marker
	s.arrival = now
	s.payload = append(buf[:0], p.Payload...)
	j.count++
	if !j.releasedAny {
		if j.count == 1 {
			j.firstArrival = now
		}
		j.maxAhead = max(j.maxAhead, diff)
	}
}

// restart forgets everything buffered and expects seq next.
func (j *jitterBuffer) restart(seq uint16) {
	for i := range j.slots {
		j.clearSlot(&j.slots[i])
	}
	j.count = 0
	j.started = true
	j.next = seq
	j.releasedAny = false
	j.maxAhead = 0
}

func (j *jitterBuffer) clearSlot(s *jbSlot) {
	if s.state == slotFilled {
		j.count--
	}
	if s.payload != nil {
		j.free = append(j.free, s.payload[:0])
		s.payload = nil
	}
	s.state = slotEmpty
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
	s := &j.slots[j.next&j.mask]
	if s.seq == j.next {
		switch s.state {
		case slotFilled:
			return s, popPacket
		case slotSkipped:
			s.state = slotLost
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
	j.clearSlot(s)
	s.state, s.seq = slotLost, j.next
	j.stats.Lost++
	j.next++
	return nil, popGap
}

// advance releases the packet pop returned.
func (j *jitterBuffer) advance() {
	s := &j.slots[j.next&j.mask]
	j.clearSlot(s)
	s.state = slotReleased
	j.next++
	j.releasedAny = true
}

// firstArrivalAfterGap is when the first packet behind the gap at next
// arrived: the moment the gap became visible.
func (j *jitterBuffer) firstArrivalAfterGap() time.Time {
	for d := 1; d < j.size(); d++ {
		seq := j.next + uint16(d)
		s := &j.slots[seq&j.mask]
		if s.state == slotFilled && s.seq == seq {
			return s.arrival
		}
	}
	return time.Time{}
}
