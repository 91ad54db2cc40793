package sfu

import "sync/atomic"

// counters are the SFU's hot-path counters: atomics, shared by every track,
// read by /metrics. Per-packet code only increments them.
type counters struct {
	packetsIn           atomic.Uint64
	bytesIn             atomic.Uint64
	packetsOut          atomic.Uint64
	bytesOut            atomic.Uint64
	queueDrops          atomic.Uint64 // packets a fan-out queue had no room for
	keyframeSkips       atomic.Uint64 // packets skipped while waiting for a keyframe after a drop
	duplicates          atomic.Uint64 // packets already in the cache (retransmissions that raced)
	lateDrops           atomic.Uint64 // packets older than the cache window
	nacksIn             atomic.Uint64 // sequence numbers subscribers asked for
	retransmits         atomic.Uint64 // answered from the cache
	retransmitMisses    atomic.Uint64 // no longer cached
	retransmitThrottled atomic.Uint64 // NACKs not answered: duplicate or over the budget
	keyframeRequests    atomic.Uint64 // PLIs sent to publishers
	writeErrors         atomic.Uint64
	egressFallbacks     atomic.Uint64 // connections on Pion's SRTP path (egress.go)
	ingressPackets      atomic.Uint64 // publishers' packets the own ingress took (ingress.go)
	ingressFailures     atomic.Uint64 // packets it could not decrypt, handed to Pion
	ingressRTCP         atomic.Uint64 // compound RTCP packets it took
	rtcpMalformed       atomic.Uint64 // authentic RTCP that does not parse (dropped)
	ingressFallbacks    atomic.Uint64 // connections or layers left to Pion's receive path
	nacksOut            atomic.Uint64 // sequence numbers asked of publishers (inbound.go)
	inlinePackets       atomic.Uint64 // packets the mux's reader wrote to their group itself (fanout.go)
	readerBursts        atomic.Uint64 // bursts of datagrams the reader handled (takeDatagram)
	readerBehind        atomic.Uint64 // of those, started with the reader behind the socket
	moderatedDrops      atomic.Uint64 // audio of participants the supervisor muted
	layerSwitches       atomic.Uint64 // simulcast layer changes made for subscribers
	fwdDelay            fwdDelayHist  // arrival to the last copy handed on (fwddelay.go)
	sendWait            fwdDelayHist  // a copy's wait in the send batch (udpbatch.WithWaited)
}

// Stats is a snapshot of the counters.
type Stats struct {
	PacketsIn           uint64 `json:"packetsIn"`
	BytesIn             uint64 `json:"bytesIn"`
	PacketsOut          uint64 `json:"packetsOut"`
	BytesOut            uint64 `json:"bytesOut"`
	QueueDrops          uint64 `json:"queueDrops"`
	KeyframeSkips       uint64 `json:"keyframeSkips"`
	Duplicates          uint64 `json:"duplicates"`
	LateDrops           uint64 `json:"lateDrops"`
	NACKsIn             uint64 `json:"nacksIn"`
	Retransmits         uint64 `json:"retransmits"`
	RetransmitMisses    uint64 `json:"retransmitMisses"`
	RetransmitThrottled uint64 `json:"retransmitThrottled"`
	KeyframeRequests    uint64 `json:"keyframeRequests"`
	WriteErrors         uint64 `json:"writeErrors"`
	EgressFallbacks     uint64 `json:"egressFallbacks"`
	IngressPackets      uint64 `json:"ingressPackets"`
	IngressFailures     uint64 `json:"ingressFailures"`
	IngressRTCP         uint64 `json:"ingressRTCP"`
	RTCPMalformed       uint64 `json:"rtcpMalformed"`
	IngressFallbacks    uint64 `json:"ingressFallbacks"`
	NACKsOut            uint64 `json:"nacksOut"`
	InlinePackets       uint64 `json:"inlinePackets"`
	ReaderBursts        uint64 `json:"readerBursts"`
	ReaderBehind        uint64 `json:"readerBehind"`
	ModeratedDrops      uint64 `json:"moderatedDrops"`
	LayerSwitches       uint64 `json:"layerSwitches"`
	// UDP datagrams written through the batching sender, the sendmmsg calls
	// that carried them, and datagrams the kernel refused (all 0 with
	// DirectSend).
	UDPBatched    uint64 `json:"udpBatched"`
	UDPBatches    uint64 `json:"udpBatches"`
	UDPSendErrors uint64 `json:"udpSendErrors"`
	// ForwardDelayCounts counts forwarded packets by the SFU's own delay,
	// arrival to the last copy handed on, per bucket of
	// ForwardDelayBounds (the last: above them all); ForwardDelaySum is
	// their total in seconds.
	ForwardDelayCounts []uint64 `json:"forwardDelayCounts"`
	ForwardDelaySum    float64  `json:"forwardDelaySum"`
	// ForwardDelayUnmeasured counts forwarded packets left out of the
	// delay counts: the writer came to them after their arrival slot was
	// reused (it lagged by more than 256 packets of the layer).
	ForwardDelayUnmeasured uint64 `json:"forwardDelayUnmeasured"`
	// SendWaitCounts counts sent packets by how long they waited in the
	// send batch for the system call (batched sends only; each packet
	// counted with its batch's longest wait), per bucket of
	// ForwardDelayBounds; SendWaitSum is their total in seconds. With
	// ForwardDelayCounts: socket to socket.
	SendWaitCounts []uint64 `json:"sendWaitCounts"`
	SendWaitSum    float64  `json:"sendWaitSum"`
	// SimulcastLayers is the number of simulcast layer streams received now.
	SimulcastLayers int `json:"simulcastLayers"`
	Rooms           int `json:"rooms"`
	Participants    int `json:"participants"`
	Tracks          int `json:"tracks"`
}

func (c *counters) snapshot() Stats {
	fc, fs := c.fwdDelay.snapshot()
	wc, ws := c.sendWait.snapshot()
	return Stats{
		SendWaitCounts:         wc,
		SendWaitSum:            ws,
		ForwardDelayCounts:     fc,
		ForwardDelaySum:        fs,
		ForwardDelayUnmeasured: c.fwdDelay.missed.Load(),
		PacketsIn:              c.packetsIn.Load(),
		BytesIn:                c.bytesIn.Load(),
		PacketsOut:             c.packetsOut.Load(),
		BytesOut:               c.bytesOut.Load(),
		QueueDrops:             c.queueDrops.Load(),
		KeyframeSkips:          c.keyframeSkips.Load(),
		Duplicates:             c.duplicates.Load(),
		LateDrops:              c.lateDrops.Load(),
		NACKsIn:                c.nacksIn.Load(),
		Retransmits:            c.retransmits.Load(),
		RetransmitMisses:       c.retransmitMisses.Load(),
		RetransmitThrottled:    c.retransmitThrottled.Load(),
		KeyframeRequests:       c.keyframeRequests.Load(),
		WriteErrors:            c.writeErrors.Load(),
		EgressFallbacks:        c.egressFallbacks.Load(),
		IngressPackets:         c.ingressPackets.Load(),
		IngressFailures:        c.ingressFailures.Load(),
		IngressRTCP:            c.ingressRTCP.Load(),
		RTCPMalformed:          c.rtcpMalformed.Load(),
		IngressFallbacks:       c.ingressFallbacks.Load(),
		NACKsOut:               c.nacksOut.Load(),
		InlinePackets:          c.inlinePackets.Load(),
		ReaderBursts:           c.readerBursts.Load(),
		ReaderBehind:           c.readerBehind.Load(),
		ModeratedDrops:         c.moderatedDrops.Load(),
		LayerSwitches:          c.layerSwitches.Load(),
	}
}
