package sfu

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// recvAttrsFactory builds the innermost interceptor of the receive chain.
// Pion starts each read with nil attributes, so each interceptor that looks
// at the RTP header (NACK generator, receiver reports, TWCC feedback)
// unmarshals its own copy: three header allocations per received packet.
// This one unmarshals once, into a header and map kept per stream, which
// the others then find in the attributes.
type recvAttrsFactory struct {
	// headerKey is the attributes key under which interceptors cache the
	// RTP header. Pion does not export it; it is found by asking Pion to
	// cache a header once (see findHeaderKey). nil: only the map is reused.
	headerKey any
}

func newRecvAttrsFactory() recvAttrsFactory { return recvAttrsFactory{headerKey: findHeaderKey()} }

func findHeaderKey() any {
	probe := rtp.Header{Version: 2}
	raw, err := probe.Marshal()
	if err != nil {
		return nil
	}
	m := interceptor.Attributes{}
	if _, err := m.GetRTPHeader(raw); err != nil {
		return nil
	}
	for k, v := range m {
		if _, ok := v.(*rtp.Header); ok {
			return k
		}
	}
	return nil
}

func (f recvAttrsFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &recvAttrsInterceptor{headerKey: f.headerKey}, nil
}

type recvAttrsInterceptor struct {
	interceptor.NoOp
	headerKey any
}

// BindRemoteStream relies on a stream being read by one goroutine at a time
// (its track's reader), each packet handled before the next read, and on
// the interceptors above keeping nothing of the header after their read
// (true of Pion's NACK, report and TWCC interceptors: the TWCC sender keeps
// the pointer in a field it never reads).
func (r *recvAttrsInterceptor) BindRemoteStream(_ *interceptor.StreamInfo, rd interceptor.RTPReader) interceptor.RTPReader {
	attrs := make(interceptor.Attributes, 2)
	var h rtp.Header
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := rd.Read(b, a)
		if err != nil || a != nil {
			return n, a, err
		}
		clear(attrs)
		if r.headerKey != nil {
			if _, err := h.Unmarshal(b[:n]); err == nil {
				attrs[r.headerKey] = &h
			}
		}
		return n, attrs, nil
	})
}
