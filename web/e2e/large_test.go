package e2e

import (
	"testing"
	"time"
)

// largeStats is what large.mjs saw on the page that joined a large room.
type largeStats struct {
	EarlySlotMode bool `json:"earlySlotMode"`
	SlotMode      bool `json:"slotMode"`
	SubscribeWait *struct {
		MS       int      `json:"ms"`
		TimedOut bool     `json:"timedOut"`
		Missing  []string `json:"missing"`
	} `json:"subscribeWait"`
	Slots []struct {
		ID               string  `json:"id"`
		Track            string  `json:"track"`
		ReadyState       string  `json:"readyState"`
		Muted            bool    `json:"muted"`
		Paused           bool    `json:"paused"`
		PacketsReceived  int     `json:"packetsReceived"`
		TotalAudioEnergy float64 `json:"totalAudioEnergy"`
	} `json:"slots"`
	Growing                     []string `json:"growing"`
	OtherAudio                  int      `json:"otherAudio"`
	AudioReceivedPerParticipant int      `json:"audioReceivedPerParticipant"`
}

// TestBrowserLargeRoom: with --large-room 2, a county that joins as the third
// participant hears the room on speaker slots (PROTOCOL.md, "Large rooms"),
// and its page plays them and publishes without waiting for tracks the
// server will not send it.
func TestBrowserLargeRoom(t *testing.T) {
	node := requireBrowserTools(t)
	root := repoRoot(t)
	dir := t.TempDir()
	srv := startServer(t, buildDucha(t, root, dir), dir, "--large-room", "2")
	const room = "dc-e2e-large"
	sup := srv.token(t, room, "sup-wang", "王督查", "supervisor", "1h")
	county := srv.token(t, room, "county-a", "甲县信访局", "county", "1h")
	late := srv.token(t, room, "county-b", "乙县信访局", "county", "1h")

	start := time.Now()
	r := startScript(t, node, "large.mjs", 3*time.Minute, "--supervisor", sup, "--county", county, "--late", late).wait()
	if !r.OK {
		t.Fatalf("large room run failed at step %q: %s (page errors: %v)", r.Step, r.Reason, r.PageErrors)
	}
	t.Logf("browser run took %s", time.Since(start).Round(time.Second))
	requireSteps(t, r, "supervisor-joined", "county-joined", "late-joined", "slot-audio-live", "late-tiles")
	l := r.Large
	if l == nil {
		t.Fatal("no large-room result")
	}
	if l.EarlySlotMode {
		t.Error("a page that joined the room while it was small received speaker slots")
	}
	if !l.SlotMode || len(l.Slots) != 3 {
		t.Errorf("late page: slot mode %v with %d slots, want 3 slots", l.SlotMode, len(l.Slots))
	}
	for _, s := range l.Slots {
		t.Logf("slot %s: track %s %s muted=%v paused=%v packets=%d energy=%.4f", s.ID, s.Track, s.ReadyState, s.Muted, s.Paused,
			s.PacketsReceived, s.TotalAudioEnergy)
	}
	if len(l.Growing) == 0 {
		t.Error("no speaker slot received packets")
	}
	// Audio comes only on the slots: no per-participant audio track.
	if l.OtherAudio != 0 || l.AudioReceivedPerParticipant != 0 {
		t.Errorf("late page receives %d audio streams besides the slots (%d participants' audio tracks)", l.OtherAudio,
			l.AudioReceivedPerParticipant)
	}
	// The others' audio and the other county's video never come to it:
	// waiting for them would hold its camera back for the whole deadline.
	if w := l.SubscribeWait; w == nil || w.TimedOut {
		t.Errorf("late page waited for tracks the server does not send it before publishing: %+v", w)
	}
}
