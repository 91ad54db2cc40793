package mux

import "bytes"

// H.264 NAL unit types used here (RFC 6184, ITU-T H.264 table 7-1).
const (
	naluIDR   = 5
	naluSPS   = 7
	naluPPS   = 8
	naluSTAPA = 24
	naluFUA   = 28
)

// h264State rewrites RTP H.264 (packetization mode 0 or 1: single NAL
// units, STAP-A, FU-A) into length-prefixed NAL units and remembers the
// parameter sets the segment header needs.
type h264State struct {
	fuStart  int  // offset in the frame of the FU-A NAL being joined; -1 if none
	idr      bool // the frame holds an IDR slice
	sps, pps []byte
}

func (h *h264State) beginFrame() {
	h.fuStart = -1
	h.idr = false
}

// depacketize appends the NAL units of one RTP payload to frame.
func (h *h264State) depacketize(frame, payload []byte) ([]byte, bool) {
	switch t := payload[0] & 0x1f; {
	case t >= 1 && t <= 23:
		return h.appendNAL(frame, payload), true
	case t == naluSTAPA:
		p := payload[1:]
		for len(p) > 0 {
			if len(p) < 2 {
				return frame, false
			}
			n := int(p[0])<<8 | int(p[1])
			p = p[2:]
			if n == 0 || n > len(p) {
				return frame, false
			}
			frame = h.appendNAL(frame, p[:n])
			p = p[n:]
		}
		return frame, true
	case t == naluFUA:
		if len(payload) < 2 {
			return frame, false
		}
		ind, hdr := payload[0], payload[1]
		if hdr&0x80 != 0 {
			if h.fuStart >= 0 {
				return frame, false
			}
			h.fuStart = len(frame)
			frame = append(frame, 0, 0, 0, 0, ind&0xe0|hdr&0x1f)
		} else if h.fuStart < 0 {
			return frame, false
		}
		frame = append(frame, payload[2:]...)
		if hdr&0x40 != 0 {
			n := len(frame) - h.fuStart - 4
			frame[h.fuStart] = byte(n >> 24)
			frame[h.fuStart+1] = byte(n >> 16)
			frame[h.fuStart+2] = byte(n >> 8)
			frame[h.fuStart+3] = byte(n)
			h.noteNAL(frame[h.fuStart+4:])
			h.fuStart = -1
		}
		return frame, true
	}
	// STAP-B, MTAP and FU-B belong to interleaved mode, which WebRTC
	// does not negotiate.
	return frame, false
}

func (h *h264State) appendNAL(frame, nal []byte) []byte {
	n := len(nal)
	frame = append(frame, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	frame = append(frame, nal...)
	h.noteNAL(nal)
	return frame
}

func (h *h264State) noteNAL(nal []byte) {
	switch nal[0] & 0x1f {
	case naluIDR:
		h.idr = true
	case naluSPS:
		if !bytes.Equal(h.sps, nal) {
			h.sps = append(h.sps[:0], nal...)
		}
	case naluPPS:
		if !bytes.Equal(h.pps, nal) {
			h.pps = append(h.pps[:0], nal...)
		}
	}
}

// avcConfig builds the AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1) that V_MPEG4/ISO/AVC carries as CodecPrivate, with 4-byte NAL
// lengths.
func avcConfig(sps, pps []byte) []byte {
	if len(sps) < 4 || len(pps) == 0 {
		return nil
	}
	b := make([]byte, 0, 11+len(sps)+len(pps))
	b = append(b, 1, sps[1], sps[2], sps[3], 0xff, 0xe1,
		byte(len(sps)>>8), byte(len(sps)))
	b = append(b, sps...)
	b = append(b, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(b, pps...)
}

// spsDimensions reads the coded picture size, after cropping, from a
// sequence parameter set (H.264 7.3.2.1.1).
func spsDimensions(sps []byte) (width, height int, err error) {
	if len(sps) < 4 {
		return 0, 0, errBadSPS
	}
	r := bitReader{b: unescapeRBSP(sps[1:])}
	profile := r.bits(8)
	r.bits(16) // constraint flags, level
	r.ue()     // seq_parameter_set_id
	chroma := uint32(1)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.bits(1) // separate_colour_plane_flag
		}
		r.ue()    // bit_depth_luma_minus8
		r.ue()    // bit_depth_chroma_minus8
		r.bits(1) // qpprime_y_zero_transform_bypass_flag
		if r.bits(1) == 1 {
			n := 8
			if chroma == 3 {
				n = 12
			}
			for i := 0; i < n; i++ {
				if r.bits(1) == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					r.skipScalingList(size)
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.bits(1)
		r.se()
		r.se()
		n := r.ue()
		if n > 255 {
			return 0, 0, errBadSPS
		}
		for i := uint32(0); i < n; i++ {
			r.se()
		}
	}
	r.ue()    // max_num_ref_frames
	r.bits(1) // gaps_in_frame_num_value_allowed_flag
	wMbs := int(r.ue()) + 1
	hMapUnits := int(r.ue()) + 1
	frameMbsOnly := int(r.bits(1))
	if frameMbsOnly == 0 {
		r.bits(1) // mb_adaptive_frame_field_flag
	}
	r.bits(1) // direct_8x8_inference_flag
	width = wMbs * 16
	height = (2 - frameMbsOnly) * hMapUnits * 16
	if r.bits(1) == 1 { // frame_cropping_flag
		left, right, top, bottom := int(r.ue()), int(r.ue()), int(r.ue()), int(r.ue())
		cropX, cropY := 1, 2-frameMbsOnly
		if chroma == 1 || chroma == 2 {
			cropX = 2
		}
		if chroma == 1 {
			cropY *= 2
		}
		width -= (left + right) * cropX
		height -= (top + bottom) * cropY
	}
	if r.err || width <= 0 || height <= 0 {
		return 0, 0, errBadSPS
	}
	return width, height, nil
}

// unescapeRBSP removes emulation prevention bytes (00 00 03).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads big-endian bits and Exp-Golomb codes; reading past the
// end sets err and yields zeros.
type bitReader struct {
	b   []byte
	pos int
	err bool
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos >= len(r.b)*8 {
			r.err = true
			return 0
		}
		bit := r.b[r.pos/8] >> (7 - r.pos%8) & 1
		v = v<<1 | uint32(bit)
		r.pos++
	}
	return v
}

func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bits(1) == 0 {
		if r.err || zeros > 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.bits(zeros)
}

func (r *bitReader) se() int32 {
	v := r.ue()
	if v&1 == 1 {
		return int32(v/2) + 1
	}
	return -int32(v / 2)
}

func (r *bitReader) skipScalingList(size int) {
	last, next := int32(8), int32(8)
	for j := 0; j < size; j++ {
		if next != 0 {
			next = (last + r.se() + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}
