package main

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ducha-dev/ducha/signaling/client"
)

// Speaker slots (PROTOCOL.md "Large rooms"): a participant who joins a
// large room gets a few audio tracks that carry the loudest speakers'
// audio, moved by the server from speaker to speaker. A slot is received
// like any track (packets, sequence loss, delay from the trailer); the
// publisher's counters are not comparable across speakers, so a slot has
// no end-to-end loss. The source number every Synth writes into its audio
// says whose audio a slot packet is.

// slotStats is what one slot carried, by speaker. The track's reader
// goroutine writes; the runner reads.
type slotStats struct {
	hist    *delayHist // the participant's slot delays
	changes atomic.Int64

	mu    sync.Mutex
	heard map[uint32]int64 // source -> packets
	last  uint32           // reader goroutine only
}

func newSlotStats(hist *delayHist) *slotStats {
	return &slotStats{hist: hist, heard: map[uint32]int64{}}
}

// onPacket counts a packet of source (0: unknown).
func (s *slotStats) onPacket(source uint32) {
	if source != s.last {
		if s.last != 0 {
			s.changes.Add(1)
		}
		s.last = source
	}
	s.mu.Lock()
	s.heard[source]++ // a new speaker allocates, once
	s.mu.Unlock()
}

func (s *slotStats) snapshot() map[uint32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.heard)
}

// SlotResult is what the speaker slots carried during the window.
type SlotResult struct {
	// Receivers: participants whose description has speaker slots;
	// Slots: the slots, summed; SlotsReceiving: those with packets in
	// the window.
	Receivers      int   `json:"receivers"`
	Slots          int   `json:"slots"`
	SlotsReceiving int   `json:"slots_receiving"`
	Packets        int64 `json:"packets"`
	Bytes          int64 `json:"bytes"`
	// BitrateMbps: all slots together.
	BitrateMbps float64 `json:"bitrate_mbps"`
	// Loss after NACK by sequence numbers (slots run on across speakers).
	ExpectedPackets int64   `json:"expected_packets"`
	MissingPackets  int64   `json:"missing_packets"`
	LossPercent     float64 `json:"loss_percent"`
	// Delay from the payload trailers, in-order packets.
	Delay DelayResult `json:"delay"`
	// SpeakerChanges: times a slot moved to another speaker.
	SpeakerChanges int64 `json:"speaker_changes"`
	// Heard: slot packets by the identity of their publisher, over every
	// receiver ("unknown": packets without a source number).
	Heard map[string]int64 `json:"heard"`
}

// slotWindow is one slot track's share of the window.
type slotWindow struct {
	packets, bytes, expected, missing int64
	changes                           int64
	heard                             map[uint32]int64
}

// window is what the slot carried between two snapshots.
func slotDelta(start, end, lossAt trackCounts) slotWindow {
	w := slotWindow{packets: end.packets - start.packets, bytes: end.bytes - start.bytes,
		changes: end.slotChanges - start.slotChanges, heard: map[uint32]int64{}}
	w.expected = lossAt.expected - start.expected
	w.missing = max(w.expected-(lossAt.unique-start.unique), 0)
	for src, n := range end.heard {
		if d := n - start.heard[src]; d > 0 {
			w.heard[src] = d
		}
	}
	return w
}

// names turns source numbers into identities.
func (r *runner) sourceName(src uint32) string {
	for _, a := range r.agents {
		if a.source == src {
			return a.spec.Identity
		}
	}
	return "unknown"
}

// heardNames lists the identities a receiver's slots carried, sorted.
func (r *runner) heardNames(heard map[uint32]int64) []string {
	names := make([]string, 0, len(heard))
	for src := range heard {
		names = append(names, r.sourceName(src))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// slotSource reads the speaker a slot packet carries.
func slotSource(payload []byte) uint32 {
	src, _ := client.AudioSource(payload)
	return src
}
