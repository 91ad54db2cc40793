package twccfb

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/ducha-dev/ducha/internal/peertest"
)

func TestSequence(t *testing.T) {
	other := []byte{9} // a one-byte extension (an audio level, say) before the one wanted
	for _, c := range []struct {
		name   string
		pkt    []byte
		id     uint8
		want   uint16
		wantOK bool
	}{
		{"one-byte", peertest.ExtPacket(t, 1, false, map[uint8][]byte{1: other, 5: {0x12, 0x34}}), 5, 0x1234, true},
		{"two-byte", peertest.ExtPacket(t, 1, true, map[uint8][]byte{1: other, 20: {0xbe, 0xef}}), 20, 0xbeef, true},
		{"absent", peertest.ExtPacket(t, 1, false, map[uint8][]byte{1: other}), 5, 0, false},
		{"no extensions", peertest.ExtPacket(t, 1, false, nil), 5, 0, false},
		{"too short a value", peertest.ExtPacket(t, 1, false, map[uint8][]byte{5: {7}}), 5, 0, false},
	} {
		got, ok := Sequence(c.pkt, c.id)
		if got != c.want || ok != c.wantOK {
			t.Errorf("%s: %#x %v, want %#x %v", c.name, got, ok, c.want, c.wantOK)
		}
	}
	// A length that runs past the datagram is refused, not read.
	b := peertest.ExtPacket(t, 1, false, map[uint8][]byte{5: {0x12, 0x34}})
	if _, ok := Sequence(b[:15], 5); ok {
		t.Error("a truncated extension block was read")
	}
}

// The feedback reports each packet at the time it was recorded with, not
// when it was recorded or built, and a missing number as not received.
func TestFeedbackReportsGivenTimes(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	f := New(t0)
	arrive := map[uint16]time.Duration{100: 10 * time.Millisecond, 101: 12 * time.Millisecond, 103: 30 * time.Millisecond}
	for _, seq := range []uint16{100, 101, 103} {
		if !f.RecordPacket(peertest.ExtPacket(t, seq, false, map[uint8][]byte{3: {byte(seq >> 8), byte(seq)}}), 3, t0.Add(arrive[seq])) {
			t.Fatalf("packet %d not recorded", seq)
		}
	}
	if f.RecordPacket(peertest.ExtPacket(t, 104, false, nil), 3, t0) {
		t.Error("a packet without the extension was recorded")
	}
	pkts := f.Build()
	if len(pkts) != 1 {
		t.Fatalf("%d feedback packets, want 1", len(pkts))
	}
	cc, ok := pkts[0].(*rtcp.TransportLayerCC)
	if !ok {
		t.Fatalf("feedback is %T", pkts[0])
	}
	if cc.MediaSSRC != 0xabcd || cc.BaseSequenceNumber != 100 || cc.PacketStatusCount != 4 {
		t.Fatalf("media SSRC %#x, base %d, count %d; want 0xabcd, 100, 4", cc.MediaSSRC, cc.BaseSequenceNumber, cc.PacketStatusCount)
	}
	if len(cc.RecvDeltas) != 3 {
		t.Fatalf("%d received deltas, want 3 (102 missing)", len(cc.RecvDeltas))
	}
	// The first delta is from the reference time (multiples of 64 ms);
	// the others are the gaps between the arrivals given.
	if got := time.Duration(cc.RecvDeltas[1].Delta) * time.Microsecond; got != 2*time.Millisecond {
		t.Errorf("101 after 100: %v, want 2ms", got)
	}
	if got := time.Duration(cc.RecvDeltas[2].Delta) * time.Microsecond; got != 18*time.Millisecond {
		t.Errorf("103 after 101: %v, want 18ms", got)
	}
	ref := time.Duration(cc.ReferenceTime)*64*time.Millisecond + time.Duration(cc.RecvDeltas[0].Delta)*time.Microsecond
	if ref != 10*time.Millisecond {
		t.Errorf("100 reported at %v after the start, want 10ms", ref)
	}
	if f.Recorded() != 3 {
		t.Errorf("%d recorded, want 3", f.Recorded())
	}
	if again := f.Build(); len(again) != 0 {
		t.Errorf("a second build with nothing new gave %d packets", len(again))
	}
}

func TestRecordPacketAllocatesNothing(t *testing.T) {
	f := New(time.Now())
	pkts := make([][]byte, 1200)
	for i := range pkts {
		pkts[i] = peertest.ExtPacket(t, uint16(i), false, map[uint8][]byte{1: {9}, 3: {byte(i >> 8), byte(i)}})
	}
	at := time.Now()
	// Pion's recorder grows its arrival map in steps; warm it first.
	for _, p := range pkts[:1000] {
		f.RecordPacket(p, 3, at)
	}
	i := 1000
	if n := testing.AllocsPerRun(150, func() {
		f.RecordPacket(pkts[i], 3, at)
		i++
	}); n != 0 {
		t.Errorf("%v allocations per recorded packet", n)
	}
	if f.Recorded() != 1151 {
		t.Errorf("%d recorded, want 1151", f.Recorded())
	}
}

// Run writes what was recorded at each tick, counts what went out, and
// returns when its context ends.
func TestRun(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	f := New(t0)
	tick := make(chan time.Time)
	wrote := make(chan []rtcp.Packet, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Run(ctx, tick, func(p []rtcp.Packet) error { wrote <- p; return nil })
		close(done)
	}()
	tick <- t0 // nothing recorded: nothing written
	f.Record(0xabcd, 7, t0.Add(time.Millisecond))
	tick <- t0
	select {
	case p := <-wrote:
		if cc, ok := p[0].(*rtcp.TransportLayerCC); !ok || cc.BaseSequenceNumber != 7 {
			t.Errorf("wrote %v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing written after a tick")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
	if len(wrote) != 0 || f.Sent() != 1 {
		t.Errorf("%d more written, %d sent; want 0 and 1", len(wrote), f.Sent())
	}
}
