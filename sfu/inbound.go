package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/ducha-dev/ducha/internal/twccfb"
)

// inbound is a participant's receive side: the layers it publishes, by
// SSRC, for the own SRTP ingress (ingress.go); and the one loop that sends
// the publisher its transport-wide feedback (internal/twccfb), its NACKs
// and its receiver reports (internal/rtprecv). Pion's NACK generator and
// receiver-report interceptors counted what passed through Pion's receive
// chain, which the ingress bypasses, and each ran a ticker of its own per
// connection; here one tick does all three, and once the connection is
// up its RTCP leaves through the egress (srtcpOut) rather than Pion's, and
// the tick runs on the ingress's reader (tickIfDue) rather than a timer.
type inbound struct {
	table *ingressTable
	ctr   *counters
	log   *slog.Logger
	clock Clock
	fb    *twccfb.Feedback
	write func([]rtcp.Packet) error
	// estimator reads the transport-wide feedback the participant's
	// browser sends about the SFU's streams (nil in tests).
	estimator *bwe.Estimator

	// out is the connection's own SRTCP sender, once it is up (nil:
	// through Pion, write); ownSent counts the compounds it sent.
	out     atomic.Pointer[srtcpOut]
	ownSent atomic.Int64
	// pionSelf is the SSRC the loop's RTCP is sent from through Pion.
	pionSelf uint32

	// The tick (tick) runs on the ingress's reader when one of the
	// connection's datagrams finds it due, else on the loop's timer.
	due     atomic.Int64 // unix nanoseconds the next tick is due
	timer   *time.Timer
	tickMu  sync.Mutex // one tick at a time; guards the fields below
	ticks   int
	missing []uint16
	lbuf    []*upLayer

	mu      sync.Mutex // guards the fields below
	layers  map[uint32]*ingressLayer
	sinks   map[uint32]rtcpSink // by the SSRC of a stream the SFU sends
	ing     *ingressState       // nil: no own ingress (yet)
	closed  bool
	started bool
	stop    chan struct{}
	done    chan struct{}

	// The address the table knows this connection by; guarded by
	// table.mu.
	addr    netip.AddrPort
	hasAddr bool
}

func newInbound(table *ingressTable, ctr *counters, log *slog.Logger, clock Clock, estimator *bwe.Estimator,
	write func([]rtcp.Packet) error) *inbound {
	return &inbound{table: table, ctr: ctr, log: log, clock: clock, fb: twccfb.New(clock.Now()), write: write,
		estimator: estimator, pionSelf: randomSSRC(), layers: map[uint32]*ingressLayer{}, sinks: map[uint32]rtcpSink{},
		stop: make(chan struct{}), done: make(chan struct{}), missing: make([]uint16, 0, 512),
		timer: time.NewTimer(twccfb.Interval)}
}

// add registers a layer the participant publishes; the first starts the
// feedback loop.
func (in *inbound) add(l *upLayer) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	l.fb = in.fb
	in.layers[l.ssrc] = &ingressLayer{l: l}
	if !in.started {
		in.started = true
		go in.run()
	}
}

// remove forgets a layer whose stream ended.
func (in *inbound) remove(l *upLayer) {
	in.mu.Lock()
	if il := in.layers[l.ssrc]; il != nil && il.l == l {
		delete(in.layers, l.ssrc)
	}
	in.mu.Unlock()
}

// close stops the loop and the ingress.
func (in *inbound) close() {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	started := in.started
	in.mu.Unlock()
	in.table.move(in, netip.AddrPort{}, false)
	close(in.stop)
	if started {
		<-in.done
	}
}

// Receiver reports go out every rrEvery feedback intervals (1 s, Pion's
// and libwebrtc's rate); NACKs and transport-wide feedback every interval
// (100 ms). maxNACKs bounds how often one missing packet is asked for, as
// libwebrtc's NACK module does: after ten asks over a second it is gone.
const (
	rrEvery  = 10
	maxNACKs = 10
	// rrPerPacket: a receiver report holds at most 31 blocks.
	rrPerPacket = 31
)

// randomSSRC draws an SSRC our RTCP is sent from; never 0, which Pion's
// keyframe requests are sent from.
func randomSSRC() uint32 {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		if v := binary.BigEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}

// idleTick is how long the loop's timer waits for the ingress's reader to
// run a tick (tickIfDue) before it runs one itself: a connection whose
// datagrams stopped, or one the ingress does not read.
const idleTick = 2 * twccfb.Interval

// run ticks when the ingress's reader has not (idleTick): while the
// connection's datagrams flow, the reader runs every tick and pushes the
// timer back, and this goroutine sleeps. One wake-up per tick and
// connection was a tenth of a province-wide session's thread switches.
func (in *inbound) run() {
	defer close(in.done)
	defer in.timer.Stop()
	for {
		select {
		case <-in.stop:
			return
		case <-in.timer.C:
		}
		in.timer.Reset(twccfb.Interval)
		now := in.clock.Now().UnixNano()
		in.due.Store(now + int64(twccfb.Interval))
		in.tick(now)
	}
}

// tickIfDue runs the tick on the caller, the ingress's reader, when it is
// due; at is the datagram's arrival. Its RTCP then leaves in the reader's
// burst (takeDatagram).
func (in *inbound) tickIfDue(at int64) {
	d := in.due.Load()
	if at < d || in.out.Load() == nil || !in.due.CompareAndSwap(d, at+int64(twccfb.Interval)) {
		return
	}
	in.timer.Reset(idleTick)
	in.tick(at)
}

// tick sends what is due: transport-wide feedback and NACKs every
// interval, receiver reports every rrEvery intervals.
func (in *inbound) tick(now int64) {
	in.tickMu.Lock()
	defer in.tickMu.Unlock()
	in.lbuf = in.snapshot(in.lbuf[:0])
	out := in.out.Load()
	self := in.pionSelf
	if out != nil {
		self = out.self
	}
	var pkts []rtcp.Packet
	if in.ticks%rrEvery == 0 {
		pkts = receiverReports(pkts, self, in.lbuf, now)
	}
	in.ticks++
	pkts = append(pkts, in.fb.Build()...)
	for _, l := range in.lbuf {
		if nack := l.nack(self, in.missing); nack != nil {
			pkts = append(pkts, nack)
		}
	}
	if len(pkts) == 0 {
		return
	}
	var err error
	if out != nil {
		if rr, ok := pkts[0].(*rtcp.ReceiverReport); !ok || rr.SSRC != self {
			pkts = append([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: self}}, pkts...)
		}
		if err = out.write(pkts); err == nil {
			in.ownSent.Add(1)
		}
	} else {
		err = in.write(pkts)
	}
	if err != nil {
		in.log.Debug("receive-side RTCP not sent", "err", err)
	}
}

// startOwnRTCP sends the loop's RTCP through the connection's egress from
// now on, from an SSRC of its own (srtcpOut). The SSRC is drawn apart from
// every one Pion sends this connection's RTCP from as far as they are
// known now (the loop's, the feedback's, the downTracks'); one a later
// subscription gets matches it with probability 2^-32.
func (in *inbound) startOwnRTCP(k *srtpKeys, e *egress) error {
	in.mu.Lock()
	self := randomSSRC()
	for self == in.pionSelf || self == in.fb.SenderSSRC() || in.sinks[self] != nil {
		self = randomSSRC()
	}
	in.mu.Unlock()
	out, err := newSRTCPOut(k, e, self)
	if err != nil {
		return err
	}
	in.out.Store(out)
	return nil
}

func (in *inbound) snapshot(dst []*upLayer) []*upLayer {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, il := range in.layers {
		dst = append(dst, il.l)
	}
	return dst
}

// receiverReports appends receiver reports for layers, up to rrPerPacket
// blocks each.
func receiverReports(pkts []rtcp.Packet, self uint32, layers []*upLayer, now int64) []rtcp.Packet {
	var rr *rtcp.ReceiverReport
	for _, l := range layers {
		block, ok := l.report(now)
		if !ok {
			continue
		}
		if rr == nil || len(rr.Reports) == rrPerPacket {
			rr = &rtcp.ReceiverReport{SSRC: self}
			pkts = append(pkts, rr)
		}
		rr.Reports = append(rr.Reports, block)
	}
	return pkts
}

// nack is the layer's NACK of what it misses, or nil.
func (l *upLayer) nack(self uint32, buf []uint16) *rtcp.TransportLayerNack {
	l.ingestMu.Lock()
	missing := l.rx.Missing(buf[:0], maxNACKs)
	l.ingestMu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	l.track.ctr.nacksOut.Add(uint64(len(missing)))
	return &rtcp.TransportLayerNack{SenderSSRC: self, MediaSSRC: l.ssrc,
		Nacks: rtcp.NackPairsFromSequenceNumbers(missing)}
}

// report is the layer's reception report block.
func (l *upLayer) report(now int64) (rtcp.ReceptionReport, bool) {
	l.ingestMu.Lock()
	defer l.ingestMu.Unlock()
	return l.rx.Report(now)
}

// nackWindow is how many recent sequence numbers of a video layer are
// remembered for NACKs (Pion's generator's default: about three seconds
// of a 720p layer). Audio is not NACKed: Opus conceals, and a late
// retransmission is of no use to a listener.
func nackWindow(kind string) int {
	if kind == "video" {
		return 512
	}
	return 0
}
