package mux

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

type jbStep struct {
	at    int    // ms since start
	seq   uint16 // packet to insert (ignored when pop)
	pop   bool   // pop everything releasable at this time instead
	force bool
	want  []int // for pop: released seqs in order, -1 for a gap
}

func TestJitterBuffer(t *testing.T) {
	const hold = 100
	for _, tc := range []struct {
		name   string
		resync map[int]bool // step index -> Resync before that insert
		steps  []jbStep
		stats  jitterStats
	}{
		{
			name: "in order, start waits the hold once",
			steps: []jbStep{
				{at: 0, seq: 10}, {at: 20, seq: 11},
				{at: 50, pop: true, want: nil},
				{at: 100, pop: true, want: []int{10, 11}},
				{at: 120, seq: 12}, {at: 121, pop: true, want: []int{12}},
			},
			stats: jitterStats{Received: 3},
		},
		{
			name: "reordered at start: earlier packet still first",
			steps: []jbStep{
				{at: 0, seq: 11}, {at: 5, seq: 10}, {at: 7, seq: 12},
				{at: 100, pop: true, want: []int{10, 11, 12}},
			},
			stats: jitterStats{Received: 3},
		},
		{
			name: "gap filled by retransmission within hold",
			steps: []jbStep{
				{at: 0, seq: 1}, {at: 100, pop: true, want: []int{1}},
				{at: 120, seq: 3}, {at: 140, seq: 4},
				{at: 150, pop: true, want: nil},
				{at: 200, seq: 2},
				{at: 201, pop: true, want: []int{2, 3, 4}},
			},
			stats: jitterStats{Received: 4},
		},
		{
			name: "gap given up after hold, late copy counted",
			steps: []jbStep{
				{at: 0, seq: 1}, {at: 100, pop: true, want: []int{1}},
				{at: 120, seq: 3},
				{at: 219, pop: true, want: nil},
				{at: 220, pop: true, want: []int{-1, 3}},
				{at: 300, seq: 2},
				{at: 301, pop: true, want: nil},
			},
			stats: jitterStats{Received: 3, Lost: 1, Late: 1},
		},
		{
			name: "duplicates of buffered and released packets",
			steps: []jbStep{
				{at: 0, seq: 1}, {at: 100, pop: true, want: []int{1}},
				{at: 110, seq: 3}, {at: 111, seq: 3}, {at: 112, seq: 1},
				{at: 113, seq: 2}, {at: 114, pop: true, want: []int{2, 3}},
			},
			stats: jitterStats{Received: 5, Duplicate: 2},
		},
		{
			name: "sequence wraps around",
			steps: []jbStep{
				{at: 0, seq: 65534}, {at: 1, seq: 65535}, {at: 2, seq: 1}, {at: 3, seq: 0},
				{at: 100, pop: true, want: []int{65534, 65535, 0, 1}},
			},
			stats: jitterStats{Received: 4},
		},
		{
			name:   "resync skips the known gap without waiting",
			resync: map[int]bool{2: true},
			steps: []jbStep{
				{at: 0, seq: 1}, {at: 100, pop: true, want: []int{1}},
				{at: 110, seq: 5},
				{at: 111, pop: true, want: []int{-1, -1, -1, 5}},
			},
			stats: jitterStats{Received: 2, Lost: 3},
		},
		{
			name: "far jump with nothing buffered restarts",
			steps: []jbStep{
				{at: 0, seq: 1}, {at: 100, pop: true, want: []int{1}},
				{at: 110, seq: 30000},
				{at: 111, pop: true, want: []int{-1}},
				{at: 210, pop: true, want: []int{30000}},
			},
			stats: jitterStats{Received: 2},
		},
		{
			name: "force releases across gaps at the end",
			steps: []jbStep{
				{at: 0, seq: 1}, {at: 100, pop: true, want: []int{1}},
				{at: 110, seq: 4},
				{at: 111, pop: true, force: true, want: []int{-1, -1, 4}},
			},
			stats: jitterStats{Received: 2, Lost: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJitterBuffer(64, hold*time.Millisecond, NewBufferPool())
			t0 := time.Unix(1000, 0)
			for i, s := range tc.steps {
				now := t0.Add(time.Duration(s.at) * time.Millisecond)
				if !s.pop {
					if tc.resync[i] {
						j.markResync()
					}
					j.insert(&rtp.Packet{Header: rtp.Header{SequenceNumber: s.seq, Timestamp: uint32(s.seq)}, Payload: []byte{byte(s.seq)}}, now)
					continue
				}
				var got []int
				for {
					sl, ev := j.pop(now, s.force)
					if ev == popNone {
						break
					}
					if ev == popGap {
						got = append(got, -1)
						continue
					}
					if sl.payload()[0] != byte(sl.seq) {
						t.Fatalf("step %d: payload of %d is %d", i, sl.seq, sl.payload()[0])
					}
					got = append(got, int(sl.seq))
					j.advance()
				}
				if !equalInts(got, s.want) {
					t.Fatalf("step %d at %dms: released %v, want %v", i, s.at, got, s.want)
				}
			}
			st := j.stats
			st.Bytes = 0
			if st != tc.stats {
				t.Errorf("stats %+v, want %+v", st, tc.stats)
			}
		})
	}
}

func TestJitterBufferOverflowKeepsOldest(t *testing.T) {
	j := newJitterBuffer(16, time.Second, NewBufferPool())
	t0 := time.Unix(1000, 0)
	for s := uint16(0); s < 20; s++ {
		j.insert(&rtp.Packet{Header: rtp.Header{SequenceNumber: s}, Payload: []byte{1}}, t0)
	}
	if j.stats.Overflow != 4 {
		t.Fatalf("overflow %d, want 4", j.stats.Overflow)
	}
	n := 0
	for {
		_, ev := j.pop(t0.Add(2*time.Second), false)
		if ev != popPacket {
			break
		}
		j.advance()
		n++
	}
	if n != 16 {
		t.Fatalf("released %d, want the 16 buffered", n)
	}
}

// TestJitterBufferSteadyStateAllocs: a stream in order allocates nothing
// once the payload buffers exist.
func TestJitterBufferSteadyStateAllocs(t *testing.T) {
	j := newJitterBuffer(64, 0, NewBufferPool())
	t0 := time.Unix(1000, 0)
	p := &rtp.Packet{Payload: make([]byte, 1100)}
	seq := uint16(0)
	run := func() {
		for i := 0; i < 8; i++ {
			p.SequenceNumber = seq
			seq++
			j.insert(p, t0)
		}
		for {
			_, ev := j.pop(t0, false)
			if ev != popPacket {
				break
			}
			j.advance()
		}
	}
	run()
	if raceEnabled {
		t.Skip("sync.Pool drops buffers at random under the race detector")
	}
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("%v allocations per batch, want 0", a)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// drain releases everything releasable at now and returns the sequence
// numbers released (-1 for each gap).
func drain(j *jitterBuffer, now time.Time) []int {
	var got []int
	for {
		sl, ev := j.pop(now, false)
		switch ev {
		case popNone:
			j.trim(now)
			return got
		case popGap:
			got = append(got, -1)
		case popPacket:
			got = append(got, int(sl.seq))
			j.advance()
		}
	}
}

// TestJitterBufferGrowsUnderStall: while the owner is stalled (a disk that
// does not answer) the ring grows to hold every packet, all of them come
// out in order afterwards, the window refuses exactly what the full-size
// ring refused, and the memory is given back once the stall is over.
func TestJitterBufferGrowsUnderStall(t *testing.T) {
	j := newJitterBuffer(videoRingSize, DefaultJitterHold, NewBufferPool())
	t0 := time.Unix(1000, 0)
	seq := uint16(65000) // wraps during the test
	var want []int
	send := func(at time.Duration) {
		j.insert(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}, Payload: make([]byte, 1100)}, t0.Add(at))
		want = append(want, int(seq))
		seq++
	}
	// 2 s of 100 packets/s drained every 50 ms: the ring stays small.
	at := time.Duration(0)
	var got []int
	for ; at < 2*time.Second; at += 10 * time.Millisecond {
		send(at)
		if at%tickInterval == 0 {
			got = append(got, drain(j, t0.Add(at))...)
		}
	}
	if len(j.slots) != ringStart {
		t.Fatalf("before the stall: %d slots, want %d", len(j.slots), ringStart)
	}
	// A stall as long as the window (20 s at this rate): nothing drained.
	for j.count < videoRingSize {
		send(at)
		at += 10 * time.Millisecond
	}
	if len(j.slots) != videoRingSize || j.count != videoRingSize {
		t.Fatalf("in the stall: %d slots holding %d, want %d", len(j.slots), j.count, videoRingSize)
	}
	// One more than the window is refused, as by a ring of the full size.
	j.insert(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}, Payload: make([]byte, 1100)}, t0.Add(at))
	if j.stats.Overflow != 1 {
		t.Fatalf("overflow %d, want 1", j.stats.Overflow)
	}
	seq++ // that packet is gone; its gap is counted lost below
	want = append(want, -1)
	got = append(got, drain(j, t0.Add(at))...)
	// The stream goes on; after two quiet trim periods the memory is back.
	for end := at + 3*trimEvery; at < end; at += 10 * time.Millisecond {
		send(at)
		if at%tickInterval == 0 {
			got = append(got, drain(j, t0.Add(at))...)
		}
	}
	got = append(got, drain(j, t0.Add(at+time.Second))...)
	if !equalInts(got, want) {
		t.Fatalf("released %d entries, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	if st := j.stats; st.Lost != 1 || st.Late != 0 || st.Duplicate != 0 || st.Overflow != 1 {
		t.Fatalf("stats %+v, want 1 lost and 1 overflow", st)
	}
	if len(j.slots) != ringStart {
		t.Fatalf("after the stall: %d slots, want %d", len(j.slots), ringStart)
	}
	if n := heldBuffers(j); n != j.count {
		t.Fatalf("after the stall: %d payload buffers held for %d packets", n, j.count)
	}
}

// TestJitterBufferQuietTrackStaysSmall: a track that never holds much (audio
// drained on every tick) keeps its initial ring and a few small buffers,
// whatever its window.
func TestJitterBufferQuietTrackStaysSmall(t *testing.T) {
	j := newJitterBuffer(audioRingSize, DefaultJitterHold, NewBufferPool())
	t0 := time.Unix(1000, 0)
	p := &rtp.Packet{Payload: make([]byte, 80)}
	for at := time.Duration(0); at < time.Minute; at += 20 * time.Millisecond {
		j.insert(p, t0.Add(at))
		p.SequenceNumber++
		if at%tickInterval == 0 {
			drain(j, t0.Add(at))
		}
		if len(j.slots) != ringStart {
			t.Fatalf("at %v: %d slots, want %d", at, len(j.slots), ringStart)
		}
	}
	// Only the packets waiting hold buffers, each sized to its packet.
	if n := heldBuffers(j); n != j.count || n > 8 {
		t.Fatalf("%d payload buffers for %d packets waiting, want about a tick's worth", n, j.count)
	}
	for i := range j.slots {
		if b := j.slots[i].buf; b != nil && cap(b.b) > 128 {
			t.Fatalf("payload buffer of %d bytes for 80-byte packets", cap(b.b))
		}
	}
	if st := j.stats; st.Lost+st.Late+st.Duplicate+st.Overflow != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// heldBuffers counts the payload buffers the ring holds.
func heldBuffers(j *jitterBuffer) int {
	n := 0
	for i := range j.slots {
		if j.slots[i].buf != nil {
			n++
		}
	}
	return n
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestJitterMetaKeepsWholeSequenceNumber: an entry of meta, two bytes for
// any window, tells the sequence number it was written for from every
// other one that falls on it.
func TestJitterMetaKeepsWholeSequenceNumber(t *testing.T) {
	for size := 8; size <= 32768; size *= 2 {
		j := newJitterBuffer(size, 0, NewBufferPool())
		for _, seq := range []uint16{0, 1, uint16(size - 1), uint16(size), 40000, 65535} {
			for _, st := range []slotState{slotFilled, slotReleased, slotLost, slotSkipped} {
				j.mark(seq, st)
				if got := j.stateOf(seq); got != st {
					t.Fatalf("window %d: seq %d marked %d reads %d", size, seq, st, got)
				}
				for k := 1; k < 65536/size; k++ {
					if other := seq + uint16(k*size); j.stateOf(other) != slotEmpty {
						t.Fatalf("window %d: seq %d marked %d, seq %d reads %d", size, seq, st, other, j.stateOf(other))
					}
				}
			}
		}
	}
}
