package sfu

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestRTPExtension(t *testing.T) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1}, Payload: []byte{1, 2, 3}}
	if err := p.SetExtension(1, []byte{0xAA, 0xBB}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetExtension(3, []byte{0x85}); err != nil {
		t.Fatal(err)
	}
	one, _ := p.Marshal()
	if got := rtpExtension(one, 3); len(got) != 1 || got[0] != 0x85 {
		t.Fatalf("one-byte form: %x", got)
	}
	if got := rtpExtension(one, 1); len(got) != 2 || got[1] != 0xBB {
		t.Fatalf("one-byte form, first: %x", got)
	}
	if rtpExtension(one, 2) != nil {
		t.Fatal("absent id found")
	}
	two := rtp.Packet{Header: rtp.Header{Version: 2, Extension: true, ExtensionProfile: 0x1000}, Payload: []byte{9}}
	if err := two.SetExtension(5, []byte{0x7f}); err != nil {
		t.Fatal(err)
	}
	raw, _ := two.Marshal()
	if got := rtpExtension(raw, 5); len(got) != 1 || got[0] != 0x7f {
		t.Fatalf("two-byte form: %x", got)
	}
	plain, _ := (&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: []byte{1}}).Marshal()
	if rtpExtension(plain, 1) != nil {
		t.Fatal("extension found in a packet without one")
	}
	if rtpExtension(one[:14], 3) != nil {
		t.Fatal("truncated packet parsed")
	}
	if levelLoudness(0x80|20) != 107 || levelLoudness(127) != 0 {
		t.Fatal("levelLoudness")
	}
}

func TestSpeakerSelector(t *testing.T) {
	s := newSpeakerSelector(2, speakingLoudness, 2*time.Second)
	t0 := time.Unix(0, 0)
	lv := func(track, p string, l int32) trackLevel {
		return trackLevel{track: track, participant: p, loudness: l}
	}
	sp, tracks, changed := s.update([]trackLevel{lv("a", "A", 100), lv("b", "B", 90), lv("c", "C", 95), lv("d", "D", 10)}, t0)
	if !changed || !slices.Equal(sp, []string{"A", "C"}) || !tracks["a"] || !tracks["c"] || tracks["b"] {
		t.Fatalf("loudest two: %v %v %v", sp, tracks, changed)
	}
	if _, _, changed := s.update([]trackLevel{lv("a", "A", 99), lv("b", "B", 80), lv("c", "C", 96), lv("d", "D", 10)}, t0.Add(200*time.Millisecond)); changed {
		t.Fatal("same speakers reported as a change")
	}
	// A and C fall silent: they stay selected for the hold time, then B
	// (still speaking) takes over.
	quiet := []trackLevel{lv("a", "A", 5), lv("b", "B", 90), lv("c", "C", 5), lv("d", "D", 10)}
	sp, _, _ = s.update(quiet, t0.Add(time.Second))
	if !slices.Contains(sp, "B") || len(sp) != 2 {
		t.Fatalf("during the hold: %v", sp)
	}
	sp, _, changed = s.update(quiet, t0.Add(5*time.Second))
	if !changed || !slices.Equal(sp, []string{"B"}) {
		t.Fatalf("after the hold: %v changed=%v", sp, changed)
	}
	// Nobody speaks: nobody is selected; tracks that left are forgotten.
	sp, _, _ = s.update([]trackLevel{lv("d", "D", 10)}, t0.Add(10*time.Second))
	if len(sp) != 0 || len(s.lastLoud) != 0 {
		t.Fatalf("silence: %v, remembered %v", sp, s.lastLoud)
	}
}
