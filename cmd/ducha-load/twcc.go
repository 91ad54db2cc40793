package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"

	"github.com/ducha-dev/ducha/signaling"
)

// twccInterval is how often feedback goes out, as Pion's and libwebrtc's
// receivers send it.
const twccInterval = 100 * time.Millisecond

// twccFeedback is the agent's transport-wide congestion control feedback
// (what Pion's twcc.SenderInterceptor does), fed with arrival times taken
// at the socket (see socket.go) instead of after the client's receive
// chain. Pion's recorder builds the packets; it is not safe for
// concurrent use, so the socket's reader and the sending loop share it
// under mu.
type twccFeedback struct {
	id   atomic.Uint32 // the negotiated transport-cc extension id; 0 until known
	base time.Time

	mu  sync.Mutex
	rec *twcc.Recorder

	recorded atomic.Int64 // packets timed
	sent     atomic.Int64 // feedback packets written
}

func newTWCCFeedback(now time.Time) *twccFeedback {
	return &twccFeedback{base: now, rec: twcc.NewRecorder(rand.Uint32())}
}

func (f *twccFeedback) record(ssrc uint32, seq uint16, at time.Time) {
	us := at.Sub(f.base).Microseconds()
	f.mu.Lock()
	f.rec.Record(ssrc, seq, us)
	f.mu.Unlock()
	f.recorded.Add(1)
}

// build returns the feedback for what arrived since the last call (nil if
// nothing did).
func (f *twccFeedback) build() []rtcp.Packet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rec.BuildFeedbackPacket()
}

// run sends feedback every twccInterval until ctx ends. A report that
// fails to go out is lost, as Pion's interceptor loses it, and as a lost
// RTCP packet is.
func (f *twccFeedback) run(ctx context.Context, write func([]rtcp.Packet) error) {
	tick := time.NewTicker(twccInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if pkts := f.build(); len(pkts) > 0 && write(pkts) == nil {
			f.sent.Add(int64(len(pkts)))
		}
	}
}

// learnID takes the transport-cc extension id from a description the
// server sent (offer or answer), the first time one names it. Pion keeps
// a connection's extension ids from its first negotiation on, and a
// description is applied before the DTLS handshake that any SRTP waits
// for, so no media packet arrives before the id is known.
func (f *twccFeedback) learnID(typ string, data json.RawMessage) {
	if f.id.Load() != 0 || (typ != signaling.TypeOffer && typ != signaling.TypeAnswer) {
		return
	}
	var d signaling.SDP
	if json.Unmarshal(data, &d) != nil {
		return
	}
	if id := extmapID(d.SDP, sdp.TransportCCURI); id > 0 {
		f.id.Store(uint32(id))
	}
}

// extmapID finds the id an "a=extmap:" line of desc gives uri (0: none).
// BUNDLE makes it one id for the whole session.
func extmapID(desc, uri string) int {
	for line := range strings.Lines(desc) {
		rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=extmap:")
		if !ok {
			continue
		}
		idDir, u, _ := strings.Cut(rest, " ")
		if f := strings.Fields(u); len(f) == 0 || f[0] != uri {
			continue
		}
		idStr, _, _ := strings.Cut(idDir, "/") // "5/recvonly"
		if id, err := strconv.Atoi(idStr); err == nil && id > 0 && id < 256 {
			return id
		}
	}
	return 0
}
