package client

import (
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
)

// vp8Files holds, per picture size, a real libvpx keyframe and inter frame
// of a flat grey picture (vp8frames/generate.sh). Synth pads them to the
// frame size it wants: a VP8 decoder ignores bytes after the last
// partition, so the stream stays decodable at any bitrate. Read only.
//
//go:embed vp8frames/*.ivf
var vp8Files embed.FS

// ErrBadFrames: the embedded VP8 frames are not what Synth expects.
var ErrBadFrames = errors.New("client: bad embedded VP8 frames")

// vp8Pair is one size's keyframe and inter frame.
type vp8Pair struct {
	w, h       int
	key, inter []byte
}

// pickVP8 returns the frames of the largest size not above w x h (the
// smallest size when none fits; 640x360 when w or h is 0).
func pickVP8(w, h int) (vp8Pair, error) {
	// The sizes in vp8frames/, smallest first.
	videoSizes := [...]struct{ w, h int }{{320, 180}, {640, 360}, {1280, 720}}
	i := 1
	if w > 0 && h > 0 {
		i = 0
		for j, s := range videoSizes {
			if s.w <= w && s.h <= h {
				i = j
			}
		}
	}
	s := videoSizes[i]
	b, err := vp8Files.ReadFile(fmt.Sprintf("vp8frames/%dx%d.ivf", s.w, s.h))
	if err != nil {
		return vp8Pair{}, fmt.Errorf("%w: %v", ErrBadFrames, err)
	}
	frames, err := ivfFrames(b)
	if err != nil || len(frames) < 2 {
		return vp8Pair{}, fmt.Errorf("%w: %dx%d: %d frames, %v", ErrBadFrames, s.w, s.h, len(frames), err)
	}
	// The frame tag's lowest bit is 0 for a keyframe (RFC 6386 9.1).
	if frames[0][0]&1 != 0 || frames[1][0]&1 != 1 {
		return vp8Pair{}, fmt.Errorf("%w: %dx%d: want a keyframe then an inter frame", ErrBadFrames, s.w, s.h)
	}
	return vp8Pair{w: s.w, h: s.h, key: frames[0], inter: frames[1]}, nil
}

// ivfFrames splits an IVF file: a 32-byte file header, then per frame a
// 12-byte header (little-endian size, timestamp) and the frame.
func ivfFrames(b []byte) ([][]byte, error) {
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		return nil, errors.New("not an IVF file")
	}
	hdrLen := int(binary.LittleEndian.Uint16(b[6:8]))
	if hdrLen < 32 || hdrLen > len(b) {
		return nil, errors.New("bad IVF header length")
	}
	var out [][]byte
	for off := hdrLen; off < len(b); {
		if off+12 > len(b) {
			return nil, errors.New("truncated IVF frame header")
		}
		n := int(binary.LittleEndian.Uint32(b[off : off+4]))
		off += 12
		if n <= 0 || off+n > len(b) {
			return nil, errors.New("truncated IVF frame")
		}
		out = append(out, b[off:off+n])
		off += n
	}
	return out, nil
}

// VP8KeyframeSize reads the picture size from an RTP VP8 payload (RFC
// 7741) that starts a keyframe: S set, partition 0, the frame tag's P bit
// clear, then the keyframe header's start code and 14-bit width and height
// (RFC 6386 9.1). ok is false for anything else. It allocates nothing.
func VP8KeyframeSize(p []byte) (width, height int, ok bool) {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 {
		return 0, 0, false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte and what it announces
		if len(p) < 2 {
			return 0, 0, false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // picture id, 7 or 15 bits
			if len(p) <= i {
				return 0, 0, false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // TID/KEYIDX
			i++
		}
	}
	f := p[min(i, len(p)):]
	if len(f) < 10 || f[0]&0x01 != 0 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	return int(binary.LittleEndian.Uint16(f[6:8]) & 0x3fff), int(binary.LittleEndian.Uint16(f[8:10]) & 0x3fff), true
}
