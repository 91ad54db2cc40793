package peertest

import (
	"testing"

	"github.com/pion/rtp"
)

// ExtPacket marshals an RTP packet of SSRC 0xabcd with the given one-byte
// (or, with twoByte, two-byte) header extensions, for the tests of code
// that reads extensions from the wire bytes.
func ExtPacket(t testing.TB, seq uint16, twoByte bool, exts map[uint8][]byte) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: 0xabcd}, Payload: []byte{1, 2, 3}}
	if len(exts) > 0 {
		p.Extension = true
		p.ExtensionProfile = 0xbede
		if twoByte {
			p.ExtensionProfile = 0x1000
		}
		for id, v := range exts {
			if err := p.SetExtension(id, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
