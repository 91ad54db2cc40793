package mux

import (
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/rtp/codecs/vp9"
)

// assembler turns one track's packets, in sequence order, into frames
// without touching the codec payload: RTP payload descriptors are removed
// and, for H.264, NAL units are rewritten from RTP aggregation/fragmentation
// to the 4-byte length-prefixed form Matroska stores.
type assembler struct {
	codec Codec
	pool  *BufferPool

	buf     *buffer // frame being assembled; nil after take
	lastLen int     // length of the last complete frame: what the next one likely needs
	ts      uint32
	arrival time.Time
	active  bool // a frame's first packet was seen
	waitKey bool // frames are dropped until a keyframe (after loss, at start)

	// Parsers reused across packets so that parsing allocates nothing.
	vp8 codecs.VP8Packet
	vp9 codecs.VP9Packet
	h   h264State

	// Properties of the last keyframe, for the segment header.
	width, height int

	stats assemblerStats
}

type assemblerStats struct {
	Frames        uint64 // complete frames handed out
	FramesDropped uint64 // frames discarded: incomplete, or waiting for a keyframe
	Malformed     uint64 // payloads the depacketizer rejected
	LayersSkipped uint64 // VP9 spatial-layer packets not recorded (SVC)
}

func newAssembler(c Codec, pool *BufferPool) *assembler {
	a := &assembler{codec: c, pool: pool, waitKey: c.Kind() == KindVideo}
	a.h.fuStart = -1
	return a
}

// frame is the frame in a.buf.
func (a *assembler) frame() []byte {
	if a.buf == nil {
		return nil
	}
	return a.buf.b
}

// take hands over the buffer of the complete frame: the caller owns it and
// gives it back to the pool when done.
func (a *assembler) take() *buffer {
	b := a.buf
	a.buf = nil
	return b
}

// startFrame empties a.buf for a new frame, borrowing a buffer the size of
// the last frame if the last one was taken.
func (a *assembler) startFrame(n int) {
	if a.buf == nil {
		a.buf = a.pool.get(max(n, a.lastLen))
	}
	a.buf.b = a.buf.b[:0]
}

// finishFrame records a complete frame's length.
func (a *assembler) finishFrame() { a.lastLen = len(a.buf.b) }

// gap tells the assembler packets are missing before the next one.
func (a *assembler) gap() {
	if a.codec.Kind() == KindAudio {
		return
	}
	if a.active {
		a.active = false
		a.stats.FramesDropped++
	}
	a.waitKey = true
}

// push adds the payload of the next packet. It returns true when a.buf
// holds a complete frame (valid until the next push, or take); key reports
// a keyframe.
func (a *assembler) push(payload []byte, ts uint32, marker bool, arrival time.Time) (done, key bool) {
	if a.codec == CodecOpus {
		if len(payload) == 0 {
			return false, false
		}
		a.startFrame(len(payload))
		a.buf.b = append(a.buf.b, payload...)
		a.ts, a.arrival = ts, arrival
		a.finishFrame()
		a.stats.Frames++
		return true, true
	}
	data, start, end, ok := a.parse(payload, marker)
	if !ok {
		if a.active {
			a.active = false
			a.stats.FramesDropped++
		}
		a.waitKey = true
		return false, false
	}
	if a.active && ts != a.ts {
		// The previous frame never saw its end: the sender broke the
		// marker rule. It cannot be trusted to be complete.
		a.active = false
		a.stats.FramesDropped++
		a.waitKey = true
	}
	if !a.active {
		if !start {
			return false, false
		}
		a.active = true
		a.ts, a.arrival = ts, arrival
		a.startFrame(len(data))
		a.h.beginFrame()
	}
	if !a.appendData(data) {
		a.active = false
		a.stats.Malformed++
		a.stats.FramesDropped++
		a.waitKey = true
		return false, false
	}
	if !end {
		return false, false
	}
	a.active = false
	key = a.isKeyframe()
	if a.waitKey && !key {
		a.stats.FramesDropped++
		return false, false
	}
	if key {
		a.waitKey = false
		a.readDimensions()
	}
	a.finishFrame()
	a.stats.Frames++
	return true, key
}

// parse strips the payload descriptor. start and end say whether the packet
// begins or ends a frame.
func (a *assembler) parse(payload []byte, marker bool) (data []byte, start, end, ok bool) {
	switch a.codec {
	case CodecVP8:
		d, err := a.vp8.Unmarshal(payload)
		if err != nil {
			a.stats.Malformed++
			return nil, false, false, false
		}
		return d, a.vp8.S == 1 && a.vp8.PID == 0, marker, true
	case CodecVP9:
		d, err := a.vp9.Unmarshal(payload)
		if err != nil {
			a.stats.Malformed++
			return nil, false, false, false
		}
		if a.vp9.L && a.vp9.SID > 0 {
			// Spatial layers would have to be joined into a superframe;
			// only the base layer is recorded. Skipping keeps the frame
			// intact because it ends on its own E bit.
			a.stats.LayersSkipped++
			return nil, false, false, true
		}
		return d, a.vp9.B, a.vp9.E, true
	case CodecH264:
		if len(payload) == 0 {
			a.stats.Malformed++
			return nil, false, false, false
		}
		// A frame is all packets with one timestamp: the first packet of a
		// new timestamp starts it, the marker ends it.
		return payload, true, marker, true
	}
	return nil, false, false, false
}

func (a *assembler) appendData(data []byte) bool {
	if data == nil && a.codec == CodecVP9 {
		return true // skipped spatial layer
	}
	if a.codec == CodecH264 {
		// Length prefixes make the NAL units longer than the payload: at
		// most by 2/3 (STAP-A of one-byte NAL units), plus a FU-A header.
		a.pool.reserve(a.buf, len(data)+len(data)*2/3+8)
		var ok bool
		a.buf.b, ok = a.h.depacketize(a.buf.b, data)
		return ok
	}
	a.pool.reserve(a.buf, len(data))
	a.buf.b = append(a.buf.b, data...)
	return true
}

func (a *assembler) isKeyframe() bool {
	switch a.codec {
	case CodecVP8:
		// VP8 frame tag: bit 0 of the first byte is 0 for a key frame (RFC 6386 9.1).
		b := a.frame()
		return len(b) >= 10 && b[0]&0x01 == 0
	case CodecVP9:
		var h vp9.Header
		return h.Unmarshal(a.frame()) == nil && !h.NonKeyFrame
	case CodecH264:
		return a.h.idr && a.h.sps != nil && a.h.pps != nil
	}
	return false
}

func (a *assembler) readDimensions() {
	switch a.codec {
	case CodecVP8:
		// Key frame start code 9d 01 2a, then 14-bit width and height.
		b := a.frame()
		if b[3] == 0x9d && b[4] == 0x01 && b[5] == 0x2a {
			a.width = int(uint16(b[6])|uint16(b[7])<<8) & 0x3fff
			a.height = int(uint16(b[8])|uint16(b[9])<<8) & 0x3fff
		}
	case CodecVP9:
		var h vp9.Header
		if h.Unmarshal(a.frame()) == nil {
			a.width, a.height = int(h.Width()), int(h.Height())
		}
	case CodecH264:
		if w, h, err := spsDimensions(a.h.sps); err == nil {
			a.width, a.height = w, h
		}
	}
}

// codecPrivate is the Matroska CodecPrivate for the current stream state.
func (a *assembler) codecPrivate() []byte {
	switch a.codec {
	case CodecOpus:
		return opusHead()
	case CodecH264:
		return avcConfig(a.h.sps, a.h.pps)
	}
	return nil
}

// ready reports whether the track can be put in a segment header.
func (a *assembler) ready() bool {
	if a.codec.Kind() == KindAudio {
		return true
	}
	return a.width > 0 && a.height > 0
}

// opusHead is the OpusHead structure Matroska's A_OPUS expects as
// CodecPrivate (RFC 7845 5.1): WebRTC Opus is declared stereo at 48 kHz;
// the decoder follows each packet's own channel flag.
func opusHead() []byte {
	return []byte{
		'O', 'p', 'u', 's', 'H', 'e', 'a', 'd',
		1,    // version
		2,    // channels
		0, 0, // pre-skip: RTP carries none
		0x80, 0xbb, 0, 0, // 48000 Hz, little endian
		0, 0, // output gain
		0, // channel mapping family
	}
}
