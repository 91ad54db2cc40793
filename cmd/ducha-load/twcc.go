package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"

	"github.com/ducha-dev/ducha/internal/twccfb"
	"github.com/ducha-dev/ducha/signaling"
)

// twccFeedback is the agent's transport-wide congestion control feedback
// (internal/twccfb), fed with arrival times taken at the socket (see
// socket.go) instead of after the client's receive chain.
type twccFeedback struct {
	id atomic.Uint32 // the negotiated transport-cc extension id; 0 until known
	*twccfb.Feedback
}

func newTWCCFeedback(now time.Time) *twccFeedback {
	return &twccFeedback{Feedback: twccfb.New(now)}
}

// run sends feedback every twccfb.Interval until ctx ends.
func (f *twccFeedback) run(ctx context.Context, write func([]rtcp.Packet) error) {
	tick := time.NewTicker(twccfb.Interval)
	defer tick.Stop()
	f.Run(ctx, tick.C, write)
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
