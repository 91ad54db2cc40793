package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// The send chain gets a map to write into (as GCC does) without a new map
// per packet, and nothing written stays in it.
func TestSendAttributesRecycled(t *testing.T) {
	ic, _ := attrsFactory{}.NewInterceptor("")
	var seen interceptor.Attributes
	inner := interceptor.RTPWriterFunc(func(_ *rtp.Header, p []byte, a interceptor.Attributes) (int, error) {
		if a == nil {
			t.Fatal("the chain got nil attributes")
		}
		if len(a) != 0 {
			t.Fatalf("attributes left over from an earlier packet: %v", a)
		}
		a.Set("twcc", uint8(5)) // what GCC does
		seen = a
		return len(p), nil
	})
	w := ic.BindLocalStream(&interceptor.StreamInfo{}, inner)
	h := &rtp.Header{}
	payload := make([]byte, 100)
	for range 10 {
		if n, err := w.Write(h, payload, nil); err != nil || n != 100 {
			t.Fatal(n, err)
		}
	}
	if len(seen) != 0 {
		t.Fatal("the map was not cleared after the write")
	}
	allocs := testing.AllocsPerRun(1000, func() { _, _ = w.Write(h, payload, nil) })
	if allocs > 0 {
		t.Fatalf("%.1f allocations per write", allocs)
	}
	// Attributes a caller does pass go through untouched.
	own := interceptor.Attributes{}
	_, _ = w.Write(h, payload, own)
	if own.Get("twcc") != uint8(5) {
		t.Fatal("caller's attributes were replaced")
	}
}

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
