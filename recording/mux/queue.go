package mux

import "time"

// queuedFrame is a complete frame waiting to be interleaved with the other
// track. data is owned by the queue until pop.
type queuedFrame struct {
	t    time.Time // server time of the frame
	key  bool
	data []byte
}

// frameQueue is a FIFO of frames. Buffers are swapped with the caller, not
// copied, and those of popped frames are handed out again most recent
// first: only as many buffers exist as frames were ever queued at once
// (plus the caller's), rather than one per ring slot, each grown to the
// largest frame (a keyframe) it happened to hold.
type frameQueue struct {
	slots []queuedFrame
	head  int
	n     int
	spare [][]byte // buffers of popped frames
	// trim's bookkeeping: the most frames queued at once in this trim
	// period and in the one before.
	trimPeriod     trimPeriod
	peak, prevPeak int
}

func (q *frameQueue) len() int { return q.n }

func (q *frameQueue) peek() *queuedFrame {
	if q.n == 0 {
		return nil
	}
	return &q.slots[q.head]
}

// push appends a frame whose payload is taken from *data: the caller gets
// a spare buffer back to reuse (nil when there is none), so no bytes are
// copied.
func (q *frameQueue) push(t time.Time, key bool, data *[]byte) {
	if q.n == len(q.slots) {
		q.grow()
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	s.t, s.key, s.data = t, key, *data
	*data = nil
	if k := len(q.spare); k > 0 {
		*data = q.spare[k-1]
		q.spare[k-1] = nil
		q.spare = q.spare[:k-1]
	}
	q.n++
	q.peak = max(q.peak, q.n)
}

func (q *frameQueue) pop() {
	s := &q.slots[q.head]
	q.spare = append(q.spare, s.data[:0])
	s.data = nil
	q.head = (q.head + 1) % len(q.slots)
	q.n--
}

// queueStart is the initial number of slots.
const queueStart = 16

func (q *frameQueue) grow() { q.resize(max(queueStart, 2*len(q.slots))) }

func (q *frameQueue) resize(size int) {
	slots := make([]queuedFrame, size)
	for i := 0; i < q.n; i++ {
		slots[i] = q.slots[(q.head+i)%len(q.slots)]
	}
	q.slots, q.head = slots, 0
}

// trim gives back the slots and buffers of a long queue (audio held up to
// videoStartWait for the first video keyframe: 150 frames) once two trim
// periods in a row did not need them, as jitterBuffer.trim does.
func (q *frameQueue) trim(now time.Time) {
	if !q.trimPeriod.due(now) {
		return
	}
	most := max(q.peak, q.prevPeak)
	q.prevPeak, q.peak = q.peak, q.n
	// Each queued frame and each spare holds a buffer: together as many as
	// frames were queued at once.
	q.spare = trimSpares(q.spare, max(most-q.n, 0), queueStart)
	size := len(q.slots)
	for size/2 >= max(most, q.n, queueStart) {
		size /= 2
	}
	if size < len(q.slots) {
		q.resize(size)
	}
}
