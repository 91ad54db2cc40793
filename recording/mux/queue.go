package mux

import "time"

// queuedFrame is a complete frame waiting to be interleaved with the other
// track. data is owned by the queue slot and reused after pop.
type queuedFrame struct {
	t    time.Time // server time of the frame
	key  bool
	data []byte
}

// frameQueue is a FIFO of frames whose slots (and their buffers) are reused.
type frameQueue struct {
	slots []queuedFrame
	head  int
	n     int
}

func (q *frameQueue) len() int { return q.n }

func (q *frameQueue) peek() *queuedFrame {
	if q.n == 0 {
		return nil
	}
	return &q.slots[q.head]
}

// push appends a frame whose payload is swapped in from *data: the caller
// gets back the slot's old buffer to reuse, so no bytes are copied.
func (q *frameQueue) push(t time.Time, key bool, data *[]byte) {
	if q.n == len(q.slots) {
		q.grow()
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	s.t, s.key = t, key
	s.data, *data = *data, s.data[:0]
	q.n++
}

func (q *frameQueue) pop() {
	q.head = (q.head + 1) % len(q.slots)
	q.n--
}

func (q *frameQueue) grow() {
	size := max(16, 2*len(q.slots))
	slots := make([]queuedFrame, size)
	for i := 0; i < q.n; i++ {
		slots[i] = q.slots[(q.head+i)%len(q.slots)]
	}
	// Keep the spare buffers of the old ring.
	for i := q.n; i < len(q.slots); i++ {
		slots[i] = q.slots[(q.head+i)%len(q.slots)]
	}
	q.slots, q.head = slots, 0
}
