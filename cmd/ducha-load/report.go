package main

import (
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/ducha-dev/ducha/internal/netshape"
)

// Report is the JSON a run writes. Field names are stable: benchmark
// tables and the smoke test read them.
type Report struct {
	Tool      string    `json:"tool"`
	Scenario  string    `json:"scenario"`
	StartedAt time.Time `json:"started_at"`
	Config    config    `json:"config"`
	// Result is the measurement of s1 and s2; ramp fills Steps instead.
	Result *Result  `json:"result,omitempty"`
	Steps  []Result `json:"steps,omitempty"`
	// LastGoodStep indexes Steps: the largest load within the limits (-1: none).
	LastGoodStep int      `json:"last_good_step"`
	StopReason   string   `json:"stop_reason,omitempty"`
	Notes        []string `json:"notes"`
}

// Result is one measured load.
type Result struct {
	Rooms           int     `json:"rooms"`
	Participants    int     `json:"participants"`
	PublishedTracks int     `json:"published_tracks"`
	WindowSeconds   float64 `json:"window_seconds"`
	// StreamsExpected is every (receiver, remote track) pair the server's
	// session descriptions send (speaker slots aside): what a browser
	// would get a track for. StreamsForwarded: those that received
	// packets during the window. StreamsAudioHeldBack: audio among the
	// expected that got none because its publisher is not among the
	// loudest speakers of a large room (not missing). StreamsWithheld:
	// announced tracks the server does not send to a receiver at all
	// (large-room policy: no county video to counties, slots instead of
	// everybody's audio for late joiners); not expected.
	StreamsExpected       int `json:"streams_expected"`
	StreamsForwarded      int `json:"streams_forwarded"`
	StreamsAudioHeldBack  int `json:"streams_audio_held_back"`
	StreamsWithheld       int `json:"streams_withheld"`
	ReceiversWithoutMedia int `json:"receivers_without_media"`

	Server  ServerResult `json:"server"`
	Clients ClientResult `json:"clients"`
	Delay   DelayResult  `json:"forwarding_delay"`
	// DelayAfterClientStack is the same packets' delay to their read from
	// the receiver's Pion stack: Delay plus the simulated client's own
	// receive chain and CPU queue (what forwarding_delay measured before
	// the sixth session).
	DelayAfterClientStack DelayResult `json:"forwarding_delay_after_client_stack"`
	// DelayByRole splits Delay by the receiver's role: in S2 the
	// supervisor's one connection carries 117 counties' video, a county's
	// only the supervisor's and the speakers'.
	DelayByRole      map[string]DelayResult `json:"forwarding_delay_by_receiver_role"`
	JoinToFirstFrame FirstFrameResult       `json:"join_to_first_frame"`
	// FirstFrameByRole splits JoinToFirstFrame by the receiver's role: in
	// S2 the supervisor's view of late counties waits on a renegotiation of
	// an ever larger session, the counties' view of the supervisor does not.
	FirstFrameByRole map[string]FirstFrameResult `json:"join_to_first_frame_by_receiver_role"`
	// LateJoinToFirstFrame: s2 only, counties joining one at a time after
	// the window, into the full room (see lateJoins).
	LateJoinToFirstFrame FirstFrameResult `json:"late_join_to_first_frame"`
	// JoinToJoined: websocket dial to the server's joined message.
	JoinToJoined FirstFrameResult `json:"join_to_joined"`
	Layers       LayerResult      `json:"layers"`
	Slots        SlotResult       `json:"slots"`
	Derived      Derived          `json:"derived"`
	Machine      MachineResult    `json:"machine"`
	Receivers    []ReceiverResult `json:"receivers"`
}

// MachineResult says how busy the whole box was: on a shared machine, other
// work competes with the server and the load tool and inflates delay.
type MachineResult struct {
	CPUs int `json:"cpus"`
	// BusyCores is the machine's busy CPU time over the window, in cores;
	// OtherCores what neither the server nor the load tool used.
	BusyCores      float64 `json:"busy_cores"`
	OtherCores     float64 `json:"other_cores"`
	LoadAvgAtStart float64 `json:"load_average_start"`
	LoadAvgAtEnd   float64 `json:"load_average_end"`
	// The scheduling priorities (nice) of the load tool and of the
	// server, when known (--nice; -1000: unknown).
	LoadToolNice int `json:"load_tool_nice"`
	ServerNice   int `json:"server_nice"`
}

// ServerResult is what the server's /metrics and /proc said over the window.
type ServerResult struct {
	PacketsIn        int64   `json:"packets_in"`
	PacketsOut       int64   `json:"packets_out"`
	BytesIn          int64   `json:"bytes_in"`
	BytesOut         int64   `json:"bytes_out"`
	BitrateInMbps    float64 `json:"bitrate_in_mbps"`
	BitrateOutMbps   float64 `json:"bitrate_out_mbps"`
	QueueDrops       int64   `json:"queue_drops"`
	KeyframeSkips    int64   `json:"keyframe_skips"`
	NACKs            int64   `json:"nacks"`
	Retransmits      int64   `json:"retransmits"`
	RetransmitMisses int64   `json:"retransmit_misses"`
	KeyframeRequests int64   `json:"keyframe_requests"`
	// IngressPackets: packets in that the server's own SRTP ingress took
	// off its socket (the rest went through Pion's receive chain);
	// NACKsSent: sequence numbers it asked publishers to resend.
	IngressPackets int64 `json:"ingress_packets"`
	NACKsSent      int64 `json:"nacks_sent"`
	// InlinePackets: packets in that the server's UDP reader wrote to their
	// subscribers itself (small groups); ReaderBursts: the bursts of
	// datagrams it read, ReaderBehind those it found the socket ahead of it.
	InlinePackets int64 `json:"inline_packets"`
	ReaderBursts  int64 `json:"reader_bursts"`
	ReaderBehind  int64 `json:"reader_bursts_behind"`
	// Simulcast, when the server reports it: layer streams received from
	// publishers at the window's end, and the subscribers' layer switches.
	SimulcastLayers  int64   `json:"simulcast_layers"`
	LayerSwitches    int64   `json:"layer_switches"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	CPUCores         float64 `json:"cpu_cores"`
	CPUSource        string  `json:"cpu_source"`
	BaselineRSSBytes int64   `json:"baseline_rss_bytes"`
	PeakRSSBytes     int64   `json:"peak_rss_bytes"`
	// SchedLatency: how long the server's goroutines waited for a thread
	// while runnable, over the window (Go's /sched/latencies, bucket upper
	// bounds; 0 when the server does not export it).
	SchedLatencyP50Ms float64 `json:"sched_latency_p50_ms"`
	SchedLatencyP99Ms float64 `json:"sched_latency_p99_ms"`
	// ForwardDelay: the server's own delay per forwarded packet over the
	// window, from its arrival at the server's socket to the last copy
	// handed on (ducha_sfu_forward_delay_seconds; bucket upper bounds; 0
	// when the server does not export it); ForwardDelayUnmeasured: the
	// forwarded packets left out of it (a writer that lagged too far).
	ForwardDelayP50Ms      float64 `json:"forward_delay_p50_ms"`
	ForwardDelayP99Ms      float64 `json:"forward_delay_p99_ms"`
	ForwardDelayUnmeasured int64   `json:"forward_delay_unmeasured"`
	// SendWait: a forwarded packet's wait in the server's send batch for
	// the system call (ducha_sfu_send_wait_seconds; bucket upper bounds):
	// with ForwardDelay, the server's socket to socket.
	SendWaitP50Ms float64 `json:"send_wait_p50_ms"`
	SendWaitP99Ms float64 `json:"send_wait_p99_ms"`
}

// ClientResult is what the simulated participants counted.
type ClientResult struct {
	PacketsSent         int64   `json:"packets_sent"`
	BytesSent           int64   `json:"bytes_sent"`
	BitrateSentMbps     float64 `json:"bitrate_sent_mbps"`
	PacketsReceived     int64   `json:"packets_received"`
	BytesReceived       int64   `json:"bytes_received"`
	BitrateReceivedMbps float64 `json:"bitrate_received_mbps"`
	// Loss after NACK: sequence numbers never received, over those expected.
	ExpectedPackets int64   `json:"expected_packets"`
	MissingPackets  int64   `json:"missing_packets"`
	LossPercent     float64 `json:"loss_percent"`
	// By kind: audio has no NACK (Opus relies on FEC, as in browsers), so
	// random link loss stays audio loss.
	VideoLossPercent float64 `json:"video_loss_percent"`
	AudioLossPercent float64 `json:"audio_loss_percent"`
	// The SFU renumbers around its own drops, so sequence numbers cannot
	// show them; the publishers' counters in the payloads can.
	EndToEndExpected    int64   `json:"end_to_end_expected"`
	EndToEndMissing     int64   `json:"end_to_end_missing"`
	EndToEndLossPercent float64 `json:"end_to_end_loss_percent"`
	// EndToEndExcludedStreams: received streams whose counters are not
	// compared: speaker slots (several publishers on one track) and the
	// participants' audio in large rooms (the server holds back all but
	// the loudest speakers', renumbering around the gaps). Their loss is
	// counted by sequence numbers only.
	EndToEndExcludedStreams int `json:"end_to_end_excluded_streams"`
	// PLIsSent: keyframe requests receivers sent because their video did
	// not start with a keyframe (counted from the start of the run).
	PLIsSent int64 `json:"plis_sent"`
	// DelayUntimedAtSocket: delay samples taken at the read instead, in
	// the window, because the socket's arrival time was gone (the reader
	// lagged its socket by more than arrival.Slots packets of the stream).
	DelayUntimedAtSocket int64 `json:"delay_untimed_at_socket"`
	// TWCCFeedbackSent: transport-cc feedback packets the receivers sent
	// (from the start of the run), and TWCCPacketsTimed: packets they
	// reported on.
	TWCCFeedbackSent int64 `json:"twcc_feedback_sent"`
	TWCCPacketsTimed int64 `json:"twcc_packets_timed"`
	// AudioDTXTracks: published audio tracks the server asked for Opus DTX
	// (usedtx=1); while silent they send one packet in 20, as a browser does.
	AudioDTXTracks int `json:"audio_dtx_tracks"`
	// LossCountedAfterGrace: loss was counted after the publishers stopped
	// and late retransmissions had time to arrive (false for ramp steps).
	LossCountedAfterGrace bool    `json:"loss_counted_after_grace"`
	LoadToolCPUSeconds    float64 `json:"load_tool_cpu_seconds"`
	LoadToolCPUCores      float64 `json:"load_tool_cpu_cores"`
	LoadToolPeakRSSBytes  int64   `json:"load_tool_peak_rss_bytes"`
	// The simulated participants' scheduling latency over the window (see
	// ServerResult.SchedLatencyP99Ms): a delay tail can be theirs.
	LoadToolSchedLatencyP50Ms float64 `json:"load_tool_sched_latency_p50_ms"`
	LoadToolSchedLatencyP99Ms float64 `json:"load_tool_sched_latency_p99_ms"`
}

// DelayResult is receiver arrival time minus the send time in the payload,
// for packets that arrived in order (retransmissions excluded). Both ends
// run on this machine's clock. Arrival is when the datagram left the
// receiver's socket (socket.go), as a browser's network thread sees it;
// the figure still includes the sender's Pion stack, the server's, the
// loopback and the scheduling of a shared 2-core box, not only the SFU.
type DelayResult struct {
	Samples uint64  `json:"samples"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// FirstFrameResult summarises durations. For join_to_first_frame: from the
// later of the receiver's join and the publisher's first publish to the
// first complete keyframe, per video track; Missing counts video tracks
// that never completed a keyframe.
type FirstFrameResult struct {
	Samples int     `json:"samples"`
	Missing int     `json:"missing"`
	P50Ms   float64 `json:"p50_ms"`
	P95Ms   float64 `json:"p95_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// Derived are the figures runs are compared by.
type Derived struct {
	ServerCPUUsPerForwardedPacket float64 `json:"server_cpu_us_per_forwarded_packet"`
	MCPUPerForwardedTrack         float64 `json:"mcpu_per_forwarded_track"`
	ServerCPUMsPerForwardedMbit   float64 `json:"server_cpu_ms_per_forwarded_mbit"`
	MemoryPerParticipantMiB       float64 `json:"memory_per_participant_mib"`
}

// ReceiverResult is one participant's receiving side.
type ReceiverResult struct {
	Identity        string `json:"identity"`
	Role            string `json:"role"`
	Room            string `json:"room"`
	TracksExpected  int    `json:"tracks_expected"`
	TracksReceiving int    `json:"tracks_receiving"`
	// TracksAudioHeldBack and TracksWithheld: as the streams_* of Result.
	TracksAudioHeldBack int      `json:"tracks_audio_held_back"`
	TracksWithheld      int      `json:"tracks_withheld"`
	MissingTracks       []string `json:"missing_tracks,omitempty"`
	PacketsReceived     int64    `json:"packets_received"`
	// MinTrackPackets: the fewest packets an expected track that is not
	// held back got in the window.
	MinTrackPackets int64 `json:"min_track_packets"`
	MissingPackets  int64 `json:"missing_packets"`
	// Slots: speaker slots in the server's description; SlotPackets:
	// what they carried in the window; SlotHeard: whose audio.
	Slots       int      `json:"slots"`
	SlotPackets int64    `json:"slot_packets"`
	SlotHeard   []string `json:"slot_heard,omitempty"`
	// VideoLayers counts this participant's received videos by the layer
	// they ended the window on; LayerSwitches are its switches in it.
	VideoLayers   map[string]int      `json:"video_layers,omitempty"`
	LayerSwitches int64               `json:"layer_switches"`
	Downlink      *netshape.LinkShape `json:"downlink,omitempty"`
	Link          *netshape.Stats     `json:"link,omitempty"`
}

const mib = 1 << 20

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio is a/b, or 0 when b is 0 (an empty window divides by nothing).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// buildResult turns two snapshots into a Result. lossEnd, if not nil, is a
// later snapshot taken after the grace period; loss is counted up to it.
func (r *runner) buildResult(start, end, lossEnd *snapshot, peakRSS int64, agents []*agent) Result {
	secs := end.at.Sub(start.at).Seconds()
	res := Result{Rooms: r.rooms, Participants: len(r.agents), WindowSeconds: secs}
	m := func(name string) int64 { return int64(end.server.metrics[name] - start.server.metrics[name]) }
	sv := &res.Server
	sv.PacketsIn, sv.PacketsOut = m("ducha_sfu_packets_in_total"), m("ducha_sfu_packets_out_total")
	sv.BytesIn, sv.BytesOut = m("ducha_sfu_bytes_in_total"), m("ducha_sfu_bytes_out_total")
	sv.BitrateInMbps = ratio(float64(sv.BytesIn)*8/1e6, secs)
	sv.BitrateOutMbps = ratio(float64(sv.BytesOut)*8/1e6, secs)
	sv.QueueDrops, sv.KeyframeSkips = m("ducha_sfu_queue_drops_total"), m("ducha_sfu_keyframe_skips_total")
	sv.NACKs, sv.Retransmits = m("ducha_sfu_nacks_total"), m("ducha_sfu_retransmits_total")
	sv.RetransmitMisses, sv.KeyframeRequests = m("ducha_sfu_retransmit_misses_total"), m("ducha_sfu_keyframe_requests_total")
	sv.IngressPackets, sv.NACKsSent = m("ducha_sfu_ingress_packets_total"), m("ducha_sfu_nacks_sent_total")
	sv.InlinePackets = m("ducha_sfu_inline_packets_total")
	sv.ReaderBursts, sv.ReaderBehind = m("ducha_sfu_reader_bursts_total"), m("ducha_sfu_reader_bursts_behind_total")
	sv.SimulcastLayers = int64(end.server.metrics["ducha_sfu_simulcast_layers"])
	sv.LayerSwitches = m("ducha_sfu_layer_switches_total")
	sv.CPUSeconds, sv.CPUSource = end.server.cpu-start.server.cpu, end.server.cpuSource
	sv.CPUCores = ratio(sv.CPUSeconds, secs)
	sv.BaselineRSSBytes, sv.PeakRSSBytes = r.baseRSS, peakRSS
	ss, es := promBuckets(start.server.metrics, schedMetric), promBuckets(end.server.metrics, schedMetric)
	sv.SchedLatencyP50Ms, sv.SchedLatencyP99Ms = windowQuantile(ss, es, 0.5), windowQuantile(ss, es, 0.99)
	fs, fe := promBuckets(start.server.metrics, fwdDelayMetric), promBuckets(end.server.metrics, fwdDelayMetric)
	sv.ForwardDelayP50Ms, sv.ForwardDelayP99Ms = windowQuantile(fs, fe, 0.5), windowQuantile(fs, fe, 0.99)
	sv.ForwardDelayUnmeasured = m("ducha_sfu_forward_delay_unmeasured_total")
	ws, we := promBuckets(start.server.metrics, sendWaitMetric), promBuckets(end.server.metrics, sendWaitMetric)
	sv.SendWaitP50Ms, sv.SendWaitP99Ms = windowQuantile(ws, we, 0.5), windowQuantile(ws, we, 0.99)

	cl := &res.Clients
	cl.PacketsSent, cl.BytesSent = end.sentPackets-start.sentPackets, end.sentBytes-start.sentBytes
	cl.BitrateSentMbps = ratio(float64(cl.BytesSent)*8/1e6, secs)
	cl.LoadToolCPUSeconds = end.selfCPU - start.selfCPU
	cl.LoadToolCPUCores = ratio(cl.LoadToolCPUSeconds, secs)
	_, cl.LoadToolPeakRSSBytes = selfUsage()
	cl.LoadToolSchedLatencyP50Ms = windowQuantile(start.selfSched, end.selfSched, 0.5)
	cl.LoadToolSchedLatencyP99Ms = windowQuantile(start.selfSched, end.selfSched, 0.99)
	lossAt := end
	if lossEnd != nil {
		lossAt, cl.LossCountedAfterGrace = lossEnd, true
	}
	for t, e := range end.tracks {
		s := start.tracks[t] // zero for a track that appeared during the window
		cl.PacketsReceived += e.packets - s.packets
		cl.BytesReceived += e.bytes - s.bytes
		cl.PLIsSent += e.plis
		cl.DelayUntimedAtSocket += e.untimed - s.untimed
	}
	var kindExp, kindMiss [2]int64 // audio, video
	sl := &res.Slots
	sl.Heard = map[string]int64{}
	for _, a := range r.agents {
		if a.audio != nil && a.audio.DTX() {
			cl.AudioDTXTracks++
		}
		if a.twcc != nil {
			cl.TWCCFeedbackSent += a.twcc.Sent()
			cl.TWCCPacketsTimed += a.twcc.Recorded()
		}
		largeAudio := a.largeRoomAudio(r.cfg.LargeRoom)
		for _, t := range a.receiving() {
			e, s := lossAt.tracks[t], start.tracks[t]
			exp, uniq := e.expected-s.expected, e.unique-s.unique
			cl.ExpectedPackets += exp
			cl.MissingPackets += max(exp-uniq, 0)
			k := 0
			if t.video {
				k = 1
			}
			kindExp[k] += exp
			kindMiss[k] += max(exp-uniq, 0)
			if t.slot != nil {
				w := slotDelta(s, end.tracks[t], e)
				sl.Packets, sl.Bytes = sl.Packets+w.packets, sl.Bytes+w.bytes
				sl.ExpectedPackets, sl.MissingPackets = sl.ExpectedPackets+w.expected, sl.MissingPackets+w.missing
				sl.SpeakerChanges += w.changes
				if w.packets > 0 {
					sl.SlotsReceiving++
				}
				for src, n := range w.heard {
					sl.Heard[r.sourceName(src)] += n
				}
			}
			if t.slot != nil || (!t.video && largeAudio) {
				cl.EndToEndExcludedStreams++
				continue
			}
			cexp, cuniq := e.ctrExpected-s.ctrExpected, e.ctrUnique-s.ctrUnique
			cl.EndToEndExpected += cexp
			cl.EndToEndMissing += max(cexp-cuniq, 0)
		}
	}
	sl.BitrateMbps = ratio(float64(sl.Bytes)*8/1e6, secs)
	sl.LossPercent = 100 * ratio(float64(sl.MissingPackets), float64(sl.ExpectedPackets))
	sl.Delay = delayResult(end.slotHist, start.slotHist)
	cl.BitrateReceivedMbps = ratio(float64(cl.BytesReceived)*8/1e6, secs)
	cl.LossPercent = 100 * ratio(float64(cl.MissingPackets), float64(cl.ExpectedPackets))
	cl.AudioLossPercent = 100 * ratio(float64(kindMiss[0]), float64(kindExp[0]))
	cl.VideoLossPercent = 100 * ratio(float64(kindMiss[1]), float64(kindExp[1]))
	cl.EndToEndLossPercent = 100 * ratio(float64(cl.EndToEndMissing), float64(cl.EndToEndExpected))

	res.Delay = delayResult(end.hist, start.hist)
	res.DelayAfterClientStack = delayResult(end.stackHist, start.stackHist)
	res.DelayByRole = map[string]DelayResult{}
	for role, eh := range end.roleHist {
		var sh histSnap
		if s := start.roleHist[role]; s != nil {
			sh = *s
		}
		res.DelayByRole[role] = delayResult(*eh, sh)
	}

	for _, a := range r.agents {
		res.PublishedTracks += a.spec.tracks()
		res.Receivers = append(res.Receivers, r.receiverResult(a, start, end, lossAt))
	}
	for _, rr := range res.Receivers {
		res.StreamsExpected += rr.TracksExpected
		res.StreamsForwarded += rr.TracksReceiving
		res.StreamsAudioHeldBack += rr.TracksAudioHeldBack
		res.StreamsWithheld += rr.TracksWithheld
		if len(rr.MissingTracks) > 0 {
			res.ReceiversWithoutMedia++
		}
		if rr.Slots > 0 {
			sl.Receivers++
			sl.Slots += rr.Slots
		}
	}
	res.JoinToFirstFrame = r.firstFrames(agents)
	byRole := map[string][]*agent{}
	for _, a := range agents {
		byRole[a.spec.Role] = append(byRole[a.spec.Role], a)
	}
	res.FirstFrameByRole = make(map[string]FirstFrameResult, len(byRole))
	for role, as := range byRole {
		res.FirstFrameByRole[role] = r.firstFrames(as)
	}
	res.Layers = layerResult(agents, start, end)
	joins := make([]time.Duration, 0, len(agents))
	for _, a := range agents {
		joins = append(joins, a.joined.Sub(a.joinStart))
	}
	res.JoinToJoined = durationStats(joins, 0)
	ncpu := runtime.NumCPU()
	busy := ratio(float64(end.cpuBusy-start.cpuBusy), float64(end.cpuTotal-start.cpuTotal)) * float64(ncpu)
	res.Machine = MachineResult{CPUs: ncpu, BusyCores: busy,
		OtherCores:     max(busy-sv.CPUCores-cl.LoadToolCPUCores, 0),
		LoadAvgAtStart: start.loadAvg, LoadAvgAtEnd: end.loadAvg, LoadToolNice: -1000, ServerNice: -1000}
	if n, ok := niceOf(os.Getpid()); ok {
		res.Machine.LoadToolNice = n
	}
	if n, ok := niceOf(r.srv.pid); ok && r.srv.pid > 0 {
		res.Machine.ServerNice = n
	}
	res.Derived = Derived{
		ServerCPUUsPerForwardedPacket: ratio(sv.CPUSeconds*1e6, float64(sv.PacketsOut)),
		MCPUPerForwardedTrack:         ratio(sv.CPUCores*1000, float64(res.StreamsForwarded+sl.SlotsReceiving)),
		ServerCPUMsPerForwardedMbit:   ratio(sv.CPUSeconds*1000, float64(sv.BytesOut)*8/1e6),
		MemoryPerParticipantMiB:       ratio(float64(max(peakRSS-r.baseRSS, 0))/mib, float64(res.Participants)),
	}
	return res
}

// receiverResult: expected tracks count as receiving when packets
// arrived in the window.
func (r *runner) receiverResult(a *agent, start, end, lossAt *snapshot) ReceiverResult {
	inWindow := func(t *recvTrack) bool { return end.tracks[t].packets-start.tracks[t].packets > 0 }
	e := a.expect(r.cfg.LargeRoom, inWindow)
	rr := ReceiverResult{Identity: a.spec.Identity, Role: a.spec.Role, Room: a.spec.Room, TracksExpected: e.offered,
		TracksReceiving: e.receiving, TracksAudioHeldBack: e.gated, TracksWithheld: e.withheld, MissingTracks: e.missing,
		Slots: e.slots, MinTrackPackets: -1}
	expected := map[string]bool{}
	for _, o := range a.c.Offered() {
		expected[o.StreamID] = true
	}
	heard := map[uint32]int64{}
	for _, t := range a.receiving() {
		n := end.tracks[t].packets - start.tracks[t].packets
		rr.PacketsReceived += n
		el, s := lossAt.tracks[t], start.tracks[t]
		rr.MissingPackets += max(el.expected-s.expected-(el.unique-s.unique), 0)
		if t.slot != nil {
			rr.SlotPackets += n
			for src, c := range slotDelta(s, end.tracks[t], el).heard {
				heard[src] += c
			}
			continue
		}
		// Held back audio (no packets) is no minimum; missing tracks
		// have no recvTrack and make it 0 below.
		if expected[t.streamID] && n > 0 && (rr.MinTrackPackets < 0 || n < rr.MinTrackPackets) {
			rr.MinTrackPackets = n
		}
	}
	if len(heard) > 0 {
		rr.SlotHeard = r.heardNames(heard)
	}
	if len(rr.MissingTracks) > 0 || rr.MinTrackPackets < 0 {
		rr.MinTrackPackets = 0 // a track that never came received nothing
	}
	rr.VideoLayers, rr.LayerSwitches = receiverLayers(a, start, end)
	if a.spec.Down.Active() {
		d := a.spec.Down
		rr.Downlink = &d
		if a.shaped != nil {
			st := a.shaped.Stats()
			rr.Link = &st
		}
	}
	return rr
}

// firstFrames measures join (or publish) to first complete keyframe for the
// video tracks the given agents receive.
func (r *runner) firstFrames(agents []*agent) FirstFrameResult {
	missing := 0
	var ds []time.Duration
	for _, a := range agents {
		for _, t := range a.receiving() {
			if !t.video {
				continue
			}
			at := t.firstFrameAt.Load()
			if at == 0 {
				missing++
				continue
			}
			from := a.joinStart
			if pub := r.byID[a.publisherOf(t)]; pub != nil && pub.published.After(from) {
				from = pub.published
			}
			ds = append(ds, time.Unix(0, at).Sub(from))
		}
	}
	return durationStats(ds, missing)
}

// durationStats summarises durations (Missing is passed through).
func durationStats(ds []time.Duration, missing int) FirstFrameResult {
	res := FirstFrameResult{Samples: len(ds), Missing: missing}
	if len(ds) == 0 {
		return res
	}
	slices.Sort(ds)
	pick := func(p float64) float64 { return ms(ds[min(int(float64(len(ds))*p/100), len(ds)-1)]) }
	res.P50Ms, res.P95Ms, res.MaxMs = pick(50), pick(95), ms(ds[len(ds)-1])
	return res
}

// delayResult is what a delay histogram counted between two snapshots.
func delayResult(end, start histSnap) DelayResult {
	end.sub(&start)
	return DelayResult{Samples: end.count(), P50Ms: ms(end.percentile(50)), P95Ms: ms(end.percentile(95)),
		P99Ms: ms(end.percentile(99)), MaxMs: ms(end.max())}
}
