package sfu

import (
	"slices"
	"time"
)

// Loudest-speaker selection. Publishers stamp every audio packet with its
// level (RFC 6464: 0 is the loudest, 127 silence, in -dBov). The SFU keeps a
// smoothed loudness per audio track, and a few times a second picks the
// loudest few: clients are told who speaks (the page highlights them), and
// in large rooms only their audio is forwarded, so a province-wide session
// does not send 117 microphones to 117 listeners.

// levelLoudness turns an RFC 6464 level into loudness: 0 (silence) to 127.
func levelLoudness(level uint8) int32 { return 127 - int32(level&0x7f) }

// trackLevel is one audio track's smoothed loudness at a selection.
type trackLevel struct {
	track, participant string
	loudness           int32
}

// speakerSelector picks the loudest few. It is pure: time comes in.
type speakerSelector struct {
	max       int           // how many speakers at most
	threshold int32         // loudness that counts as speaking
	hold      time.Duration // a speaker stays selected this long after going quiet
	lastLoud  map[string]time.Time
	selected  []string // participant ids, loudest first
}

func newSpeakerSelector(maxSpeakers int, threshold int32, hold time.Duration) *speakerSelector {
	return &speakerSelector{max: maxSpeakers, threshold: threshold, hold: hold, lastLoud: map[string]time.Time{}}
}

// update returns the selected speakers' participant ids (loudest first)
// and the selected tracks, and whether the participant set changed.
func (s *speakerSelector) update(levels []trackLevel, now time.Time) (speakers []string, tracks map[string]bool, changed bool) {
	present := make(map[string]bool, len(levels))
	var cands []trackLevel
	for _, l := range levels {
		present[l.track] = true
		if l.loudness >= s.threshold {
			s.lastLoud[l.track] = now
		}
		if at, ok := s.lastLoud[l.track]; ok && now.Sub(at) <= s.hold {
			cands = append(cands, l)
		}
	}
	for id := range s.lastLoud {
		if !present[id] {
			delete(s.lastLoud, id) // the track is gone
		}
	}
	// Loudest first; ties keep the longer speaker (most recent loud last).
	slices.SortStableFunc(cands, func(a, b trackLevel) int { return int(b.loudness - a.loudness) })
	if len(cands) > s.max {
		cands = cands[:s.max]
	}
	tracks = make(map[string]bool, len(cands))
	for _, c := range cands {
		tracks[c.track] = true
		if !slices.Contains(speakers, c.participant) {
			speakers = append(speakers, c.participant)
		}
	}
	changed = !sameSet(speakers, s.selected)
	s.selected = speakers
	return speakers, tracks, changed
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
