package sfu

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func vp8Params() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000}, PayloadType: 96}
}

// countingWriter stands in for Pion's SRTP writer: it marshals the header
// like the real one would and counts.
type countingWriter struct {
	n   atomic.Int64
	buf [1600]byte
}

func (w *countingWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.buf[:])
	if err != nil {
		return 0, err
	}
	n += copy(w.buf[n:], payload)
	w.n.Add(1)
	return n, nil
}

func (w *countingWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkForward measures the SFU's own forward path for one packet:
// the reader storing it in the cache and queueing it, a fan-out writer
// copying it out, and each subscriber rewriting and handing it to the
// connection's writer. SRTP and the socket are not included (Pion's cost;
// the load tool measures the whole thing). ns/op is per published packet;
// ns/fwd is per forwarded copy.
func BenchmarkForward(b *testing.B) {
	for _, subs := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			var ctr counters
			u := newUpTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, 1, vp8Params(), 512,
				SystemClock{}, discardLogger(), &ctr, benchOpts, nil)
			w := newFanWriter(u.base(), benchOpts.queueLen, false)
			u.base().writers.Store(&[]*fanWriter{w})
			first := benchSubscribers(u, &ctr, subs, func(dt *downTrack) { w.add(dt) })
			driveForward(b, u.base(), w, 1, first, subs)
		})
	}
}

// BenchmarkForwardSimulcast is BenchmarkForward for subscribers of a
// simulcast track: each packet also passes the subscriber's layer switch.
func BenchmarkForwardSimulcast(b *testing.B) {
	for _, subs := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			var ctr counters
			u := newTrack(TrackInfo{ID: "T", Kind: "video", MimeType: "video/VP8"}, vp8Params(), SystemClock{},
				discardLogger(), &ctr, benchOpts, nil)
			u.simulcast = true
			var top *upLayer
			for i, rid := range []string{"q", "h", "f"} {
				top = u.addLayer(rid, i, uint32(10+i), 512)
			}
			first := benchSubscribers(u, &ctr, subs, func(dt *downTrack) { dt.attach(2) })
			ws := *top.writers.Load()
			if len(ws) != 1 {
				b.Fatalf("%d writers", len(ws))
			}
			// Swap in a writer that is driven by hand, with the same
			// subscribers (the switches' taps).
			w := newFanWriter(top, benchOpts.queueLen, false)
			for _, s := range *ws[0].subs.Load() {
				w.add(s)
			}
			top.writers.Store(&[]*fanWriter{w})
			ws[0].stop()
			driveForward(b, top, w, 12, first, subs)
		})
	}
}

// benchOpts: one writer serves every subscriber, and keyframe requests are
// never throttled into timers.
var benchOpts = fanoutOptions{queueLen: 1024, perWriter: 1 << 30, maxWriters: 1, kfMinSpacing: time.Hour}

// benchSubscribers makes n bound, ready downTracks of u, each attached by
// attach, and returns the first one's writer.
func benchSubscribers(u *UpTrack, ctr *counters, n int, attach func(*downTrack)) *countingWriter {
	var ready atomic.Bool
	ready.Store(true)
	var first *countingWriter
	for i := 0; i < n; i++ {
		cw := &countingWriter{}
		if i == 0 {
			first = cw
		}
		// Each subscriber connection numbers its packets for transport-wide
		// feedback, as in a call.
		dt := newDownTrack(u, ctr, discardLogger(), &ready, bwe.New(bwe.Config{Initial: initialEstimate}, time.Now()), nil)
		dt.bound, dt.writer, dt.ssrc, dt.pt, dt.twID = true, cw, uint32(1000+i), 96, 3
		attach(dt)
	}
	return first
}

// driveForward publishes b.N packets of ssrc into l and forwards each one
// through w by hand (no goroutines), then checks the first subscriber got
// them all.
func driveForward(b *testing.B, l *upLayer, w *fanWriter, ssrc uint32, first *countingWriter, subs int) {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: ssrc}, Payload: make([]byte, 1100)}
	pkt.Payload[0], pkt.Payload[1] = 0x10, 0x00 // a VP8 keyframe start, so subscribers begin at once
	raw := make([]byte, 1500)
	buf := make([]byte, slotSize)
	var fwd rtp.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pkt.SequenceNumber = uint16(i)
		pkt.Timestamp = uint32(i/3) * 3000
		n, _ := pkt.MarshalTo(raw)
		l.ingest(raw[:n])
		seq := <-w.queue
		w.forward(seq, buf, &fwd)
	}
	b.StopTimer()
	if got := first.n.Load(); got != int64(b.N) {
		b.Fatalf("subscriber 0 got %d of %d packets", got, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/fwd")
}
