package mux

import (
	"bytes"
	"testing"
)

// TestBufferClasses: every request gets the smallest class that holds it,
// and a returned buffer goes to the largest class it can serve.
func TestBufferClasses(t *testing.T) {
	for c := 0; c < numClasses; c++ {
		if c > 0 && classSize(c) <= classSize(c-1) {
			t.Fatalf("class %d (%d bytes) not above class %d", c, classSize(c), c-1)
		}
		if got := classOf(classSize(c)); got != c {
			t.Fatalf("a buffer of %d bytes goes to class %d, want %d", classSize(c), got, c)
		}
	}
	if classSize(0) != 64 || classSize(1) != 96 || classSize(numClasses-1) != 1<<20 {
		t.Fatalf("classes run %d, %d .. %d", classSize(0), classSize(1), classSize(numClasses-1))
	}
	for n := 0; n <= 1<<20+1; n++ {
		c := classFor(n)
		if n > 1<<20 {
			if c != -1 {
				t.Fatalf("%d bytes: class %d, want none", n, c)
			}
			continue
		}
		if classSize(c) < n || c > 0 && classSize(c-1) >= n {
			t.Fatalf("%d bytes: class %d (%d bytes)", n, c, classSize(c))
		}
		if n < 64 {
			if classOf(n) != -1 {
				t.Fatalf("capacity %d: class %d, want none", n, classOf(n))
			}
			continue
		}
		k := classOf(n)
		if classSize(k) > n || k+1 < numClasses && classSize(k+1) <= n {
			t.Fatalf("capacity %d: class %d (%d bytes)", n, k, classSize(k))
		}
	}
}

// TestBufferReserve: reserve keeps the contents and makes the room asked
// for; the pool serves any size.
func TestBufferReserve(t *testing.T) {
	p := NewBufferPool()
	b := p.get(100)
	if len(b.b) != 0 || cap(b.b) != 128 {
		t.Fatalf("get(100): len %d cap %d, want 0 and 128", len(b.b), cap(b.b))
	}
	want := bytes.Repeat([]byte{7}, 100)
	b.b = append(b.b, want...)
	p.reserve(b, 28)
	if cap(b.b) != 128 {
		t.Fatalf("reserve within capacity moved the buffer to %d bytes", cap(b.b))
	}
	p.reserve(b, 1000)
	if !bytes.Equal(b.b, want) || cap(b.b)-len(b.b) < 1000 || cap(b.b) != 1536 {
		t.Fatalf("after reserve: %d bytes (cap %d), contents kept %v", len(b.b), cap(b.b), bytes.Equal(b.b, want))
	}
	p.put(b)
	big := p.get(3 << 20)
	if cap(big.b) != 3<<20 {
		t.Fatalf("get(3 MiB): cap %d", cap(big.b))
	}
	p.put(big) // dropped, not pooled
	p.put(nil)
}
