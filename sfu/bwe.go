package sfu

import (
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
)

// videoOnlyEstimator hands the bandwidth estimator only video streams.
// GCC records every packet it is given in a map and a list and looks each up
// again when feedback arrives, the most expensive per-packet work the SFU
// does; audio, most of what a large room forwards (speaker slots to every
// county), tells it little: its rate is small and known, and the allocator
// subtracts it from the estimate itself (fixedRate). Audio packets still
// carry transport-wide sequence numbers; GCC skips feedback for packets it
// did not record.
type videoOnlyEstimator struct{ cc.BandwidthEstimator }

func (e videoOnlyEstimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if strings.HasPrefix(strings.ToLower(info.MimeType), "audio/") {
		return w
	}
	return e.BandwidthEstimator.AddStream(info, w)
}
