package mux

import "time"

// queuedFrame is a complete frame waiting to be interleaved with the other
// track. buf is owned by the queue until pop.
type queuedFrame struct {
	t   time.Time // server time of the frame
	key bool
	buf *buffer
}

// data is the frame's bytes.
func (f *queuedFrame) data() []byte { return f.buf.b }

// frameQueue is a FIFO of frames. A frame's buffer comes from the
// assembler without a copy and goes back to the pool when the frame is
// popped: frames waiting here hold memory, frames written do not.
type frameQueue struct {
	pool  *BufferPool
	slots []queuedFrame
	head  int
	n     int
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

// push appends a frame; the queue takes buf over.
func (q *frameQueue) push(t time.Time, key bool, buf *buffer) {
	if q.n == len(q.slots) {
		q.grow()
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	s.t, s.key, s.buf = t, key, buf
	q.n++
	q.peak = max(q.peak, q.n)
}

// pop drops the head frame and gives its buffer back to the pool.
func (q *frameQueue) pop() {
	s := &q.slots[q.head]
	q.pool.put(s.buf)
	s.buf = nil
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

// trim gives back the slots of a long queue (audio held up to
// videoStartWait for the first video keyframe: 150 frames) once two trim
// periods in a row did not need them, as jitterBuffer.trim does.
func (q *frameQueue) trim(now time.Time) {
	if !q.trimPeriod.due(now) {
		return
	}
	most := max(q.peak, q.prevPeak)
	q.prevPeak, q.peak = q.peak, q.n
	size := len(q.slots)
	for size/2 >= max(most, q.n, queueStart) {
		size /= 2
	}
	if size < len(q.slots) {
		q.resize(size)
	}
}
