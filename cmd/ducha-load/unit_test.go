package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/signaling/client"
)

func TestHistPercentiles(t *testing.T) {
	var h delayHist
	// 1000 samples: 0.1 ms .. 100 ms in 0.1 ms steps.
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * 100 * time.Microsecond)
	}
	var s histSnap
	h.snapshot(&s)
	if s.count() != 1000 {
		t.Fatalf("count %d", s.count())
	}
	for _, c := range []struct {
		p        float64
		want     time.Duration
		maxError time.Duration // the bucket width there
	}{
		{50, 50 * time.Millisecond, 500 * time.Microsecond},
		{95, 95 * time.Millisecond, 500 * time.Microsecond},
		{99, 99 * time.Millisecond, 500 * time.Microsecond},
		{1, time.Millisecond, 20 * time.Microsecond},
	} {
		got := s.percentile(c.p)
		if got < c.want || got > c.want+c.maxError {
			t.Errorf("p%v = %v, want %v..%v", c.p, got, c.want, c.want+c.maxError)
		}
	}
	if m := s.max(); m < 100*time.Millisecond || m > 100500*time.Microsecond {
		t.Errorf("max %v", m)
	}
	// A window is a difference of snapshots.
	before := s
	for i := 0; i < 10; i++ {
		h.record(3 * time.Second)
	}
	h.snapshot(&s)
	s.sub(&before)
	if s.count() != 10 || s.percentile(50) != 3010*time.Millisecond {
		t.Errorf("window: %d samples, p50 %v", s.count(), s.percentile(50))
	}
	var empty histSnap
	if empty.percentile(99) != 0 || empty.max() != 0 {
		t.Error("an empty histogram has percentiles")
	}
	if histBucket(-time.Millisecond) != 0 || histBucket(time.Hour) != histBuckets-1 {
		t.Error("out-of-range delays must land in the end buckets")
	}
}

// rtpPacket builds a packet with optional CSRCs, a header extension and padding.
func rtpPacket(seq uint16, marker bool, payload []byte, csrcs, extWords, padding int) []byte {
	b := []byte{0x80 | byte(csrcs), 96, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2}
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	b = append(b, make([]byte, 4*csrcs)...)
	if extWords >= 0 {
		b[0] |= 0x10
		b = append(b, 0xbe, 0xde, byte(extWords>>8), byte(extWords))
		b = append(b, make([]byte, 4*extWords)...)
	}
	b = append(b, payload...)
	if padding > 0 {
		b[0] |= 0x20
		b = append(b, make([]byte, padding-1)...)
		b = append(b, byte(padding))
	}
	return b
}

func TestRTPFields(t *testing.T) {
	payload := []byte{1, 2, 3, 4, 5}
	for _, c := range []struct{ csrcs, ext, pad int }{{0, -1, 0}, {2, -1, 0}, {0, 1, 0}, {1, 3, 4}} {
		seq, marker, p, ok := rtpFields(rtpPacket(4242, true, payload, c.csrcs, c.ext, c.pad))
		if !ok || seq != 4242 || !marker || string(p) != string(payload) {
			t.Errorf("%+v: seq %d marker %v payload %v ok %v", c, seq, marker, p, ok)
		}
	}
	if _, _, _, ok := rtpFields([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9}); ok {
		t.Error("an extension longer than the packet was accepted")
	}
	if _, _, _, ok := rtpFields(make([]byte, 11)); ok {
		t.Error("a short packet was accepted")
	}
}

// trailed is a payload with the trailer Synth writes.
func trailed(sent time.Time, counter uint32, n int) []byte {
	p := make([]byte, n)
	t := p[n-client.TrailerLen:]
	binary.BigEndian.PutUint32(t[0:4], 0x44554348)
	binary.BigEndian.PutUint64(t[4:12], uint64(sent.UnixNano()))
	binary.BigEndian.PutUint32(t[12:16], counter)
	return p
}

// Loss after NACK, duplicates, reordering and the sequence number wrap.
func TestRecvTrackLossAndDelay(t *testing.T) {
	now := time.Unix(1000, 0)
	var h delayHist
	rt := newRecvTrack("T1", false, &h, &delayHist{}, nil, func() time.Time { return now })
	// Sequence numbers 65530..65535, 0..9 (wrapping), counters 1..16; 65533
	// and 4 never arrive, 2 arrives late (a retransmission), 7 twice.
	order := []int{65530, 65531, 65532, 65534, 65535, 0, 1, 3, 5, 2, 6, 7, 7, 8, 9}
	for _, s := range order {
		seq := uint16(s)
		counter := uint32(int(seq-65530) + 1)
		sent := now.Add(-2 * time.Millisecond)
		rt.onPacket(rtpPacket(seq, true, trailed(sent, counter, 80), 0, -1, 0), now)
	}
	c := rt.counts()
	if c.expected != 16 || c.unique != 14 || rt.dups.Load() != 1 {
		t.Errorf("expected %d unique %d dups %d; want 16, 14, 1", c.expected, c.unique, rt.dups.Load())
	}
	if c.ctrExpected != 16 || c.ctrUnique != 14 {
		t.Errorf("counters: expected %d unique %d; want 16, 14", c.ctrExpected, c.ctrUnique)
	}
	var s histSnap
	h.snapshot(&s)
	// The late packet (2) and the duplicate are no forwarding-delay samples.
	if s.count() != 13 || s.percentile(50) != 2020*time.Microsecond {
		t.Errorf("delay: %d samples, p50 %v; want 13 at ~2 ms", s.count(), s.percentile(50))
	}
	// A jump beyond the window forgets the old bits but keeps counting.
	rt.onPacket(rtpPacket(9+seqWindow+10, false, make([]byte, 20), 0, -1, 0), now)
	if c2 := rt.counts(); c2.unique != 15 || c2.expected != 16+seqWindow+10 {
		t.Errorf("after a jump: unique %d expected %d", c2.unique, c2.expected)
	}
}

// vp8Payload is a one-packet VP8 frame: descriptor then frame tag.
func vp8Payload(start, key bool) []byte {
	p := make([]byte, 40)
	if start {
		p[0] = 0x10
	}
	if !key {
		p[1] = 0x01
	}
	return p
}

// The first frame counts once its keyframe is whole, even when a packet of
// it is repaired late; video that starts mid-stream asks for a keyframe.
func TestRecvTrackFirstFrame(t *testing.T) {
	clock := time.Unix(2000, 0)
	plis := 0
	rt := newRecvTrack("V", true, &delayHist{}, &delayHist{}, nil, func() time.Time { return clock })
	rt.requestKeyframe = func() { plis++ }
	step := func(seq uint16, marker bool, p []byte) {
		clock = clock.Add(100 * time.Millisecond)
		rt.onPacket(rtpPacket(seq, marker, p, 0, 1, 0), clock)
	}
	step(10, true, vp8Payload(true, false)) // an inter frame: undecodable start
	step(11, true, vp8Payload(true, false))
	step(12, true, vp8Payload(true, false))
	if plis != 1 {
		t.Errorf("%d keyframe requests within 300 ms, want 1", plis)
	}
	step(13, true, vp8Payload(true, false))
	step(14, true, vp8Payload(true, false))
	step(15, true, vp8Payload(true, false)) // 500 ms after the first request
	if plis != 2 {
		t.Errorf("%d keyframe requests after 500 ms, want 2", plis)
	}
	step(20, false, vp8Payload(true, true)) // keyframe start
	step(22, true, vp8Payload(false, true)) // its end; 21 missing
	if rt.firstFrameAt.Load() != 0 {
		t.Fatal("first frame counted with a packet missing")
	}
	step(21, false, vp8Payload(false, true)) // the retransmission
	if got := time.Unix(0, rt.firstFrameAt.Load()); !got.Equal(clock) {
		t.Errorf("first frame at %v, want %v", got, clock)
	}
	if plis != 2 {
		t.Errorf("keyframe requested after the first frame: %d", plis)
	}
	for _, c := range []struct {
		p    []byte
		want bool
	}{
		{[]byte{0x10, 0x00}, true},
		{[]byte{0x10, 0x01}, false},
		{[]byte{0x00, 0x00}, false},                  // not a start
		{[]byte{0x11, 0x00}, false},                  // partition 1
		{[]byte{0x90, 0x80, 0x85, 0x01, 0x00}, true}, // X, 15-bit picture id
		{[]byte{0x90, 0xe0, 0x05, 0x07, 0x01}, false},
		{[]byte{0x90}, false},
	} {
		if got := vp8KeyframeStart(c.p); got != c.want {
			t.Errorf("vp8KeyframeStart(%x) = %v", c.p, got)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP ducha_sfu_packets_out_total RTP packets forwarded.
# TYPE ducha_sfu_packets_out_total counter
ducha_sfu_packets_out_total 1.234e+06
ducha_sfu_bytes_out_total 987654
go_gc_duration_seconds{quantile="0.5"} 1e-05
process_cpu_seconds_total 12.5
`
	m, err := parsePromText(strings.NewReader(text), serverMetricNames())
	if err != nil {
		t.Fatal(err)
	}
	if m["ducha_sfu_packets_out_total"] != 1234000 || m["ducha_sfu_bytes_out_total"] != 987654 ||
		m["process_cpu_seconds_total"] != 12.5 || len(m) != 3 {
		t.Errorf("parsed %v", m)
	}
	if _, err := parsePromText(strings.NewReader("ducha_sfu_rooms x\n"), serverMetricNames()); err == nil {
		t.Error("a bad value was accepted")
	}

	// The command name may hold spaces and parentheses.
	stat := "4242 (ducha (serve) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	if cpu, err := parseProcStat(stat); err != nil || cpu != 3.25 {
		t.Errorf("cpu %v err %v, want 3.25 s", cpu, err)
	}
	busy, total, err := parseMachineCPU("cpu  100 10 50 800 20 5 5 10 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil || busy != 180 || total != 1000 {
		t.Errorf("machine cpu busy %d total %d err %v, want 180 of 1000 (guest is inside user)", busy, total, err)
	}
	status := "Name:\tducha\nVmHWM:\t  51200 kB\nVmRSS:\t  40960 kB\nThreads:\t9\n"
	if rss, hwm, err := parseProcStatus(status); err != nil || rss != 40<<20 || hwm != 50<<20 {
		t.Errorf("rss %d hwm %d err %v", rss, hwm, err)
	}
}

// The scheduling latency over a window comes from the difference of two
// readings of a cumulative histogram: the server's from /metrics, the load
// tool's own from runtime/metrics.
func TestSchedLatencyWindow(t *testing.T) {
	reading := func(b1, b2, inf float64) string {
		return fmt.Sprintf(`go_sched_latencies_seconds_bucket{le="0.001"} %g
go_sched_latencies_seconds_bucket{le="0.05"} %g
go_sched_latencies_seconds_bucket{le="+Inf"} %g
go_sched_latencies_seconds_sum 1
`, b1, b2, inf)
	}
	parse := func(text string) cumBuckets {
		m, err := parsePromText(strings.NewReader(text), serverMetricNames())
		if err != nil {
			t.Fatal(err)
		}
		return promBuckets(m, schedMetric)
	}
	// Before the window 1000 fast waits; during it 98 more fast, 1 under
	// 50 ms, 1 longer.
	start, end := parse(reading(1000, 1000, 1000)), parse(reading(1098, 1099, 1100))
	if len(end) != 3 || end[0].le != 0.001 || !math.IsInf(end[2].le, 1) {
		t.Fatalf("buckets %v", end)
	}
	if p50 := windowQuantile(start, end, 0.5); p50 != 1 {
		t.Errorf("p50 %v ms, want 1 (the first bucket's bound)", p50)
	}
	if p99 := windowQuantile(start, end, 0.99); p99 != 50 {
		t.Errorf("p99 %v ms, want 50", p99)
	}
	// Beyond the last finite bound: reported as that bound.
	if p := windowQuantile(start, end, 1); p != 50 {
		t.Errorf("p100 %v ms, want 50", p)
	}
	if p := windowQuantile(end, end, 0.99); p != 0 {
		t.Errorf("nothing observed: %v, want 0", p)
	}
	if p := windowQuantile(start, nil, 0.99); p != 0 {
		t.Errorf("a server without the histogram: %v, want 0", p)
	}
	// The load tool's own histogram reads, and only grows.
	a := selfSchedBuckets()
	runtime.Gosched()
	b := selfSchedBuckets()
	if len(a) == 0 || len(a) != len(b) || b[len(b)-1].count < a[len(a)-1].count {
		t.Errorf("own scheduling histogram: %d then %d buckets", len(a), len(b))
	}
}

func TestNiceOf(t *testing.T) {
	if _, ok := niceOf(os.Getpid()); !ok && runtime.GOOS == "linux" {
		t.Fatal("no nice value read for this process")
	}
	if _, ok := niceOf(-1); ok {
		t.Error("a nice value for no process")
	}
}
