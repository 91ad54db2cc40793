package mux

import (
	"os"
	"sort"
	"testing"
	"time"
)

// BenchmarkRecorderPacket measures the recorder's cost per RTP packet of a
// 640x480 VP8 + Opus call (about 110 packets/s): WriteRTP, jitter buffer,
// depacketizing, interleaving and WebM framing, with segment files written
// (and synced every simulated second) into a tmpfs when one exists, so
// disk latency does not hide the CPU cost. Segments are deleted as they
// finish, as the archive would.
func BenchmarkRecorderPacket(b *testing.B) { benchRecorder(b, nil) }

// BenchmarkRecorderPacketDTX is BenchmarkRecorderPacket with the
// microphone in DTX every other second (a packet every 400 ms): the holes
// are filled, which must not allocate either.
func BenchmarkRecorderPacketDTX(b *testing.B) {
	benchRecorder(b, func(i int) opusSent {
		if (i/50)%2 == 1 && i%20 != 0 {
			return opusDTX
		}
		return opusSend
	})
}

// benchRecorder runs the benchmark; audio is sent as plan says (nil: every
// packet).
func benchRecorder(b *testing.B, plan func(i int) opusSent) {
	v := clip(b, CodecVP8, 10, 40)
	a := clip(b, CodecOpus, 10, 0)
	var pk []sent
	pk = append(pk, packetize(v, 1, 0)...)
	if plan == nil {
		pk = append(pk, packetize(a, 2, 0)...)
	} else {
		pk = append(pk, opusPackets(a, 2, 0, plan)...)
	}
	sort.SliceStable(pk, func(i, j int) bool { return pk[i].sendT < pk[j].sendT })
	type orig struct {
		seq uint16
		ts  uint32
	}
	origs := make([]orig, len(pk))
	count := map[Kind]int{}
	bytes := 0
	for i, p := range pk {
		origs[i] = orig{p.pkt.SequenceNumber, p.pkt.Timestamp}
		count[p.kind]++
		bytes += len(p.pkt.Payload)
	}
	const clipLen = 10 * time.Second
	ticks := map[Kind]uint32{KindVideo: 90000 * 10, KindAudio: 48000 * 10}

	dir := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "mux-bench-"); err == nil {
			dir = d
			defer os.RemoveAll(d)
		}
	}
	clk := &fakeClock{t: testT0}
	r, err := newRecorder(Config{Dir: dir, Name: "bench", Now: clk.Now,
		OnSegment: func(s Segment) { _ = os.Remove(s.Path) }})
	if err != nil {
		b.Fatal(err)
	}
	vt, _ := r.AddTrack("video/VP8")
	at, _ := r.AddTrack("audio/opus")

	b.SetBytes(int64(bytes / len(pk)))
	b.ReportAllocs()
	b.ResetTimer()
	next := time.Duration(0)
	for i := 0; i < b.N; i++ {
		idx, round := i%len(pk), i/len(pk)
		s := pk[idx]
		s.pkt.SequenceNumber = origs[idx].seq + uint16(round*count[s.kind])
		s.pkt.Timestamp = origs[idx].ts + uint32(round)*ticks[s.kind]
		at0 := time.Duration(round)*clipLen + s.sendT
		for next <= at0 {
			clk.set(testT0.Add(next))
			r.step()
			next += tickInterval
		}
		clk.set(testT0.Add(at0))
		tr := vt
		if s.kind == KindAudio {
			tr = at
		}
		if err := tr.WriteRTP(s.pkt); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := r.Stats()
	if st.PacketsLost != 0 || st.FramesDropped != 0 {
		b.Fatalf("benchmark stream lost data: %+v", st)
	}
	if filled := st.AudioFramesFilled > 0; b.N >= len(pk) && filled != (plan != nil) {
		b.Fatalf("audio holes filled: %v, want %v: %+v", filled, plan != nil, st)
	}
}
