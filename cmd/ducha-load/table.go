package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// printReport writes the human-readable summary. The two figures runs are
// compared by keep their exact names: "server CPU us per forwarded packet"
// and "mCPU per forwarded track".
func printReport(w io.Writer, rep *Report) {
	if rep.Result != nil {
		fmt.Fprintf(w, "\nducha-load %s\n", rep.Scenario)
		printResult(w, rep.Result)
	}
	if len(rep.Steps) > 0 {
		fmt.Fprintf(w, "\nramp stopped: %s\n", rep.StopReason)
		if rep.LastGoodStep >= 0 {
			good := rep.Steps[rep.LastGoodStep]
			fmt.Fprintf(w, "last good step: %d rooms of 1+%d (%d participants)\n", good.Rooms, rep.Config.Size, good.Participants)
			printResult(w, &good)
		} else {
			fmt.Fprintln(w, "no step stayed within the limits")
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func printResult(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(name, format string, a ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{name}, a...)...)
	}
	fmt.Fprintln(tw, "load\t")
	row("rooms / participants / published tracks", "%d / %d / %d", r.Rooms, r.Participants, r.PublishedTracks)
	row("streams forwarded (expected)", "%d (%d)", r.StreamsForwarded, r.StreamsExpected)
	row("expected audio held back (not a loudest speaker)", "%d", r.StreamsAudioHeldBack)
	row("announced streams withheld (large-room policy)", "%d", r.StreamsWithheld)
	row("receivers missing tracks", "%d", r.ReceiversWithoutMedia)
	row("window", "%.1f s", r.WindowSeconds)
	fmt.Fprintln(tw, "server (/metrics deltas)\t")
	s := r.Server
	row("packets in / out", "%d / %d", s.PacketsIn, s.PacketsOut)
	row("packets in through the own ingress", "%d (the rest through Pion's receive chain)", s.IngressPackets)
	row("packets in written by the reader itself", "%d (small groups); reader bursts %d, %d of them behind the socket",
		s.InlinePackets, s.ReaderBursts, s.ReaderBehind)
	row("bitrate in / out", "%.2f / %.2f Mbit/s", s.BitrateInMbps, s.BitrateOutMbps)
	row("queue drops / keyframe skips", "%d / %d", s.QueueDrops, s.KeyframeSkips)
	row("NACKs / retransmits / misses", "%d / %d / %d", s.NACKs, s.Retransmits, s.RetransmitMisses)
	row("NACKs to publishers", "%d (sequence numbers lost on their uplinks)", s.NACKsSent)
	row("keyframe requests", "%d", s.KeyframeRequests)
	row("CPU", "%.2f s = %.2f cores (%s)", s.CPUSeconds, s.CPUCores, s.CPUSource)
	row("RSS baseline / peak", "%.1f / %.1f MiB", float64(s.BaselineRSSBytes)/mib, float64(s.PeakRSSBytes)/mib)
	fmt.Fprintln(tw, "clients\t")
	c := r.Clients
	row("packets sent / received", "%d / %d", c.PacketsSent, c.PacketsReceived)
	row("bitrate sent / received", "%.2f / %.2f Mbit/s", c.BitrateSentMbps, c.BitrateReceivedMbps)
	after := "at window end"
	if c.LossCountedAfterGrace {
		after = "after grace"
	}
	row("loss after NACK", "%.3f%% (%d of %d, %s)", c.LossPercent, c.MissingPackets, c.ExpectedPackets, after)
	row("loss after NACK video / audio", "%.3f%% / %.3f%% (audio has no NACK)", c.VideoLossPercent, c.AudioLossPercent)
	row("end-to-end loss (SFU drops included)", "%.3f%% (%d of %d; %d streams by sequence numbers only)",
		c.EndToEndLossPercent, c.EndToEndMissing, c.EndToEndExpected, c.EndToEndExcludedStreams)
	row("forwarding delay p50 / p95 / p99 / max", "%.2f / %.2f / %.2f / %.2f ms (%d samples, %d untimed at the socket)",
		r.Delay.P50Ms, r.Delay.P95Ms, r.Delay.P99Ms, r.Delay.MaxMs, r.Delay.Samples, c.DelayUntimedAtSocket)
	ds := r.DelayAfterClientStack
	row("delay to the read from the client's stack p50 / p99", "%.2f / %.2f ms (the simulated client's own receive chain added)",
		ds.P50Ms, ds.P99Ms)
	var byRole []string
	for _, role := range slices.Sorted(maps.Keys(r.DelayByRole)) {
		d := r.DelayByRole[role]
		byRole = append(byRole, fmt.Sprintf("%s %.2f / %.2f ms", role, d.P50Ms, d.P99Ms))
	}
	row("forwarding delay p50 / p99 by receiver role", "%s", strings.Join(byRole, ", "))
	row("join to first frame p50 / p95 / max", "%.0f / %.0f / %.0f ms (%d tracks, %d without a frame)",
		r.JoinToFirstFrame.P50Ms, r.JoinToFirstFrame.P95Ms, r.JoinToFirstFrame.MaxMs, r.JoinToFirstFrame.Samples,
		r.JoinToFirstFrame.Missing)
	roles := slices.Sorted(maps.Keys(r.FirstFrameByRole))
	parts := make([]string, 0, len(roles))
	for _, role := range roles {
		f := r.FirstFrameByRole[role]
		parts = append(parts, fmt.Sprintf("%s %.0f / %.0f ms (%d)", role, f.P50Ms, f.P95Ms, f.Samples))
	}
	row("first frame p50 / p95 by receiver role", "%s", strings.Join(parts, ", "))
	if lj := r.LateJoinToFirstFrame; lj.Samples+lj.Missing > 0 {
		row("late join to first frame p50 / p95 / max", "%.0f / %.0f / %.0f ms (%d joiners into the full room, %d without a frame)",
			lj.P50Ms, lj.P95Ms, lj.MaxMs, lj.Samples, lj.Missing)
	}
	row("join (dial to joined) p50 / p95 / max", "%.0f / %.0f / %.0f ms", r.JoinToJoined.P50Ms, r.JoinToJoined.P95Ms,
		r.JoinToJoined.MaxMs)
	row("keyframe requests by receivers", "%d (video that did not start with a keyframe)", c.PLIsSent)
	row("TWCC feedback sent", "%d packets on %d arrivals timed at the socket", c.TWCCFeedbackSent, c.TWCCPacketsTimed)
	row("audio tracks asked for DTX", "%d (silent ones send 1 packet in 20)", c.AudioDTXTracks)
	fmt.Fprintln(tw, "simulcast\t")
	l := r.Layers
	row("received videos by layer q / h / f / single / unknown", "%d / %d / %d / %d / %d", l.Videos["q"],
		l.Videos["h"], l.Videos["f"], l.Videos["single"], l.Videos["unknown"])
	row("received videos by keyframe size", "%s", sizeList(l.KeyframeSizes))
	row("layer switches seen by receivers", "%d (%d videos switched)", l.Switches, l.TracksSwitched)
	row("layer switches (server) / layer streams in", "%d / %d", s.LayerSwitches, s.SimulcastLayers)
	row("published layers / paused (q h f) / layers messages", "%d / %d (%d %d %d) / %d", l.PublishedLayers,
		l.PausedLayers, l.PausedByRID["q"], l.PausedByRID["h"], l.PausedByRID["f"], l.LayersMessages)
	row("video-size messages sent", "%d", l.VideoSizesSent)
	fmt.Fprintln(tw, "speaker slots\t")
	sl := r.Slots
	row("receivers with slots / slots / with packets", "%d / %d / %d", sl.Receivers, sl.Slots, sl.SlotsReceiving)
	row("slot packets / bitrate", "%d / %.3f Mbit/s", sl.Packets, sl.BitrateMbps)
	row("slot loss (sequence numbers)", "%.3f%% (%d of %d)", sl.LossPercent, sl.MissingPackets, sl.ExpectedPackets)
	row("slot delay p50 / p95 / p99 / max", "%.2f / %.2f / %.2f / %.2f ms (%d samples)", sl.Delay.P50Ms,
		sl.Delay.P95Ms, sl.Delay.P99Ms, sl.Delay.MaxMs, sl.Delay.Samples)
	row("slot speaker changes", "%d", sl.SpeakerChanges)
	row("heard on slots (packets)", "%s", heardList(sl.Heard))
	row("load tool CPU / peak RSS", "%.2f cores / %.0f MiB", c.LoadToolCPUCores, float64(c.LoadToolPeakRSSBytes)/mib)
	row("SFU's own forwarding delay p50 / p99", "%s / %s ms (arrival at the server's socket to the last copy handed on; %d unmeasured)",
		msText(r.Server.ForwardDelayP50Ms), msText(r.Server.ForwardDelayP99Ms), r.Server.ForwardDelayUnmeasured)
	row("server's send batch wait p50 / p99", "%s / %s ms (handed on to the system call)",
		msText(r.Server.SendWaitP50Ms), msText(r.Server.SendWaitP99Ms))
	row("scheduling latency p50 / p99: server, load tool", "%s / %s, %s / %s ms (runnable goroutines waiting for a thread)",
		msText(r.Server.SchedLatencyP50Ms), msText(r.Server.SchedLatencyP99Ms),
		msText(c.LoadToolSchedLatencyP50Ms), msText(c.LoadToolSchedLatencyP99Ms))
	m := r.Machine
	row("machine: busy / used by others", "%.2f / %.2f of %d cores (load average %.1f -> %.1f; nice: load tool %d, server %d)",
		m.BusyCores, m.OtherCores, m.CPUs, m.LoadAvgAtStart, m.LoadAvgAtEnd, m.LoadToolNice, m.ServerNice)
	fmt.Fprintln(tw, "derived\t")
	d := r.Derived
	row("server CPU us per forwarded packet", "%.2f", d.ServerCPUUsPerForwardedPacket)
	row("mCPU per forwarded track", "%.3f", d.MCPUPerForwardedTrack)
	row("server CPU ms per forwarded megabit", "%.3f", d.ServerCPUMsPerForwardedMbit)
	row("memory per participant", "%.2f MiB", d.MemoryPerParticipantMiB)
	_ = tw.Flush()
}

// sizeList prints a count per size, smallest first: "320x180: 4, 640x360: 2".
func sizeList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// "none" first, then by width.
	slices.SortFunc(keys, func(a, b string) int {
		wa, _, _ := strings.Cut(a, "x")
		wb, _, _ := strings.Cut(b, "x")
		na, _ := strconv.Atoi(wa)
		nb, _ := strconv.Atoi(wb)
		return cmp.Or(cmp.Compare(na, nb), cmp.Compare(a, b))
	})
	return countList(keys, m)
}

// heardList prints packets per speaker, most first: "supervisor: 900, county001: 850".
func heardList(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	return countList(keys, m)
}

// countList prints "key: n" for keys in their order ("-" when empty).
func countList[N int | int64](keys []string, m map[string]N) string {
	if len(keys) == 0 {
		return "-"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func printRampHeader(w io.Writer) {
	fmt.Fprintf(w, "%6s %6s %8s %8s %9s %12s %9s %8s %8s %9s %9s  %s\n", "rooms", "parts", "streams", "cores",
		"us/pkt", "mCPU/track", "loss%", "e2e%", "p99ms", "tool-cpu", "others", "verdict")
}

func printRampStep(w io.Writer, r Result, verdict string) {
	if verdict == "" {
		verdict = "ok"
	}
	fmt.Fprintf(w, "%6d %6d %8d %8.2f %9.2f %12.3f %9.3f %8.3f %8.2f %9.2f %9.2f  %s\n", r.Rooms, r.Participants,
		r.StreamsForwarded, r.Server.CPUCores, r.Derived.ServerCPUUsPerForwardedPacket, r.Derived.MCPUPerForwardedTrack,
		r.Clients.LossPercent, r.Clients.EndToEndLossPercent, r.Delay.P99Ms, r.Clients.LoadToolCPUCores,
		r.Machine.OtherCores, verdict)
}

// writeJSON writes the report, indented, replacing path atomically.
func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
