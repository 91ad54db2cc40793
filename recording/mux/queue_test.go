package mux

import (
	"testing"
	"time"
)

// TestFrameQueueReusesFewBuffers: frames keep their bytes through the
// queue, and only as many buffers circulate as frames were queued at once
// (plus the producer's), however long the stream and however large the
// ring.
func TestFrameQueueReusesFewBuffers(t *testing.T) {
	var q frameQueue
	seen := map[*byte]bool{}
	var buf []byte
	t0 := time.Unix(1000, 0)
	next := 0 // next frame expected out
	most := 0 // frames queued at once
	for i := 0; i < 1000; i++ {
		buf = append(buf[:0], byte(i), byte(i>>8))
		buf = append(buf, make([]byte, 1000)...)
		seen[&buf[0]] = true
		q.push(t0.Add(time.Duration(i)*time.Millisecond), i%40 == 0, &buf)
		most = max(most, q.len())
		// A few frames wait, as video does for the audio watermark.
		for q.len() > i%3 {
			f := q.peek()
			if got := int(f.data[0]) | int(f.data[1])<<8; got != next || len(f.data) != 1002 || f.key != (next%40 == 0) {
				t.Fatalf("frame %d came out as %d (%d bytes, key %v)", next, got, len(f.data), f.key)
			}
			q.pop()
			next++
		}
	}
	if len(seen) > most+1 {
		t.Fatalf("%d buffers used for at most %d queued frames, want at most %d", len(seen), most, most+1)
	}
}

// TestFrameQueueTrimsAfterLongWait: the slots and buffers of a long queue
// (audio held for the first video keyframe) are given back once the queue
// has stayed short for two trim periods.
func TestFrameQueueTrimsAfterLongWait(t *testing.T) {
	var q frameQueue
	t0 := time.Unix(1000, 0)
	var buf []byte
	at := time.Duration(0)
	frame := func() {
		buf = append(buf[:0], make([]byte, 80)...)
		q.push(t0.Add(at), true, &buf)
		at += 20 * time.Millisecond
	}
	for i := 0; i < 150; i++ { // 3 s held
		frame()
		q.trim(t0.Add(at))
	}
	for q.len() > 0 {
		q.pop()
	}
	if len(q.slots) != 256 || len(q.spare) != 150 {
		t.Fatalf("after the wait: %d slots, %d spare buffers; want 256 and 150", len(q.slots), len(q.spare))
	}
	for end := at + 3*trimEvery; at < end; {
		frame()
		frame()
		q.pop()
		q.pop()
		q.trim(t0.Add(at))
	}
	if len(q.slots) != queueStart || len(q.spare) > 2 {
		t.Fatalf("later: %d slots, %d spare buffers; want %d and at most 2", len(q.slots), len(q.spare), queueStart)
	}
}
