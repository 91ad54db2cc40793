package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtp"
)

// recordingEstimator counts the packets an estimator is given.
type recordingEstimator struct {
	cc.BandwidthEstimator
	seen map[string]int
}

func (r *recordingEstimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, a interceptor.Attributes) (int, error) {
		r.seen[info.MimeType]++
		return w.Write(h, p, a)
	})
}

// Video reaches the estimator, audio goes straight through.
func TestEstimatorSeesVideoOnly(t *testing.T) {
	rec := &recordingEstimator{seen: map[string]int{}}
	e := videoOnlyEstimator{rec}
	written := 0
	sink := interceptor.RTPWriterFunc(func(_ *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		written++
		return len(p), nil
	})
	for _, mt := range []string{"video/VP8", "audio/opus", "video/H264", "audio/OPUS"} {
		w := e.AddStream(&interceptor.StreamInfo{MimeType: mt}, sink)
		if _, err := w.Write(&rtp.Header{}, []byte{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if written != 4 {
		t.Fatalf("%d of 4 packets written", written)
	}
	if rec.seen["video/VP8"] != 1 || rec.seen["video/H264"] != 1 || len(rec.seen) != 2 {
		t.Fatalf("estimator saw %v, want the two video packets only", rec.seen)
	}
}
