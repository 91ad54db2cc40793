// Package twccfb is the receiving half of transport-wide congestion
// control (draft-holmer-rmcat-transport-wide-cc-extensions-01): it
// remembers when each packet's transport-wide sequence number arrived and
// sends the sender that feedback every Interval, for the sender's
// bandwidth estimate. The SFU (for its publishers) and the load tool's
// simulated clients use it.
//
// Why not pion/interceptor's twcc.SenderInterceptor: it hands every
// received packet over an unbuffered channel to a goroutine of its own (a
// goroutine switch per packet, about 7 % of the SFU's CPU at 1+117) and
// times the packet when that goroutine runs, after the whole receive chain.
// Here the reader records under a mutex, with the arrival time its caller
// took, as early as it could (the kernel's receive timestamp where there
// is one). Pion's Recorder still builds the packets.
package twccfb

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"

	"github.com/ducha-dev/ducha/internal/rtpraw"
)

// Interval is how often feedback goes out, as libwebrtc's and Pion's
// receivers send it by default.
const Interval = 100 * time.Millisecond

// Feedback records arrivals of one transport (one sender's sequence
// number space) and builds its feedback. Safe for concurrent use.
type Feedback struct {
	base time.Time
	ssrc uint32 // the feedback's sender SSRC

	mu  sync.Mutex
	rec *twcc.Recorder

	recorded atomic.Int64
	sent     atomic.Int64
}

// New starts a record whose arrival times count from base.
func New(base time.Time) *Feedback {
	ssrc := rand.Uint32()
	return &Feedback{base: base, ssrc: ssrc, rec: twcc.NewRecorder(ssrc)}
}

// SenderSSRC is the SSRC the feedback packets are sent from.
func (f *Feedback) SenderSSRC() uint32 { return f.ssrc }

// Record notes that the packet of media SSRC ssrc carrying transport-wide
// sequence number seq arrived at at.
func (f *Feedback) Record(ssrc uint32, seq uint16, at time.Time) {
	us := at.Sub(f.base).Microseconds()
	f.mu.Lock()
	f.rec.Record(ssrc, seq, us)
	f.mu.Unlock()
	f.recorded.Add(1)
}

// RecordPacket records raw RTP packet pkt if it carries header extension
// id (the negotiated transport-wide sequence number), and reports whether
// it did. It allocates nothing.
func (f *Feedback) RecordPacket(pkt []byte, id uint8, at time.Time) bool {
	seq, ok := Sequence(pkt, id)
	if !ok {
		return false
	}
	f.Record(binary.BigEndian.Uint32(pkt[8:12]), seq, at)
	return true
}

// Sequence reads the transport-wide sequence number from raw RTP packet
// pkt, in header extension id.
func Sequence(pkt []byte, id uint8) (uint16, bool) {
	v := rtpraw.Extension(pkt, id)
	if len(v) < 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(v), true
}

// Build returns the feedback for what arrived since the last call (nil if
// nothing did).
func (f *Feedback) Build() []rtcp.Packet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rec.BuildFeedbackPacket()
}

// Run sends the feedback at every tick until ctx ends. A report that fails
// to go out is lost, as a lost RTCP packet is; the next one covers only
// what arrived after it, as Pion's interceptor does.
func (f *Feedback) Run(ctx context.Context, tick <-chan time.Time, write func([]rtcp.Packet) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		if pkts := f.Build(); len(pkts) > 0 && write(pkts) == nil {
			f.sent.Add(int64(len(pkts)))
		}
	}
}

// Recorded is how many packets were recorded.
func (f *Feedback) Recorded() int64 { return f.recorded.Load() }

// Sent is how many feedback packets were written.
func (f *Feedback) Sent() int64 { return f.sent.Load() }
