package mux

import (
	"testing"
	"time"
)

// toc builds a TOC byte from its fields (RFC 6716 3.1).
func toc(config, stereo, code byte) byte { return config<<3 | stereo<<2 | code }

func TestOpusDuration(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		pkt  []byte
		want time.Duration
	}{
		// One frame (code 0) of each size, across the three modes.
		{"SILK NB 10ms", []byte{toc(0, 0, 0), 1, 2}, 10 * ms},
		{"SILK NB 20ms", []byte{toc(1, 0, 0), 1, 2}, 20 * ms},
		{"SILK MB 40ms", []byte{toc(6, 0, 0), 1, 2}, 40 * ms},
		{"SILK WB 60ms", []byte{toc(11, 1, 0), 1, 2}, 60 * ms},
		{"hybrid SWB 10ms", []byte{toc(12, 0, 0), 1}, 10 * ms},
		{"hybrid SWB 20ms", []byte{toc(13, 0, 0), 1}, 20 * ms},
		{"hybrid FB 10ms", []byte{toc(14, 1, 0), 1}, 10 * ms},
		{"hybrid FB 20ms", []byte{toc(15, 0, 0), 1}, 20 * ms},
		{"CELT NB 2.5ms", []byte{toc(16, 0, 0), 1}, 2500 * time.Microsecond},
		{"CELT WB 5ms", []byte{toc(21, 0, 0), 1}, 5 * ms},
		{"CELT SWB 10ms", []byte{toc(26, 0, 0), 1}, 10 * ms},
		{"CELT FB 20ms", []byte{toc(31, 1, 0), 1}, 20 * ms},
		{"TOC only (DTX)", []byte{toc(15, 0, 0)}, 20 * ms},
		// Two frames: code 1 (equal sizes) and code 2 (first length given).
		{"code 1 2x20ms", []byte{toc(31, 0, 1), 1, 2, 3, 4}, 40 * ms},
		{"code 1 2x60ms", []byte{toc(3, 0, 1), 1, 2}, 120 * ms},
		{"code 1 two empty frames", []byte{toc(1, 0, 1)}, 40 * ms},
		{"code 2 2x10ms", []byte{toc(0, 0, 2), 1, 9, 9}, 20 * ms},
		// Code 3: the count is in the low 6 bits of the second byte (the
		// VBR and padding flags above it do not count).
		{"code 3 3x20ms", []byte{toc(13, 0, 3), 3, 1, 2, 3}, 60 * ms},
		{"code 3 VBR+padding 6x20ms", []byte{toc(31, 0, 3), 0xc0 | 6, 0, 1, 2}, 120 * ms},
		{"code 3 48x2.5ms", []byte{toc(16, 0, 3), 48}, 120 * ms},

		// Malformed or empty: 20 ms.
		{"empty", nil, 20 * ms},
		{"code 1 odd length", []byte{toc(0, 0, 1), 1}, 20 * ms},
		{"code 2 no length", []byte{toc(0, 0, 2)}, 20 * ms},
		{"code 3 no count", []byte{toc(0, 0, 3)}, 20 * ms},
		{"code 3 zero frames", []byte{toc(0, 0, 3), 0}, 20 * ms},
		{"code 3 over 120ms", []byte{toc(3, 0, 3), 3, 1, 2, 3}, 20 * ms},
		{"code 3 49x2.5ms", []byte{toc(16, 0, 3), 49}, 20 * ms},
	} {
		if got := opusDuration(tc.pkt); got != tc.want {
			t.Errorf("%s: opusDuration(% x) = %v, want %v", tc.name, tc.pkt, got, tc.want)
		}
	}
}

// opusModeBW is the mode and bandwidth of a TOC config (RFC 6716 table 2),
// written out instead of computed so the filler test does not share the
// code under test.
func opusModeBW(config byte) string {
	switch {
	case config <= 3:
		return "SILK NB"
	case config <= 7:
		return "SILK MB"
	case config <= 11:
		return "SILK WB"
	case config <= 13:
		return "hybrid SWB"
	case config <= 15:
		return "hybrid FB"
	case config <= 19:
		return "CELT NB"
	case config <= 23:
		return "CELT WB"
	case config <= 27:
		return "CELT SWB"
	}
	return "CELT FB"
}

func TestOpusFillerTOC(t *testing.T) {
	for _, tc := range []struct{ in, want byte }{
		{toc(0, 0, 0), toc(1, 0, 0)},
		{toc(3, 1, 3), toc(1, 1, 0)},
		{toc(9, 0, 1), toc(9, 0, 0)},
		{toc(12, 1, 2), toc(13, 1, 0)},
		{toc(14, 0, 0), toc(15, 0, 0)},
		{toc(16, 0, 3), toc(19, 0, 0)},
		{toc(31, 1, 1), toc(31, 1, 0)},
	} {
		if got := opusFillerTOC(tc.in); got != tc.want {
			t.Errorf("opusFillerTOC(%#02x) = %#02x, want %#02x", tc.in, got, tc.want)
		}
	}
	// Every TOC: the filler is one 20 ms frame (code 0) of the same mode,
	// bandwidth and channel count.
	for i := 0; i < 256; i++ {
		in := byte(i)
		f := opusFillerTOC(in)
		if d := opusDuration([]byte{f}); d != 20*time.Millisecond || f&0x03 != 0 {
			t.Errorf("filler %#02x of %#02x: %v, code %d; want one 20 ms frame", f, in, d, f&0x03)
		}
		if got, want := opusModeBW(f>>3), opusModeBW(in>>3); got != want {
			t.Errorf("filler %#02x of %#02x is %s, want %s", f, in, got, want)
		}
		if f&0x04 != in&0x04 {
			t.Errorf("filler %#02x of %#02x changed the stereo bit", f, in)
		}
	}
}
