package sfu

import "strings"

// videoCodec is a video codec the SFU can find keyframes in.
type videoCodec uint8

const (
	codecNone videoCodec = iota // audio, or a codec we cannot parse
	codecVP8
	codecVP9
	codecH264
)

// codecOf maps a MIME type such as "video/VP8" to its videoCodec.
func codecOf(mime string) videoCodec {
	switch {
	case strings.EqualFold(mime, "video/VP8"):
		return codecVP8
	case strings.EqualFold(mime, "video/VP9"):
		return codecVP9
	case strings.EqualFold(mime, "video/H264"):
		return codecH264
	}
	return codecNone
}

// isKeyframeStart reports whether an RTP payload starts a keyframe. It looks
// only at payload headers, never decodes, and allocates nothing.
func isKeyframeStart(c videoCodec, payload []byte) bool {
	switch c {
	case codecVP8:
		return vp8Keyframe(payload)
	case codecVP9:
		return vp9Keyframe(payload)
	case codecH264:
		return h264Keyframe(payload)
	}
	return false
}

// vp8Keyframe: RFC 7741. The payload descriptor's S bit and partition index
// 0 mark the start of a frame; the VP8 payload header's P bit is 0 for a key
// frame.
func vp8Keyframe(p []byte) bool {
	i, ok := vp8FrameStart(p)
	return ok && p[i]&0x01 == 0
}

// vp8FrameStart returns the offset of the VP8 payload header when p starts
// a frame.
func vp8FrameStart(p []byte) (int, bool) {
	if len(p) < 1 {
		return 0, false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return 0, false
	}
	i := 1
	if x {
		if len(p) < 2 {
			return 0, false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return 0, false
			}
			if p[i]&0x80 != 0 { // 15-bit picture id
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if len(p) <= i {
		return 0, false
	}
	return i, true
}

// vp8KeyframeSize reads the picture size of a VP8 key frame (RFC 6386
// 9.1: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and
// height with 2 scaling bits each, little-endian).
func vp8KeyframeSize(p []byte) (w, h int, ok bool) {
	i, ok := vp8FrameStart(p)
	if !ok || p[i]&0x01 != 0 || len(p) < i+10 {
		return 0, 0, false
	}
	f := p[i:]
	if f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	w = int(f[6]) | int(f[7]&0x3f)<<8
	h = int(f[8]) | int(f[9]&0x3f)<<8
	return w, h, w > 0 && h > 0
}

// vp9Keyframe: the VP9 payload descriptor (draft-ietf-payload-vp9). A frame
// that starts (B), is not inter-predicted (P=0), at spatial layer 0.
func vp9Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	h := p[0]
	i, pBit, l, f, b := 1, h&0x40 != 0, h&0x20 != 0, h&0x10 != 0, h&0x08 != 0
	if !b || pBit {
		return false
	}
	if h&0x80 != 0 { // I: picture id
		if len(p) <= i {
			return false
		}
		if p[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if l {
		if len(p) <= i {
			return false
		}
		sid := (p[i] >> 1) & 0x07
		if sid != 0 {
			return false
		}
		i++
		if !f {
			i++ // TL0PICIDX
		}
	}
	return true
}

// h264Keyframe: an IDR slice or an SPS, alone, in a STAP-A, or at the start of
// an FU-A (RFC 6184).
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24: // STAP-A: 2-byte size, then a NAL unit
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if nt := p[i] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: start bit and the original type
		if len(p) < 2 {
			return false
		}
		return p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}
