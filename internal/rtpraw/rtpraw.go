// Package rtpraw reads RTP header fields from a packet's bytes without
// parsing it into a struct, so the packet paths (the SFU's ingest, the
// load tool's socket) allocate nothing. Header extensions are in the clear
// in SRTP without cryptex, so this works on the wire bytes too.
package rtpraw

import "encoding/binary"

// Extension returns the payload of header extension id in a raw RTP
// packet (one-byte or two-byte form, RFC 8285), without allocating.
func Extension(pkt []byte, id uint8) []byte {
	if len(pkt) < 12 || pkt[0]&0x10 == 0 || id == 0 {
		return nil
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if len(pkt) < off+4 {
		return nil
	}
	profile := binary.BigEndian.Uint16(pkt[off:])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	if end > len(pkt) {
		return nil
	}
	i := off + 4
	switch {
	case profile == 0xBEDE: // one-byte headers
		for i < end {
			b := pkt[i]
			if b == 0 { // padding
				i++
				continue
			}
			eid, n := b>>4, int(b&0x0f)+1
			if eid == 15 {
				return nil
			}
			if i+1+n > end {
				return nil
			}
			if eid == id {
				return pkt[i+1 : i+1+n]
			}
			i += 1 + n
		}
	case profile&0xfff0 == 0x1000: // two-byte headers
		for i+1 < end {
			eid := pkt[i]
			if eid == 0 {
				i++
				continue
			}
			n := int(pkt[i+1])
			if i+2+n > end {
				return nil
			}
			if eid == id {
				return pkt[i+2 : i+2+n]
			}
			i += 2 + n
		}
	}
	return nil
}
