package mux

import (
	"testing"
	"time"
)

// TestFrameQueueKeepsFramesInOrder: frames keep their bytes through the
// queue, and a popped frame's buffer leaves the queue (back to the pool).
func TestFrameQueueKeepsFramesInOrder(t *testing.T) {
	pool := NewBufferPool()
	q := frameQueue{pool: pool}
	t0 := time.Unix(1000, 0)
	next := 0 // next frame expected out
	for i := 0; i < 1000; i++ {
		b := pool.get(1002)
		b.b = append(b.b, byte(i), byte(i>>8))
		b.b = append(b.b, make([]byte, 1000)...)
		q.push(t0.Add(time.Duration(i)*time.Millisecond), i%40 == 0, b)
		// A few frames wait, as video does for the audio watermark.
		for q.len() > i%3 {
			f := q.peek()
			d := f.data()
			if got := int(d[0]) | int(d[1])<<8; got != next || len(d) != 1002 || f.key != (next%40 == 0) {
				t.Fatalf("frame %d came out as %d (%d bytes, key %v)", next, got, len(d), f.key)
			}
			q.pop()
			next++
		}
	}
	held := 0
	for i := range q.slots {
		if q.slots[i].buf != nil {
			held++
		}
	}
	if held != q.len() {
		t.Fatalf("%d buffers held for %d queued frames", held, q.len())
	}
}

// TestFrameQueueTrimsAfterLongWait: the slots of a long queue (audio held
// for the first video keyframe) are given back once the queue has stayed
// short for two trim periods.
func TestFrameQueueTrimsAfterLongWait(t *testing.T) {
	pool := NewBufferPool()
	q := frameQueue{pool: pool}
	t0 := time.Unix(1000, 0)
	at := time.Duration(0)
	frame := func() {
		b := pool.get(80)
		b.b = append(b.b, make([]byte, 80)...)
		q.push(t0.Add(at), true, b)
		at += 20 * time.Millisecond
	}
	for i := 0; i < 150; i++ { // 3 s held
		frame()
		q.trim(t0.Add(at))
	}
	for q.len() > 0 {
		q.pop()
	}
	if len(q.slots) != 256 {
		t.Fatalf("after the wait: %d slots, want 256", len(q.slots))
	}
	for end := at + 3*trimEvery; at < end; {
		frame()
		frame()
		q.pop()
		q.pop()
		q.trim(t0.Add(at))
	}
	if len(q.slots) != queueStart {
		t.Fatalf("later: %d slots, want %d", len(q.slots), queueStart)
	}
}
