package sfu

import (
	"slices"
	"testing"
	"time"
)

func TestLevelLoudness(t *testing.T) {
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
