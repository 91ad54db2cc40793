package rtprecv

import "testing"

const (
	t0 = int64(1_700_000_000) * second // a realistic unix time, ns
	ms = int64(1e6)
)

// recv feeds audio-paced packets: seq n is sent at n*20 ms (960 ticks at
// 48 kHz) and arrives on time, so only the sequence logic is under test.
func recv(s *Stream, seqs ...uint16) {
	for _, q := range seqs {
		s.Received(q, uint32(q)*960, t0+int64(q)*20*ms)
	}
}

func span(from uint16, n int) []uint16 {
	out := make([]uint16, 0, n)
	for i := range n {
		out = append(out, from+uint16(i))
	}
	return out
}

func without(seqs []uint16, drop ...uint16) []uint16 {
	out := seqs[:0:0]
next:
	for _, q := range seqs {
		for _, d := range drop {
			if q == d {
				continue next
			}
		}
		out = append(out, q)
	}
	return out
}

func report(t *testing.T, s *Stream) (fraction uint8, total, highest uint32) {
	t.Helper()
	rr, ok := s.Report(t0)
	if !ok {
		t.Fatal("Report: not ok after packets")
	}
	if rr.SSRC != s.ssrc {
		t.Fatalf("SSRC %x, want %x", rr.SSRC, s.ssrc)
	}
	return rr.FractionLost, rr.TotalLost, rr.LastSequenceNumber
}

func TestNewRejectsBadWindow(t *testing.T) {
	for _, w := range []int{-64, 1, 32, 63, 100, 1000, 1 << 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(window %d) did not panic", w)
				}
			}()
			New(1, 90000, w)
		}()
	}
	for _, w := range []int{0, 64, 1024, 1 << 15} {
		New(1, 90000, w)
	}
}

func TestReportBeforeFirstPacket(t *testing.T) {
	s := New(7, 48000, 0)
	s.SenderReport(0x1122334455667788, t0)
	if _, ok := s.Report(t0); ok {
		t.Fatal("Report ok before any packet")
	}
}

func TestInOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		from    uint16
		n       int
		highest uint32
	}{
		{"from 0", 0, 100, 99},
		{"from 1000", 1000, 500, 1499},
		{"wrap 65534 to 1", 65534, 4, 1<<16 | 1},
		{"three wraps", 0, 3<<16 + 10, 3<<16 | 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range []int{0, 64, 1024} {
				s := New(0xAB, 48000, w)
				recv(s, span(tc.from, tc.n)...)
				fr, total, hi := report(t, s)
				if fr != 0 || total != 0 || hi != tc.highest {
					t.Errorf("window %d: fraction %d, total %d, highest %#x; want 0, 0, %#x", w, fr, total, hi, tc.highest)
				}
			}
		})
	}
}

func TestLoss(t *testing.T) {
	for _, w := range []int{0, 64, 512} {
		s := New(1, 48000, w)
		recv(s, without(span(0, 100), 90, 95, 97)...)
		if fr, total, _ := report(t, s); total != 3 || fr != 3*256/100 {
			t.Errorf("window %d, 3 of 100 lost: fraction %d total %d, want %d 3", w, fr, total, 3*256/100)
		}
		recv(s, span(100, 20)...)
		if fr, total, _ := report(t, s); total != 3 || fr != 0 {
			t.Errorf("window %d, clean interval: fraction %d total %d, want 0 3", w, fr, total)
		}
		recv(s, 90, 95, 97) // late, but fewer than 100 behind
		if fr, total, hi := report(t, s); total != 0 || fr != 0 || hi != 119 {
			t.Errorf("window %d, late arrivals: fraction %d total %d highest %d, want 0 0 119", w, fr, total, hi)
		}
	}
}

func TestDuplicates(t *testing.T) {
	s := New(1, 48000, 512)
	recv(s, without(span(0, 20), 10)...)
	recv(s, 19, 19, 19, 5, 5, 12, 0)
	if fr, total, _ := report(t, s); total != 1 || fr != 256/20 {
		t.Errorf("fraction %d total %d, want %d 1", fr, total, 256/20)
	}
	if s.received != 19 {
		t.Errorf("received %d, want 19", s.received)
	}
	// Without a NACK log only the highest is known to be a duplicate;
	// older duplicates count, as in RFC 3550 (documented on Received).
	a := New(1, 48000, 0)
	recv(a, without(span(0, 20), 10)...)
	recv(a, 19, 19, 19)
	if _, total, _ := report(t, a); total != 1 {
		t.Errorf("window 0: total %d, want 1", total)
	}
	recv(a, 3, 4, 5) // now more received than expected: 0, not -2
	if fr, total, _ := report(t, a); total != 0 || fr != 0 {
		t.Errorf("window 0, old duplicates: fraction %d total %d, want 0 0", fr, total)
	}
}

// A packet overtaken by the first one widens the range expected, so the
// numbers between it and the first count as lost until they arrive.
func TestOvertakenFirst(t *testing.T) {
	for _, w := range []int{0, 64} {
		s := New(1, 48000, w)
		recv(s, 10, 7, 11)
		if fr, total, hi := report(t, s); total != 2 || fr != 2*256/5 || hi != 11 {
			t.Errorf("window %d: fraction %d total %d highest %d, want %d 2 11", w, fr, total, hi, 2*256/5)
		}
		recv(s, 8, 9)
		if _, total, _ := report(t, s); total != 0 {
			t.Errorf("window %d: total %d after the rest arrived, want 0", w, total)
		}
	}
}

// The field holds 24 signed bits.
func TestTotalLostSaturates(t *testing.T) {
	s := New(1, 90000, 0)
	var seq uint16
	for range 3000 {
		seq += maxDropout - 1
		recv(s, seq)
	}
	if _, total, _ := report(t, s); total != 0x7FFFFF {
		t.Errorf("total %#x, want 0x7fffff", total)
	}
}

// A retransmission that answers a NACK can come back more than
// maxMisorder behind; two in a row restart the stream under the RFC's
// rule, which is kept only where the NACK log cannot tell.
func TestLateBeyondMisorder(t *testing.T) {
	for _, tc := range []struct {
		window  int
		highest uint32
		total   uint32
	}{
		{512, 299, 0},
		{64, 51, 0}, // restarted at 51
		{0, 51, 0},
	} {
		s := New(1, 90000, tc.window)
		recv(s, without(span(0, 300), 50, 51)...)
		recv(s, 50, 51)
		if _, total, hi := report(t, s); hi != tc.highest || total != tc.total {
			t.Errorf("window %d: highest %d total %d, want %d %d", tc.window, hi, total, tc.highest, tc.total)
		}
	}
}

func TestRestart(t *testing.T) {
	for _, w := range []int{0, 512} {
		s := New(1, 90000, w)
		recv(s, span(0, 10)...)
		recv(s, 20000) // stray: ignored, not counted
		recv(s, 10)    // and forgotten by the next packet
		recv(s, 20001)
		if _, total, hi := report(t, s); hi != 10 || total != 0 || s.received != 11 {
			t.Errorf("window %d, stray packets: highest %d total %d received %d, want 10 0 11", w, hi, total, s.received)
		}
		recv(s, 40000, 40001, 40003) // a new numbering
		fr, total, hi := report(t, s)
		if hi != 40003 || total != 1 || fr != 256/3 {
			t.Errorf("window %d, restart: highest %d total %d fraction %d, want 40003 1 85", w, hi, total, fr)
		}
		if got := s.Missing(nil, 0); w > 0 && !equal(got, []uint16{40002}) {
			t.Errorf("window %d, after restart: missing %v, want [40002]", w, got)
		}
	}
	// The restart also resets the cycle count, as RFC 3550 A.1 does.
	s := New(1, 90000, 0)
	recv(s, span(65530, 10)...)
	recv(s, 30000, 30001)
	if _, _, hi := report(t, s); hi != 30001 {
		t.Errorf("restart after a wrap: highest %#x, want 30001", hi)
	}
}

func TestAllocs(t *testing.T) {
	s := New(1, 90000, 1024)
	var seq uint16
	var i int64
	if n := testing.AllocsPerRun(1000, func() {
		i++
		seq += 1 + uint16(i%7/6) // a loss now and then
		s.Received(seq, uint32(i)*3000, t0+i*33*ms)
		s.Received(seq-3, uint32(i-3)*3000, t0+i*33*ms) // late or duplicate
	}); n != 0 {
		t.Errorf("Received: %v allocations per run", n)
	}
	dst := make([]uint16, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { dst = s.Missing(dst[:0], 0) }); n != 0 {
		t.Errorf("Missing: %v allocations per run", n)
	}
	if len(dst) == 0 {
		t.Error("Missing found nothing to NACK; the test lost its point")
	}
	if n := testing.AllocsPerRun(100, func() { s.Report(t0) }); n != 0 {
		t.Errorf("Report: %v allocations per run", n)
	}
}

func BenchmarkReceived(b *testing.B) {
	s := New(1, 90000, 1024)
	var i int64
	for b.Loop() {
		i++
		s.Received(uint16(i), uint32(i)*3000, t0+i*33*ms)
	}
}
