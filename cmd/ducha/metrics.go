package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
)

// metrics exposes the SFU's and signaling's counters at scrape time, so the
// hot paths only touch their own atomics.
type metrics struct {
	media *sfu.SFU
	sig   *signaling.Handler
	store interface{ Healthy() bool }
	descs map[string]*prometheus.Desc
	fwd   *prometheus.Desc
	// sendWait: a sent packet's wait in the batch for the system call.
	sendWait *prometheus.Desc
}

type metricDef struct {
	name, help string
	counter    bool
}

var metricDefs = []metricDef{
	{"ducha_sfu_rooms", "Rooms with at least one participant.", false},
	{"ducha_sfu_participants", "Participants connected to the SFU.", false},
	{"ducha_sfu_tracks", "Published tracks.", false},
	{"ducha_sfu_packets_in_total", "RTP packets received from publishers.", true},
	{"ducha_sfu_bytes_in_total", "RTP bytes received from publishers.", true},
	{"ducha_sfu_packets_out_total", "RTP packets forwarded to subscribers.", true},
	{"ducha_sfu_bytes_out_total", "RTP bytes forwarded to subscribers.", true},
	{"ducha_sfu_queue_drops_total", "Packets dropped because a fan-out queue was full (slow subscriber).", true},
	{"ducha_sfu_keyframe_skips_total", "Packets skipped while waiting for a keyframe after a drop.", true},
	{"ducha_sfu_nacks_total", "Sequence numbers subscribers asked to be resent.", true},
	{"ducha_sfu_retransmits_total", "Packets resent from the packet cache.", true},
	{"ducha_sfu_retransmit_misses_total", "NACKed packets no longer in the cache.", true},
	{"ducha_sfu_retransmit_throttled_total", "NACKs not answered: a duplicate within the round trip, or over the retransmission budget.", true},
	{"ducha_sfu_keyframe_requests_total", "Keyframe requests (PLI) sent to publishers.", true},
	{"ducha_sfu_moderated_drops_total", "Audio packets not forwarded because the supervisor muted the participant.", true},
	{"ducha_sfu_simulcast_layers", "Simulcast layer streams received from publishers now.", false},
	{"ducha_sfu_layer_switches_total", "Simulcast layer changes made for subscribers (bandwidth, tile size).", true},
	{"ducha_sfu_udp_batched_total", "UDP datagrams written through the sendmmsg batcher.", true},
	{"ducha_sfu_udp_batches_total", "sendmmsg calls that carried them (datagrams per call shows how much batching pays).", true},
	{"ducha_sfu_udp_send_errors_total", "UDP datagrams the kernel refused (bad or unreachable destination).", true},
	{"ducha_sfu_write_errors_total", "Forwarded copies a subscriber's connection refused because it was closing. (Packets an ICE-TCP connection's full queue drops are not counted: Pion does not report them.)", true},
	{"ducha_sfu_egress_fallbacks_total", "Connections whose media to the participant takes Pion's SRTP path instead of the SFU's own egress (docs/media.md); after a Pion upgrade, nonzero means the egress no longer finds what it reads from Pion.", true},
	{"ducha_sfu_ingress_packets_total", "Publishers' RTP packets the SFU's own SRTP ingress decrypted on the socket's reader (docs/media.md); the rest of ducha_sfu_packets_in_total took Pion's receive path (a stream's first packets, ICE-TCP).", true},
	{"ducha_sfu_ingress_failures_total", "Packets (RTP or RTCP) the own ingress could not decrypt and handed to Pion's path.", true},
	{"ducha_sfu_ingress_rtcp_total", "Compound RTCP packets (reports, feedback, NACKs, keyframe requests) the own ingress took off the socket.", true},
	{"ducha_sfu_rtcp_malformed_total", "Authentic RTCP packets that did not parse, dropped.", true},
	{"ducha_sfu_inline_packets_total", "Packets in that the UDP mux's reader wrote to their subscribers itself (groups of up to four whose writes never wait) instead of handing them to a fan-out goroutine.", true},
	{"ducha_sfu_reader_bursts_total", "Bursts of datagrams (one recvmmsg each) the UDP mux's reader handled.", true},
	{"ducha_sfu_reader_bursts_behind_total", "Of those bursts, the ones that found 16 or more datagrams waiting: the reader lagged the socket and left every fan-out to the writers meanwhile.", true},
	{"ducha_sfu_ingress_fallbacks_total", "Connections, or published layers, whose media from the participant takes Pion's receive path instead of the own ingress; after a Pion upgrade, nonzero on every connection means the ingress no longer finds what it reads from Pion.", true},
	{"ducha_sfu_nacks_sent_total", "Sequence numbers the SFU asked publishers to resend (lost on their uplink).", true},
	{"ducha_sfu_forward_delay_unmeasured_total", "Forwarded packets left out of ducha_sfu_forward_delay_seconds: their arrival time was overwritten before the last copy was handed on (a writer more than 256 packets behind).", true},
	{"ducha_store_healthy", "1 when the session store (Redis or the data directory) takes writes; 0 while they are queued.", false},
	{"ducha_signaling_connections", "Open signaling websockets.", false},
	{"ducha_signaling_joins_total", "Successful joins.", true},
	{"ducha_signaling_errors_total", "Error messages sent to clients.", true},
	{"ducha_signaling_rate_limited_total", "Messages dropped by the rate limit.", true},
	{"ducha_signaling_slow_consumers_total", "Connections closed because their queue overflowed.", true},
}

func newMetrics(media *sfu.SFU, sig *signaling.Handler, store interface{ Healthy() bool }) *metrics {
	m := &metrics{media: media, sig: sig, store: store, descs: map[string]*prometheus.Desc{},
		fwd: prometheus.NewDesc("ducha_sfu_forward_delay_seconds",
			"The server's own delay per forwarded packet: from its arrival at the media socket (the kernel's receive timestamp, before Pion's receive chain) to the last copy handed to the subscribers' connections (encrypted, into the send batch).",
			nil, nil),
		sendWait: prometheus.NewDesc("ducha_sfu_send_wait_seconds",
			"How long a sent packet waited in the send batch for its system call (each counted with its batch's longest wait; batched sends only): with ducha_sfu_forward_delay_seconds, the server's socket to socket.",
			nil, nil)}
	for _, d := range metricDefs {
		m.descs[d.name] = prometheus.NewDesc(d.name, d.help, nil, nil)
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
	ch <- m.fwd
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.media.Stats()
	g := m.sig.Stats()
	values := map[string]float64{
		"ducha_sfu_rooms":                          float64(s.Rooms),
		"ducha_sfu_participants":                   float64(s.Participants),
		"ducha_sfu_tracks":                         float64(s.Tracks),
		"ducha_sfu_packets_in_total":               float64(s.PacketsIn),
		"ducha_sfu_bytes_in_total":                 float64(s.BytesIn),
		"ducha_sfu_packets_out_total":              float64(s.PacketsOut),
		"ducha_sfu_bytes_out_total":                float64(s.BytesOut),
		"ducha_sfu_queue_drops_total":              float64(s.QueueDrops),
		"ducha_sfu_keyframe_skips_total":           float64(s.KeyframeSkips),
		"ducha_sfu_nacks_total":                    float64(s.NACKsIn),
		"ducha_sfu_retransmits_total":              float64(s.Retransmits),
		"ducha_sfu_retransmit_misses_total":        float64(s.RetransmitMisses),
		"ducha_sfu_retransmit_throttled_total":     float64(s.RetransmitThrottled),
		"ducha_sfu_keyframe_requests_total":        float64(s.KeyframeRequests),
		"ducha_sfu_moderated_drops_total":          float64(s.ModeratedDrops),
		"ducha_sfu_simulcast_layers":               float64(s.SimulcastLayers),
		"ducha_sfu_layer_switches_total":           float64(s.LayerSwitches),
		"ducha_sfu_udp_batched_total":              float64(s.UDPBatched),
		"ducha_sfu_udp_batches_total":              float64(s.UDPBatches),
		"ducha_sfu_udp_send_errors_total":          float64(s.UDPSendErrors),
		"ducha_sfu_write_errors_total":             float64(s.WriteErrors),
		"ducha_sfu_egress_fallbacks_total":         float64(s.EgressFallbacks),
		"ducha_sfu_ingress_packets_total":          float64(s.IngressPackets),
		"ducha_sfu_ingress_failures_total":         float64(s.IngressFailures),
		"ducha_sfu_ingress_rtcp_total":             float64(s.IngressRTCP),
		"ducha_sfu_rtcp_malformed_total":           float64(s.RTCPMalformed),
		"ducha_sfu_ingress_fallbacks_total":        float64(s.IngressFallbacks),
		"ducha_sfu_nacks_sent_total":               float64(s.NACKsOut),
		"ducha_sfu_inline_packets_total":           float64(s.InlinePackets),
		"ducha_sfu_reader_bursts_total":            float64(s.ReaderBursts),
		"ducha_sfu_reader_bursts_behind_total":     float64(s.ReaderBehind),
		"ducha_sfu_forward_delay_unmeasured_total": float64(s.ForwardDelayUnmeasured),
		"ducha_store_healthy":                      b2f(m.store.Healthy()),
		"ducha_signaling_connections":              float64(g.ConnectionsOpen),
		"ducha_signaling_joins_total":              float64(g.Joins),
		"ducha_signaling_errors_total":             float64(g.Errors),
		"ducha_signaling_rate_limited_total":       float64(g.RateLimited),
		"ducha_signaling_slow_consumers_total":     float64(g.SlowConsumers),
	}
	for _, d := range metricDefs {
		t := prometheus.GaugeValue
		if d.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(m.descs[d.name], t, values[d.name])
	}
	ch <- delayHistogram(m.fwd, s.ForwardDelayCounts, s.ForwardDelaySum)
	ch <- delayHistogram(m.sendWait, s.SendWaitCounts, s.SendWaitSum)
}

// delayHistogram turns the SFU's bucket counts (per ForwardDelayBounds)
// into a Prometheus histogram (cumulative counts per upper bound).
func delayHistogram(desc *prometheus.Desc, counts []uint64, sum float64) prometheus.Metric {
	bounds := sfu.ForwardDelayBounds()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, c := range counts {
		cum += c
		if i < len(bounds) {
			buckets[bounds[i]] = cum
		}
	}
	return prometheus.MustNewConstHistogram(desc, cum, sum, buckets)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
