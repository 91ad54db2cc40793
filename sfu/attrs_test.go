package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Interceptors above the receive side find the header already parsed (the
// same header, no allocation), with the right fields.
func TestReceiveHeaderParsedOnce(t *testing.T) {
	f := newRecvAttrsFactory()
	if f.headerKey == nil {
		t.Fatal("Pion's header attribute key was not found")
	}
	ic, _ := f.NewInterceptor("")
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 4711, Timestamp: 99, SSRC: 7}, Payload: []byte{1, 2, 3}}
	raw, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	inner := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, raw), a, nil // Pion's SRTP reader hands back what it got: nil
	})
	r := ic.BindRemoteStream(&interceptor.StreamInfo{}, inner)
	buf := make([]byte, 1500)
	var first *rtp.Header
	read := func() {
		n, a, err := r.Read(buf, nil)
		if err != nil || a == nil {
			t.Fatal(n, a, err)
		}
		h, err := a.GetRTPHeader(buf[:n]) // what NACK, report and TWCC call
		if err != nil {
			t.Fatal(err)
		}
		if h.SequenceNumber != 4711 || h.SSRC != 7 || h.Timestamp != 99 {
			t.Fatalf("header %+v", h)
		}
		if first == nil {
			first = h
		} else if h != first {
			t.Fatal("header not reused")
		}
	}
	read()
	read()
	if allocs := testing.AllocsPerRun(1000, read); allocs > 0 {
		t.Fatalf("%.1f allocations per read", allocs)
	}
}
