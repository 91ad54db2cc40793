package bwe

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// link simulates a sender that follows the estimate, a bottleneck with a
// bounded queue, random loss, and a receiver that sends TWCC feedback built
// by Pion's recorder (the encoding browsers' feedback has). Time advances in
// 1 ms ticks; nothing sleeps.
type link struct {
	t        *testing.T
	e        *Estimator
	start    time.Time
	now      time.Duration
	demand   int           // what the sender would send, bits/s
	capacity int           // bottleneck, bits/s (0: unlimited)
	queue    time.Duration // bottleneck buffer
	delay    time.Duration // one way, each direction
	loss     float64
	rng      *rand.Rand

	busyUntil time.Duration // the bottleneck's next free moment
	arrivals  []arrival     // FIFO: the bottleneck keeps order
	rec       *twcc.Recorder
	feedback  []pendingFB
	sentBits  int
}

type arrival struct {
	at  time.Duration
	seq uint16
}

type pendingFB struct {
	at  time.Duration
	pkt *rtcp.TransportLayerCC
}

const (
	packetBytes = 1200
	frameEvery  = 33 * time.Millisecond
	fbEvery     = 50 * time.Millisecond
)

func newLink(t *testing.T, initial int) *link {
	start := time.Unix(1_700_000_000, 0)
	return &link{
		t: t, start: start,
		e:     New(Config{Initial: initial, Min: 50_000, Max: 50_000_000}, start),
		queue: 200 * time.Millisecond, delay: 20 * time.Millisecond,
		rng: rand.New(rand.NewPCG(1, 2)), rec: twcc.NewRecorder(1),
	}
}

// run advances the simulation by d.
func (l *link) run(d time.Duration) {
	for end := l.now + d; l.now < end; l.now += time.Millisecond {
		if l.now%frameEvery == 0 {
			l.sendFrame()
		}
		for len(l.arrivals) > 0 && l.arrivals[0].at <= l.now {
			a := l.arrivals[0]
			l.arrivals = l.arrivals[1:]
			l.rec.Record(5, a.seq, int64(a.at/time.Microsecond))
		}
		if l.now%fbEvery == 0 {
			for _, p := range l.rec.BuildFeedbackPacket() {
				if fb, ok := p.(*rtcp.TransportLayerCC); ok {
					l.feedback = append(l.feedback, pendingFB{at: l.now + l.delay, pkt: fb})
				}
			}
		}
		for len(l.feedback) > 0 && l.feedback[0].at <= l.now {
			l.e.Feedback(l.feedback[0].pkt, l.start.Add(l.now))
			l.feedback = l.feedback[1:]
		}
	}
}

// sendFrame sends one frame's packets at once, as an encoder does.
func (l *link) sendFrame() {
	rate := min(l.demand, l.e.GetTargetBitrate())
	bits := rate * int(frameEvery) / int(time.Second)
	n := max(1, (bits+packetBytes*8-1)/(packetBytes*8))
	for range n {
		seq := l.e.Sent(l.start.Add(l.now), packetBytes)
		l.sentBits += packetBytes * 8
		if l.loss > 0 && l.rng.Float64() < l.loss {
			continue
		}
		at := l.now
		if l.capacity > 0 {
			begin := max(l.now, l.busyUntil)
			if begin-l.now > l.queue {
				continue // tail drop
			}
			l.busyUntil = begin + time.Duration(packetBytes*8*int64(time.Second)/int64(l.capacity))
			at = l.busyUntil
		}
		l.arrivals = append(l.arrivals, arrival{at: at + l.delay, seq: seq})
	}
}

// lowest is the smallest estimate seen while running d.
func (l *link) lowest(d time.Duration) int {
	low := l.e.GetTargetBitrate()
	for end := l.now + d; l.now < end; {
		l.run(100 * time.Millisecond)
		low = min(low, l.e.GetTargetBitrate())
	}
	return low
}

func TestEstimateFollowsCapacity(t *testing.T) {
	l := newLink(t, 2_000_000)
	l.demand = 2_500_000
	l.capacity = 300_000
	l.run(10 * time.Second)
	if got := l.e.GetTargetBitrate(); got > 450_000 || got < 100_000 {
		t.Fatalf("estimate %d on a 300 kbit/s link after 10 s, want 100k..450k", got)
	}
	// It stays near the capacity rather than oscillating away from it.
	if low := l.lowest(10 * time.Second); low < 100_000 {
		t.Fatalf("estimate fell to %d on a steady 300 kbit/s link", low)
	}
	// The bottleneck lifts: the estimate climbs back, at GCC's 8 % per
	// second once delivery shows the old capacity is gone.
	l.capacity = 10_000_000
	l.run(20 * time.Second)
	if got := l.e.GetTargetBitrate(); got < 1_000_000 {
		t.Fatalf("estimate %d 20 s after the link opened to 10 Mbit/s, want >= 1M", got)
	}
}

func TestEstimateHoldsOnAGoodLink(t *testing.T) {
	l := newLink(t, 2_000_000)
	l.demand = 1_500_000
	l.capacity = 20_000_000
	if low := l.lowest(30 * time.Second); low < 1_500_000 {
		t.Fatalf("estimate fell to %d on an uncongested link", low)
	}
}

func TestEstimateModerateLossHolds(t *testing.T) {
	l := newLink(t, 1_000_000)
	l.demand = 1_000_000
	l.loss = 0.05
	l.run(5 * time.Second)
	if low := l.lowest(20 * time.Second); low < 900_000 {
		t.Fatalf("5%% random loss cut the estimate to %d; GCC holds between 2 and 10%%", low)
	}
}

func TestEstimateHeavyLossCuts(t *testing.T) {
	l := newLink(t, 1_000_000)
	l.demand = 1_000_000
	l.loss = 0.30
	l.run(10 * time.Second)
	if got := l.e.GetTargetBitrate(); got > 300_000 {
		t.Fatalf("estimate %d after 10 s of 30%% loss, want <= 300k", got)
	}
}

func TestEstimateRespectsBounds(t *testing.T) {
	l := newLink(t, 1_000_000)
	l.e.cfg.Max = 1_200_000
	l.demand = 10_000_000
	l.capacity = 0
	l.run(20 * time.Second)
	if got := l.e.GetTargetBitrate(); got != 1_200_000 {
		t.Fatalf("estimate %d, want the configured maximum 1.2M", got)
	}
	l.loss = 0.9
	l.run(20 * time.Second)
	if got := l.e.GetTargetBitrate(); got != 50_000 {
		t.Fatalf("estimate %d at 90%% loss, want the configured minimum 50k", got)
	}
}

func TestHistoryGrowsWithPacketsInFlight(t *testing.T) {
	now := time.Unix(0, 0)
	e := New(Config{Initial: 1_000_000}, now)
	// 3000 packets in 100 ms, none reported yet: all must stay known.
	for i := range 3000 {
		e.Sent(now.Add(time.Duration(i)*30*time.Microsecond), 1000)
	}
	if len(e.hist) < 3000 {
		t.Fatalf("history of %d slots for 3000 packets in flight", len(e.hist))
	}
	for i := range 3000 {
		if p := e.hist[i&(len(e.hist)-1)]; p.seq != uint16(i) || p.state != slotSent {
			t.Fatalf("packet %d lost from the history: %+v", i, p)
		}
	}
	// Long-gone packets are overwritten instead of growing it further.
	size := len(e.hist)
	later := now.Add(10 * time.Second)
	for i := range 3 * size {
		e.Sent(later.Add(time.Duration(i)*time.Millisecond), 1000)
	}
	if len(e.hist) > 2*size {
		t.Fatalf("history grew to %d slots for packets sent a second apart", len(e.hist))
	}
}

func TestRefClockUnwraps(t *testing.T) {
	var r refClock
	const wrap = 1 << 24
	if got := r.unwrap(wrap - 2); got != (wrap-2)*64_000 {
		t.Fatalf("first: %d", got)
	}
	if got := r.unwrap(1); got != (wrap+1)*64_000 {
		t.Fatalf("after the wrap: %d, want %d", got, (wrap+1)*64_000)
	}
	if got := r.unwrap(wrap - 1); got != (wrap-1)*64_000 {
		t.Fatalf("a feedback from before the wrap: %d, want %d", got, (wrap-1)*64_000)
	}
	if got := r.unwrap(2); got != (wrap+2)*64_000 {
		t.Fatalf("after it: %d, want %d", got, (wrap+2)*64_000)
	}
}

func TestDuplicateFeedbackCountsOnce(t *testing.T) {
	now := time.Unix(0, 0)
	e := New(Config{Initial: 1_000_000}, now)
	rec := twcc.NewRecorder(1)
	for i := range 40 {
		seq := e.Sent(now.Add(time.Duration(i)*time.Millisecond), 1000)
		if i%2 == 0 { // every other packet lost
			rec.Record(5, seq, int64(i*1000+20_000))
		}
	}
	fb := rec.BuildFeedbackPacket()[0].(*rtcp.TransportLayerCC)
	e.Feedback(fb, now.Add(100*time.Millisecond))
	// The feedback ends at the last packet received (38): 19 lost before it.
	if got := e.Stats(); got.Received != 20 || got.Lost != 19 {
		t.Fatalf("first feedback: %+v, want 20 received and 19 lost", got)
	}
	e.Feedback(fb, now.Add(110*time.Millisecond))
	if got := e.Stats(); got.Received != 20 || got.Lost != 19 {
		t.Fatalf("a repeated feedback counted again: %+v", got)
	}
}

func BenchmarkSent(b *testing.B) {
	now := time.Unix(0, 0)
	e := New(Config{Initial: 1_000_000}, now)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Sent(now.Add(time.Duration(i)*10*time.Microsecond), 1200)
	}
}

// BenchmarkFeedback: one feedback of 100 packets, as a subscriber of a few
// videos sends every 50 ms.
func BenchmarkFeedback(b *testing.B) {
	now := time.Unix(0, 0)
	e := New(Config{Initial: 1_000_000}, now)
	rec := twcc.NewRecorder(1)
	var fbs []*rtcp.TransportLayerCC
	for i := range 100 * 64 {
		at := now.Add(time.Duration(i) * 500 * time.Microsecond)
		seq := e.Sent(at, 1200)
		rec.Record(5, seq, int64(i*500+20_000))
		if i%100 == 99 {
			fbs = append(fbs, rec.BuildFeedbackPacket()[0].(*rtcp.TransportLayerCC))
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Replays mark nothing new after the first round; the walk and the
		// controllers still run.
		e.Feedback(fbs[i%len(fbs)], now.Add(time.Duration(i)*50*time.Millisecond))
	}
}

// A loss burst heavy enough to cut to the floor must not leave the
// estimate stuck there once the loss stops.
func TestEstimateRecoversAfterTotalLoss(t *testing.T) {
	l := newLink(t, 1_000_000)
	l.demand = 1_000_000
	l.loss = 0.95
	l.run(10 * time.Second)
	if got := l.e.GetTargetBitrate(); got != 50_000 {
		t.Fatalf("estimate %d after 10 s of 95%% loss, want the minimum 50k", got)
	}
	l.loss = 0
	l.run(20 * time.Second)
	if got := l.e.GetTargetBitrate(); got < 150_000 {
		t.Fatalf("estimate %d 20 s after the loss stopped, want it growing again", got)
	}
}
