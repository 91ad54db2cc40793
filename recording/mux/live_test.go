package mux

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/ducha-dev/ducha/internal/ntp"
)

// Track satisfies the SFU's subscriber contract (sfu.Subscriber), checked
// here without importing sfu so the SFU may import this package.
var _ interface {
	WriteRTP(*rtp.Packet) error
	Resync()
} = (*Track)(nil)

// TestRecorderLive runs the recorder as production does: its own goroutine,
// the real clock, packets written from two goroutines in real time while
// sender reports and Stats calls come from others. Run with -race.
func TestRecorderLive(t *testing.T) {
	v := clip(t, CodecVP8, 3, 20)
	a := clip(t, CodecOpus, 3, 0)
	before := runtime.NumGoroutine()
	sink := &segmentSink{}
	keys := &keyCounter{}
	r, err := New(Config{Dir: t.TempDir(), Name: "live_p1_camera", OnSegment: sink.add, RequestKeyframe: keys.inc})
	if err != nil {
		t.Fatal(err)
	}
	vt, err := r.AddTrack("video/VP8")
	if err != nil {
		t.Fatal(err)
	}
	at, err := r.AddTrack("audio/opus")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	send := func(tr *Track, pk []sent) {
		defer wg.Done()
		for _, p := range pk {
			time.Sleep(time.Until(start.Add(p.sendT)))
			if err := tr.WriteRTP(p.pkt); err != nil {
				t.Error(err)
				return
			}
		}
	}
	wg.Add(2)
	go send(vt, packetize(v, 1, 0))
	go send(at, packetize(a, 2, 0))
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			_ = r.Stats()
			// What the sender would report: its clock and the RTP time of now.
			now := time.Now()
			ntpTS := ntp.From(now)
			r.SetSenderReport(KindVideo, ntpTS, uint32(now.Sub(start)*90000/time.Second))
			r.SetSenderReport(KindAudio, ntpTS, uint32(now.Sub(start)*48000/time.Second))
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	time.Sleep(700 * time.Millisecond) // past the jitter hold, as a live call would be
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	segs := sink.all()
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	checkSegment(t, segs[0], "vp8", "opus", 3*time.Second, len(v.frames))
	if st := r.Stats(); st.Frames != uint64(len(v.frames)+len(a.frames)) || st.Segments != 1 {
		t.Errorf("stats %+v", st)
	}
	if keys.get() == 0 {
		t.Error("no keyframe request at start")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}
