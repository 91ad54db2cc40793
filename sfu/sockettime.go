package sfu

import (
	"sync"
	"time"

	"github.com/ducha-dev/ducha/internal/arrival"
)

// socketTimes times media packets as they reach the server's socket (the
// kernel's timestamp where udpbatch reads one, else the mux's read), so
// the forwarding delay includes the wait for the reader and Pion's
// receive chain
// (ICE, DTLS/SRTP demux, decryption, interceptors, the track buffer) and
// not only our fan-out. A layer registers its ring under its SSRC; the
// socket's reader writes the arrival of each RTP datagram into the ring
// of its SSRC and ignores SSRCs nobody registered, so a sender cannot make
// the server keep anything. The ring is the layer's own arrival.Ring, and
// ingest leaves a slot the socket filled alone.
//
// Keyed by SSRC alone: two publishers that picked the same random SSRC
// (about 1 in 10^5 for a 1+117 session) share the first one's ring until
// it closes, and the other's delay is timed at ingest. A metric only.
type socketTimes struct {
	mu    sync.RWMutex
	rings map[uint32]*arrival.Ring
}

// maxSocketAge bounds how long before the read a socket's timestamp may
// be and still be taken: older means the ring slot is from an earlier lap
// of the sequence numbers, not this packet.
const maxSocketAge = time.Second

func newSocketTimes() *socketTimes {
	return &socketTimes{rings: map[uint32]*arrival.Ring{}}
}

// observe runs on the mux's reader goroutine for every datagram read.
func (s *socketTimes) observe(b []byte, at time.Time) {
	ssrc, seq, ok := arrival.RTP(b)
	if !ok {
		return
	}
	s.mu.RLock()
	r := s.rings[ssrc]
	s.mu.RUnlock()
	if r != nil {
		r.Put(seq, at.UnixNano())
	}
}

func (s *socketTimes) register(ssrc uint32, r *arrival.Ring) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if _, taken := s.rings[ssrc]; !taken {
		s.rings[ssrc] = r
	}
	s.mu.Unlock()
}

func (s *socketTimes) unregister(ssrc uint32, r *arrival.Ring) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.rings[ssrc] == r {
		delete(s.rings, ssrc)
	}
	s.mu.Unlock()
}
