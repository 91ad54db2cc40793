package rtprecv

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func equal(a, b []uint16) bool { return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b)) }

func TestMissing(t *testing.T) {
	// Each step receives recv, then calls Missing(nil, max) once.
	type step struct {
		recv []uint16
		max  int
		want []uint16
	}
	for _, tc := range []struct {
		name   string
		window int
		steps  []step
	}{
		{"gaps oldest first, at most max times", 64, []step{
			{recv: []uint16{10, 11, 13, 16}, max: 2, want: []uint16{12, 14, 15}},
			{max: 2, want: []uint16{12, 14, 15}},
			{max: 2},
			{recv: []uint16{17, 19}, max: 2, want: []uint16{18}},
			{max: 3, want: []uint16{12, 14, 15, 18}}, // a higher limit lets them out again
		}},
		{"no limit", 64, []step{
			{recv: []uint16{1, 3}, want: []uint16{2}},
			{want: []uint16{2}},
			{want: []uint16{2}},
		}},
		{"late arrival removes", 64, []step{
			{recv: []uint16{1, 2, 5}, max: 5, want: []uint16{3, 4}},
			{recv: []uint16{3}, max: 5, want: []uint16{4}},
			{recv: []uint16{4, 4, 3}, max: 5},
		}},
		{"nothing before the first packet", 1024, []step{
			{recv: []uint16{500}},
			{recv: []uint16{501, 503}, want: []uint16{502}},
		}},
		{"a packet overtaken by the first", 64, []step{
			{recv: []uint16{10, 7}, want: []uint16{8, 9}},
		}},
		{"window 0: never", 0, []step{
			{recv: []uint16{1, 5, 9}},
		}},
		{"window slides past old gaps", 64, []step{
			{recv: append([]uint16{0}, span(2, 63)...), want: []uint16{1}}, // highest 64
			{recv: []uint16{65, 66}}, // 1 is now 65 behind
		}},
		{"a number's count dies with it", 64, []step{
			{recv: []uint16{0, 2}, max: 1, want: []uint16{1}},
			{max: 1},
			{recv: append(span(3, 62), 66), max: 1, want: []uint16{65}}, // 65 takes 1's place
		}},
		{"jump of exactly the window", 64, []step{
			{recv: []uint16{0, 64}, want: span(1, 63)},
		}},
		{"jump past the window resets", 64, []step{
			{recv: []uint16{0, 2, 100}},
			{recv: []uint16{102}, want: []uint16{101}},
		}},
		{"wrap", 64, []step{
			{recv: []uint16{65533, 65535, 1, 2}, want: []uint16{65534, 0}},
			{recv: []uint16{65534}, want: []uint16{0}},
		}},
		{"whole words received", 1024, []step{
			{recv: without(span(0, 300), 63, 64, 128, 255), want: []uint16{63, 64, 128, 255}},
		}},
		{"late beyond misorder, inside the window", 512, []step{
			{recv: without(span(0, 300), 50, 51), max: 1, want: []uint16{50, 51}},
			{recv: []uint16{51}, max: 2, want: []uint16{50}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(1, 90000, tc.window)
			for i, st := range tc.steps {
				recv(s, st.recv...)
				if got := s.Missing(nil, st.max); !equal(got, st.want) {
					t.Fatalf("step %d: Missing = %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

func TestMissingAppends(t *testing.T) {
	s := New(1, 90000, 64)
	recv(s, 1, 4)
	if got := s.Missing([]uint16{99}, 0); !equal(got, []uint16{99, 2, 3}) {
		t.Errorf("Missing = %v, want [99 2 3]", got)
	}
	if got := New(1, 90000, 64).Missing(nil, 0); got != nil {
		t.Errorf("before any packet: %v", got)
	}
}

// TestAgainstModel replays a stream with loss, reordering and duplicates
// across a wrap and checks the counters and the NACK list against sets.
func TestAgainstModel(t *testing.T) {
	const (
		n      = 20000
		first  = 65000
		window = 1024
	)
	rng := rand.New(rand.NewPCG(1, 2))
	var order []int64 // offsets from first, in arrival order
	for i := int64(0); i < n; i++ {
		if rng.IntN(100) >= 5 {
			order = append(order, i)
		}
	}
	for range n / 10 { // reorder by up to 30 places
		j := rng.IntN(len(order) - 31)
		k := j + 1 + rng.IntN(30)
		order[j], order[k] = order[k], order[j]
	}
	for range n / 20 { // duplicate up to 20 places later
		j := rng.IntN(len(order) - 21)
		order = slices.Insert(order, j+1+rng.IntN(20), order[j])
	}

	s := New(1, 48000, window)
	got := map[int64]bool{}
	lo, hi := order[0], order[0]
	for i, off := range order {
		s.Received(uint16(first+off), uint32(off)*960, t0+off*20*ms+rng.Int64N(30*ms))
		got[off] = true
		lo, hi = min(lo, off), max(hi, off)
		if i%997 != 0 && i != len(order)-1 {
			continue
		}
		var want []uint16
		for e := max(lo, hi-window+1); e < hi; e++ {
			if !got[e] {
				want = append(want, uint16(first+e))
			}
		}
		if m := s.Missing(nil, 0); !equal(m, want) {
			t.Fatalf("after %d packets: Missing = %v, want %v", i+1, m, want)
		}
	}
	rr, _ := s.Report(t0)
	if want := uint32(hi-lo+1) - uint32(len(got)); rr.TotalLost != want {
		t.Errorf("TotalLost %d, want %d", rr.TotalLost, want)
	}
	if want := uint32(first + hi); rr.LastSequenceNumber != want {
		t.Errorf("highest %#x, want %#x", rr.LastSequenceNumber, want)
	}
	if s.received != int64(len(got)) {
		t.Errorf("received %d, want %d", s.received, len(got))
	}
}

// Missing runs every 100 ms for every video layer a server receives: a
// window with losses in it is scanned, a lossless one (the usual case)
// is not.
func BenchmarkMissing(b *testing.B) {
	for _, c := range []struct {
		name  string
		every int
	}{{"gap-every-50", 50}, {"lossless", 1 << 20}} {
		b.Run(c.name, func(b *testing.B) {
			s := New(1, 90000, 1024)
			for i := range 2000 {
				if i%c.every != 0 || i == 0 {
					recv(s, uint16(i))
				}
			}
			dst := make([]uint16, 0, 1024)
			for b.Loop() {
				dst = s.Missing(dst[:0], 0)
			}
		})
	}
}
