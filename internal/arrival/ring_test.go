package arrival

import (
	"testing"
	"time"
)

func TestRing(t *testing.T) {
	var r Ring
	t0 := time.Unix(1_800_000_000, 0)
	r.Put(7, t0.UnixNano())
	if d, ok := r.Since(7, t0.Add(1500*time.Microsecond)); !ok || d != 1500*time.Microsecond {
		t.Errorf("since %v %v, want 1.5ms", d, ok)
	}
	if _, ok := r.Since(7+Slots, t0); ok {
		t.Error("a packet whose slot holds another was timed")
	}
	if _, ok := r.Since(8, t0); ok {
		t.Error("a packet never stored was timed")
	}
	// Across the 48-bit wrap of the stored microseconds.
	wrapAt := time.UnixMicro(1<<48*6 - 500)
	r.Put(9, wrapAt.UnixNano())
	if d, ok := r.Since(9, wrapAt.Add(2*time.Millisecond)); !ok || d != 2*time.Millisecond {
		t.Errorf("across the wrap: %v %v, want 2ms", d, ok)
	}
	if !r.Holds(9) || r.Holds(9+Slots) || r.Holds(10) {
		t.Error("Holds disagrees with what was put")
	}
}
