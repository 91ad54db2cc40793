package mux

import "time"

// What the recorder reads from an Opus packet: its TOC byte (RFC 6716
// 3.1), never the coded frames.

const (
	// opusDefaultDur is what a packet whose TOC cannot be trusted is taken
	// to last: the frame size WebRTC sends.
	opusDefaultDur = 20 * time.Millisecond
	// opusMaxDur is the longest packet RFC 6716 allows (3.2.5, R5).
	opusMaxDur = 120 * time.Millisecond
)

// opusFrameDur is the length of one frame of a TOC configuration (RFC 6716
// 3.1, table 2): SILK-only configs 0-11 are 10/20/40/60 ms, hybrid 12-15
// 10/20 ms, CELT-only 16-31 2.5/5/10/20 ms, each group repeated per
// bandwidth.
func opusFrameDur(config byte) time.Duration {
	switch {
	case config < 12:
		return [4]time.Duration{10 * time.Millisecond, 20 * time.Millisecond,
			40 * time.Millisecond, 60 * time.Millisecond}[config%4]
	case config < 16:
		return [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond}[config%2]
	}
	return [4]time.Duration{2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 20 * time.Millisecond}[config%4]
}

// opusDuration is how long an Opus packet plays: the frame size of its
// configuration times its frame count (code 0: one frame; 1 and 2: two;
// 3: the count in the second byte). Audio gets its length from here, not
// from the step between RTP timestamps: with DTX the step is 400 ms while
// a packet still lasts 20 ms. A packet that is empty or breaks one of the
// rules the count depends on (RFC 6716 3.4: R1, R3, R4, R5) is taken as
// opusDefaultDur; the frames themselves are the decoder's business.
func opusDuration(p []byte) time.Duration {
	if len(p) == 0 {
		return opusDefaultDur
	}
	frames := 1
	switch p[0] & 0x03 {
	case 1:
		if (len(p)-1)%2 != 0 { // R3: two frames of equal size
			return opusDefaultDur
		}
		frames = 2
	case 2:
		if len(p) < 2 { // R4: the first frame's length must be there
			return opusDefaultDur
		}
		frames = 2
	case 3:
		if len(p) < 2 { // no frame count byte
			return opusDefaultDur
		}
		frames = int(p[1] & 0x3f)
		if frames == 0 { // R5: at least one frame
			return opusDefaultDur
		}
	}
	d := time.Duration(frames) * opusFrameDur(p[0]>>3)
	if d > opusMaxDur { // R5: at most 120 ms
		return opusDefaultDur
	}
	return d
}

// fillerMs is the length of a concealment frame in a segment.
const fillerMs = 20

// opusFillerTOC is a whole Opus packet of one 20 ms frame with no data,
// in the mode and bandwidth of the packet whose TOC is toc: the TOC with
// the frame size set to 20 ms, the stereo bit kept and code 0. A decoder
// treats the empty frame as lost and conceals it, fading to silence; it is
// what libopus itself emits in DTX. Keeping mode and bandwidth spares the
// decoder a mode switch on each side of the hole.
func opusFillerTOC(toc byte) byte {
	config := toc >> 3
	switch {
	case config < 12:
		config = config&^0x03 | 1 // SILK: config%4 == 1 is 20 ms
	case config < 16:
		config |= 1 // hybrid: 13 and 15 are 20 ms
	default:
		config |= 3 // CELT: config%4 == 3 is 20 ms
	}
	return config<<3 | toc&0x04
}
