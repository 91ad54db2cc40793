package main

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
)

// A receiver expects what the server's description sends it, slots aside;
// audio without packets is excused only where the loudest-speaker policy
// holds it back (a large room, a publisher who is not speaking); what was
// announced but never offered is withheld, not missing.
func TestExpectFrom(t *testing.T) {
	with := func(n int64) *recvTrack {
		rt := newRecvTrack("x", false, &delayHist{}, &delayHist{}, nil, time.Now)
		rt.packets.Store(n)
		return rt
	}
	announced := map[string]sfu.TrackInfo{
		"Tsupv": {ID: "Tsupv", ParticipantID: "Psup", Kind: "video"},
		"Tsupa": {ID: "Tsupa", ParticipantID: "Psup", Kind: "audio"},
		"Tc1v":  {ID: "Tc1v", ParticipantID: "Pc1", Kind: "video"},
		"Tc1a":  {ID: "Tc1a", ParticipantID: "Pc1", Kind: "audio"},
		"Tc2a":  {ID: "Tc2a", ParticipantID: "Pc2", Kind: "audio"},
		"Tmea":  {ID: "Tmea", ParticipantID: "Pme", Kind: "audio"}, // our own
	}
	offered := []client.OfferedStream{
		{StreamID: "Tsupv", Kind: "video"}, {StreamID: "Tsupa", Kind: "audio"},
		{StreamID: "Tc1a", Kind: "audio"}, {StreamID: "Tc2a", Kind: "audio"},
		{StreamID: "Tc2a", Kind: "audio"}, // a section reused: one track
		{StreamID: "speaker-0", Kind: "audio"}, {StreamID: "speaker-1", Kind: "audio"},
	}
	recv := map[string]*recvTrack{"Tsupv": with(10), "Tsupa": with(5), "Tc1a": with(0), "speaker-0": with(3)}
	for _, c := range []struct {
		name     string
		large    bool
		speakers []string
		want     expectation
	}{
		// Small room: every offered track must arrive.
		{"small", false, []string{"Psup"}, expectation{offered: 4, receiving: 2,
			missing: []string{"Tc1a (audio of Pc1)", "Tc2a (audio of Pc2)"}, withheld: 1, slots: 2}},
		// Large room: silent county audio is held back, not missing.
		{"large", true, []string{"Psup"}, expectation{offered: 4, receiving: 2, gated: 2, withheld: 1, slots: 2}},
		// Large room, but c1 speaks: its audio should come.
		{"large, c1 speaks", true, []string{"Psup", "Pc1"}, expectation{offered: 4, receiving: 2, gated: 1,
			missing: []string{"Tc1a (audio of Pc1)"}, withheld: 1, slots: 2}},
	} {
		got := expectFrom(serverView{offered: offered, announced: announced, self: "Pme", large: c.large,
			speakers: c.speakers}, recv, everReceived)
		slices.Sort(got.missing)
		if got.offered != c.want.offered || got.receiving != c.want.receiving || got.gated != c.want.gated ||
			got.withheld != c.want.withheld || got.slots != c.want.slots || !slices.Equal(got.missing, c.want.missing) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	// Video is never excused, large room or not.
	got := expectFrom(serverView{offered: []client.OfferedStream{{StreamID: "Tc1v", Kind: "video"}},
		announced: announced, self: "Pme", large: true}, map[string]*recvTrack{}, everReceived)
	if len(got.missing) != 1 || got.gated != 0 {
		t.Errorf("unreceived video in a large room: %+v, want missing", got)
	}
}

// audioTrailed is an audio payload as a Synth with a Source writes it.
func audioTrailed(sent time.Time, counter, source uint32) []byte {
	p := trailed(sent, counter, 80)
	p[0] = 0xf8
	binary.BigEndian.PutUint32(p[1:5], source)
	return p
}

// A slot counts packets by speaker and notices when the server moves it
// to another; its sequence numbers run on, so loss is theirs to show.
func TestSlotTrack(t *testing.T) {
	now := time.Unix(3000, 0)
	var h, slotH delayHist
	rt := newRecvTrack("speaker-0", false, &h, &delayHist{}, nil, func() time.Time { return now })
	rt.slot = newSlotStats(&slotH)
	seq := uint16(500)
	send := func(n int, source uint32) {
		for i := 0; i < n; i++ {
			rt.onPacket(rtpPacket(seq, true, audioTrailed(now.Add(-time.Millisecond), uint32(1000+i), source), 0, 1, 0), now)
			seq++
		}
	}
	send(5, 1)
	start := rt.counts()
	send(3, 2)
	seq++ // one lost
	send(4, 1)
	end := rt.counts()
	w := slotDelta(start, end, end)
	if w.packets != 7 || w.changes != 2 || w.heard[1] != 4 || w.heard[2] != 3 || len(w.heard) != 2 {
		t.Errorf("window: %+v; want 7 packets, 2 changes, heard 1: 4, 2: 3", w)
	}
	if w.expected != 8 || w.missing != 1 {
		t.Errorf("window loss: %d of %d, want 1 of 8", w.missing, w.expected)
	}
	var s histSnap
	slotH.snapshot(&s)
	if s.count() != 12 {
		t.Errorf("%d slot delay samples, want 12", s.count())
	}
	h.snapshot(&s)
	if s.count() != 12 {
		t.Errorf("%d delay samples in the participant's histogram, want 12 (slots are forwarded media too)", s.count())
	}
	// A participant's track keeps no slot counts.
	plain := newRecvTrack("Ta", false, &h, &delayHist{}, nil, time.Now)
	plain.onPacket(rtpPacket(1, true, audioTrailed(now, 1, 9), 0, -1, 0), now)
	if c := plain.counts(); c.heard != nil {
		t.Errorf("slot counts on a plain track: %v", c.heard)
	}
}

// --large-room and the spawned server's own flag agree, or the run stops.
func TestLargeRoomFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
		srv  []string
		bad  bool
	}{
		{[]string{"--spawn"}, 10, nil, false},
		{[]string{"--spawn", "--large-room", "3"}, 3, []string{"--large-room", "3"}, false},
		{[]string{"--spawn", "--server-arg=--large-room=4"}, 4, []string{"--large-room=4"}, false},
		{[]string{"--spawn", "--server-arg", "-large-room", "--server-arg", "5"}, 5, []string{"-large-room", "5"}, false},
		{[]string{"--spawn", "--server-arg=--large-room=4", "--large-room", "4"}, 4, []string{"--large-room=4"}, false},
		{[]string{"--spawn", "--server-arg=--large-room=4", "--large-room", "6"}, 0, nil, true},
		{[]string{"--spawn", "--server-arg=--large-room=x"}, 0, nil, true},
		{[]string{"--spawn", "--server-arg=--large-room"}, 0, nil, true},
		{[]string{"--spawn", "--large-room", "0"}, 0, nil, true},
		// Against a running server the flag only describes it.
		{[]string{"--data-dir", "d", "--large-room", "7"}, 7, nil, false},
	} {
		cfg, err := parseConfig(c.args, &discard{})
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v", c.args, err)
			continue
		}
		if !c.bad && (cfg.LargeRoom != c.want || !slices.Equal(cfg.ServerArgs, c.srv)) {
			t.Errorf("%q: large room %d, server args %q; want %d, %q", c.args, cfg.LargeRoom, cfg.ServerArgs, c.want, c.srv)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Who speaks: the first of each room, each a little quieter, the rest
// silent; s2 defaults to the supervisor and the first county.
func TestSpeakers(t *testing.T) {
	levels := func(args ...string) []int {
		cfg, err := parseConfig(append([]string{"--spawn"}, args...), &discard{})
		if err != nil {
			t.Fatal(err)
		}
		r := &runner{cfg: cfg, runID: "x"}
		var specs []agentSpec
		if cfg.Scenario == "s2" {
			specs = r.s2Room()
		} else {
			specs = r.s1Room(0)
		}
		out := make([]int, len(specs))
		for i, s := range specs {
			out[i] = s.Level
		}
		return out
	}
	const silent = client.LevelSilence
	for _, c := range []struct {
		args []string
		want []int
	}{
		{[]string{"--scenario", "s2", "--counties", "3"}, []int{25, 27, silent, silent}},
		{[]string{"--scenario", "s2", "--counties", "3", "--speakers", "0"}, []int{silent, silent, silent, silent}},
		{[]string{"--scenario", "s1", "--size", "3"}, []int{25, 27, 29, 31}},
		{[]string{"--scenario", "s1", "--size", "2", "--speakers", "9"}, []int{25, 27, 29}},
	} {
		if got := levels(c.args...); !slices.Equal(got, c.want) {
			t.Errorf("%q: levels %v, want %v", c.args, got, c.want)
		}
	}
	// Speech stays louder than the server's -50 dBov however many speak.
	if l := speechLevel(100); l >= 50 || l < client.LevelSpeech {
		t.Errorf("speechLevel(100) = %d", l)
	}
	if _, err := parseConfig([]string{"--spawn", "--speakers", "-2"}, &discard{}); err == nil {
		t.Error("--speakers -2 accepted")
	}
}
