package mux

import (
	"math/bits"
	"sync"
)

// BufferPool lends the byte buffers that hold packets and frames while a
// recorder works on them: a packet from its arrival until it is joined into
// a frame, a frame until it is written. One pool serves every recorder of a
// server (Config.Buffers), so memory follows what all recordings hold at
// once rather than the sum of each track's own peak (a county's start-up
// hold, a keyframe, a late tick do not happen everywhere at the same
// moment), and buffers nobody asked for during two garbage collections are
// freed (sync.Pool).
//
// Buffers come in size classes 1.5x apart (64, 96, 128, 192, ... 1 MiB), so
// a 600-byte packet does not sit in a buffer sized for the largest packet
// of its track; larger requests are served unpooled.
type BufferPool struct {
	classes [numClasses]sync.Pool
}

// buffer is a pooled byte slice. The pointer is what travels between the
// jitter buffer, the assembler, the frame queue and the pool, so that
// handing it back allocates nothing.
type buffer struct{ b []byte }

const (
	minClassShift = 6  // the smallest class is 64 bytes
	maxClassShift = 20 // the largest is 1 MiB
	numClasses    = 2*(maxClassShift-minClassShift) + 1
)

// NewBufferPool returns an empty pool.
func NewBufferPool() *BufferPool { return &BufferPool{} }

// classSize is the capacity of buffers of class c: 64 << c/2, times 1.5 for
// odd c.
func classSize(c int) int {
	s := 1 << (minClassShift + c/2)
	if c%2 == 1 {
		s += s / 2
	}
	return s
}

// classFor is the smallest class holding n bytes, or -1 when none does.
func classFor(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	k := bits.Len(uint(n - 1)) // 1<<(k-1) < n <= 1<<k
	if k > maxClassShift {
		return -1
	}
	c := 2 * (k - minClassShift) // 1<<k
	if n <= 3<<(k-2) {
		c-- // 1.5 << (k-1) is enough
	}
	return c
}

// classOf is the largest class whose size fits in capacity n, or -1.
func classOf(n int) int {
	if n < 1<<minClassShift {
		return -1
	}
	k := bits.Len(uint(n)) - 1 // 1<<k <= n < 1<<(k+1)
	if k >= maxClassShift {
		return numClasses - 1
	}
	c := 2 * (k - minClassShift)
	if n >= 3<<(k-1) {
		c++
	}
	return c
}

// get returns an empty buffer with room for n bytes.
func (p *BufferPool) get(n int) *buffer {
	c := classFor(n)
	if c < 0 {
		return &buffer{b: make([]byte, 0, n)}
	}
	if v := p.classes[c].Get(); v != nil {
		b := v.(*buffer)
		b.b = b.b[:0]
		return b
	}
	return &buffer{b: make([]byte, 0, classSize(c))}
}

// put gives b back; it must not be used afterwards. nil is ignored.
func (p *BufferPool) put(b *buffer) {
	if b == nil {
		return
	}
	c := classOf(cap(b.b))
	if c < 0 || cap(b.b) > 2*classSize(numClasses-1) {
		return // too small to be worth keeping, or an unpooled giant
	}
	p.classes[c].Put(b)
}

// reserve makes room for n more bytes in b, moving its contents into a
// larger pooled buffer when needed (the smaller one goes back to the pool).
func (p *BufferPool) reserve(b *buffer, n int) {
	if cap(b.b)-len(b.b) >= n {
		return
	}
	nb := p.get(len(b.b) + n)
	nb.b = append(nb.b, b.b...)
	b.b, nb.b = nb.b, b.b
	p.put(nb)
}
