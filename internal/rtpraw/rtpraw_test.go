package rtpraw

import (
	"testing"

	"github.com/pion/rtp"
)

func TestExtension(t *testing.T) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1}, Payload: []byte{1, 2, 3}}
	if err := p.SetExtension(1, []byte{0xAA, 0xBB}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetExtension(3, []byte{0x85}); err != nil {
		t.Fatal(err)
	}
	one, _ := p.Marshal()
	if got := Extension(one, 3); len(got) != 1 || got[0] != 0x85 {
		t.Fatalf("one-byte form: %x", got)
	}
	if got := Extension(one, 1); len(got) != 2 || got[1] != 0xBB {
		t.Fatalf("one-byte form, first: %x", got)
	}
	if Extension(one, 2) != nil {
		t.Fatal("absent id found")
	}
	two := rtp.Packet{Header: rtp.Header{Version: 2, Extension: true, ExtensionProfile: 0x1000}, Payload: []byte{9}}
	if err := two.SetExtension(5, []byte{0x7f}); err != nil {
		t.Fatal(err)
	}
	raw, _ := two.Marshal()
	if got := Extension(raw, 5); len(got) != 1 || got[0] != 0x7f {
		t.Fatalf("two-byte form: %x", got)
	}
	plain, _ := (&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: []byte{1}}).Marshal()
	if Extension(plain, 1) != nil {
		t.Fatal("extension found in a packet without one")
	}
	if Extension(one[:14], 3) != nil {
		t.Fatal("truncated packet parsed")
	}
}
