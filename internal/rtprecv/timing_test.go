package rtprecv

import (
	"math"
	"testing"
)

// expectJitter iterates RFC 3550 A.8 in floating point.
func expectJitter(transits []float64) float64 {
	j := 0.0
	for i := 1; i < len(transits); i++ {
		j += (math.Abs(transits[i]-transits[i-1]) - j) / 16
	}
	return j
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset func(i int) int64 // arrival delay of packet i, ns
		lo, hi uint32
	}{
		{"on time", func(int) int64 { return 0 }, 0, 0},
		// d is 10 ms = 480 ticks every packet: J tends to 480, and after
		// 200 packets (15/16)^199 of the gap is left, far below 1.
		{"alternating +0/+10 ms", func(i int) int64 { return int64(i%2) * 10 * ms }, 479, 480},
		{"constant +35 ms", func(int) int64 { return 35 * ms }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(1, 48000, 0)
			var transits []float64
			for i := range 200 {
				ts := uint32(i) * 960
				arr := t0 + int64(i)*20*ms + tc.offset(i)
				s.Received(uint16(i), ts, arr)
				transits = append(transits, float64(arr-t0)*48000/1e9-float64(ts))
			}
			rr, _ := s.Report(t0)
			want := expectJitter(transits)
			if rr.Jitter < tc.lo || rr.Jitter > tc.hi || math.Abs(float64(rr.Jitter)-want) > 1 {
				t.Errorf("jitter %d, want in [%d, %d] and within 1 of %.2f", rr.Jitter, tc.lo, tc.hi, want)
			}
		})
	}
}

// A reordered packet's delay is the queue's, not jitter of the stream.
func TestJitterIgnoresReordered(t *testing.T) {
	s := New(1, 48000, 512)
	recv(s, without(span(0, 50), 20)...)
	s.Received(20, 20*960, t0+49*20*ms)
	s.Received(49, 49*960, t0+80*20*ms) // a duplicate, very late
	recv(s, span(50, 10)...)
	if rr, _ := s.Report(t0); rr.Jitter != 0 {
		t.Errorf("jitter %d, want 0", rr.Jitter)
	}
}

// Arrival times are converted to RTP units from the first packet on;
// ten days at 90 kHz is 7.8e19 ns*Hz, past int64 if multiplied at once.
func TestJitterAfterDays(t *testing.T) {
	s := New(1, 90000, 0)
	s.Received(0, 0, t0)
	start := int64(10 * 86400)
	for i := range int64(100) {
		ts := uint32(uint64(start*90000 + i*900)) // 10 ms apart
		s.Received(uint16(1+i), ts, t0+start*second+i*10*ms)
	}
	if rr, _ := s.Report(t0); rr.Jitter != 0 {
		// The first step (from the packet 10 days ago) is on time too.
		t.Errorf("jitter %d after 10 days, want 0", rr.Jitter)
	}
}

func TestSenderReport(t *testing.T) {
	const ntp = 0x1122334455667788
	for _, tc := range []struct {
		name      string
		after     int64
		lsr, dlsr uint32
	}{
		{"1.5 s", 1500 * ms, 0x33445566, 65536 + 32768},
		{"at once", 0, 0x33445566, 0},
		{"1 ms", ms, 0x33445566, 65}, // 65.536 truncated
		{"clock behind", -ms, 0x33445566, 0},
		{"a day: saturates", 86400 * second, 0x33445566, math.MaxUint32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(1, 90000, 0)
			recv(s, 0)
			if rr, _ := s.Report(t0); rr.LastSenderReport != 0 || rr.Delay != 0 {
				t.Fatalf("before any SR: LSR %#x DLSR %d, want 0 0", rr.LastSenderReport, rr.Delay)
			}
			s.SenderReport(ntp, t0)
			rr, _ := s.Report(t0 + tc.after)
			if rr.LastSenderReport != tc.lsr || rr.Delay != tc.dlsr {
				t.Errorf("LSR %#x DLSR %d, want %#x %d", rr.LastSenderReport, rr.Delay, tc.lsr, tc.dlsr)
			}
		})
	}
}
