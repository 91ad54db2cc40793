package sfu

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/ducha-dev/ducha/internal/ntp"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// keyframeRetry is how often a subscriber waiting for its first keyframe
// asks the publisher again.
const keyframeRetry = 300 * time.Millisecond

// downTrack forwards one published track to one browser subscriber. It is
// a webrtc.TrackLocal (Pion binds it to the subscriber's connection) and a
// Subscriber (the fan-out writes to it). It rewrites SSRC, payload type,
// sequence numbers and timestamps, drops the publisher's header extensions
// (their ids are negotiated per connection), and answers NACKs from the
// publisher's packet cache instead of keeping a copy per subscriber.
type downTrack struct {
	up  *UpTrack
	ctr *counters
	log *slog.Logger
	// sw picks the layer of a simulcast track (nil for an ordinary one);
	// set once before the downTrack is shared.
	sw *layerSwitch

	mu     sync.Mutex // guards everything below; the writer and the RTCP reader both send
	bound  bool
	rtpOut // the subscriber's end: its writer, SSRC and payload type
	needKF bool
	mung   munger
	rtxBuf []byte
	rtxPkt rtp.Packet
	cache  *packetCache // of the stream being forwarded, for retransmissions
	sender *webrtc.RTPSender
	closed bool
	rtx    rtxLimiter
	kfAsk  time.Time // last keyframe request made while waiting for one
	gapped bool      // audio was held back (not a loudest speaker): resync on resume
	// ready is the subscriber connection's "media can flow" flag: before
	// DTLS completes, Pion drops what we write, and a keyframe sent into
	// that void would leave the subscriber waiting for the next one.
	ready *atomic.Bool

	// From the subscriber's receiver reports, for the quality overview.
	rttMicros  atomic.Int64
	lossPermil atomic.Int64
	rrSeen     atomic.Bool
}

func (d *downTrack) quality() (rtt time.Duration, lossPercent float64, ok bool) {
	if !d.rrSeen.Load() {
		return 0, 0, false
	}
	return time.Duration(d.rttMicros.Load()) * time.Microsecond, float64(d.lossPermil.Load()) / 10, true
}

// onReceiverReport keeps the subscriber's loss and round-trip time. The
// round trip is the arrival time minus the echoed sender-report time (LSR)
// minus the receiver's hold time (DLSR), in 1/65536 s; our sender reports
// are stamped with this server's wall clock, so no mapping is needed.
func (d *downTrack) onReceiverReport(rr *rtcp.ReceiverReport, now time.Time) {
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	for _, r := range rr.Reports {
		if r.SSRC != ssrc {
			continue
		}
		d.rrSeen.Store(true)
		d.lossPermil.Store(int64(r.FractionLost) * 1000 / 256)
		if r.LastSenderReport == 0 {
			continue
		}
		rtt := ntp.Compact(now) - r.LastSenderReport - r.Delay
		if rtt < 1<<31 { // not negative
			d.rttMicros.Store(int64(rtt) * 1_000_000 >> 16)
		}
	}
}

func newDownTrack(up *UpTrack, ctr *counters, log *slog.Logger, ready *atomic.Bool, tw *bwe.Estimator, eg *atomic.Pointer[egress]) *downTrack {
	d := &downTrack{
		up: up, ctr: ctr, log: log, ready: ready,
		needKF: up.info.Kind == "video",
		rtpOut: rtpOut{tw: tw, eg: eg},
	}
	if up.simulcast {
		d.sw = up.addSwitch(d)
	} else if l := up.base(); l != nil {
		d.cache = l.cache
	}
	return d
}

// attach starts the flow of packets: the ordinary track's stream, or the
// simulcast layer given.
func (d *downTrack) attach(layer int) {
	if d.sw != nil {
		d.sw.setTarget(layer)
		return
	}
	if l := d.up.base(); l != nil {
		l.subscribe(d)
	}
}

// detach stops the flow of packets.
func (d *downTrack) detach() {
	if d.sw != nil {
		d.up.dropSwitch(d.sw)
		return
	}
	if l := d.up.base(); l != nil {
		l.unsubscribe(d)
	}
}

// switchLayer implements switchSink: the next packet is a keyframe of
// another layer; it starts a new epoch, and NACKs are answered from that
// layer's cache from now on.
func (d *downTrack) switchLayer(l *upLayer) {
	d.mu.Lock()
	d.cache = l.cache
	d.needKF = true
	d.mung.requestResync()
	d.mu.Unlock()
}

// askKeyframe asks the publisher for a keyframe of what this subscriber
// receives or waits for.
func (d *downTrack) askKeyframe() {
	if d.sw != nil {
		d.sw.requestKeyframe()
		return
	}
	d.up.RequestKeyframe()
}

// ID is the track id in the subscriber's SDP.
func (d *downTrack) ID() string { return d.up.info.ID }

// StreamID is the msid stream id; clients map it to the published track.
func (d *downTrack) StreamID() string { return d.up.info.ID }

// RID is empty: a downTrack is one stream.
func (d *downTrack) RID() string { return "" }

// Kind is audio or video.
func (d *downTrack) Kind() webrtc.RTPCodecType {
	if d.up.info.Kind == "audio" {
		return webrtc.RTPCodecTypeAudio
	}
	return webrtc.RTPCodecTypeVideo
}

// Bind picks the subscriber's payload type for the publisher's codec.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, ok := matchCodec(d.up.codecParams, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	d.mu.Lock()
	d.bound = true
	d.bindOut(ctx, uint8(codec.PayloadType), codec.ClockRate)
	d.mu.Unlock()
	if d.mediaReady() { // a new track on a live connection; otherwise it asks when the connection is up
		d.askKeyframe()
	}
	return codec, nil
}

// mediaReady implements mediaReadier: what is written now reaches the
// subscriber. Before the connection is up Pion drops it, and before the
// track is bound (or once it is closed) WriteRTP does.
func (d *downTrack) mediaReady() bool {
	if !d.ready.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bound && !d.closed
}

// Unbind stops writing.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.bound = false
	d.mu.Unlock()
	return nil
}

// matchCodec finds the negotiated codec with the publisher's MIME type,
// preferring an identical fmtp line (H.264 profiles differ only there).
func matchCodec(want webrtc.RTPCodecParameters, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i := range have {
		c := &have[i]
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if c.SDPFmtpLine == want.SDPFmtpLine {
			return *c, true
		}
		if fallback == nil {
			fallback = c
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// WriteRTP implements Subscriber.
func (d *downTrack) WriteRTP(p *rtp.Packet) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound || d.closed || !d.ready.Load() {
		return nil
	}
	if d.up.gated.Load() {
		d.gapped = true
		return nil
	}
	if d.gapped {
		d.gapped = false
		d.mung.requestResync() // continuous sequence numbers: no NACKs for what was held back
	}
	now := d.up.clock.Now()
	if d.needKF {
		if !isKeyframeStart(d.up.codec, p.Payload) {
			// A browser never asks for a keyframe of a stream it has not
			// received yet, so keep asking until one is forwarded (the
			// first may have come before this subscription could send).
			if now.Sub(d.kfAsk) >= keyframeRetry {
				d.kfAsk = now
				go d.askKeyframe()
			}
			return nil
		}
		d.needKF = false
	}
	seq, ts, ok := d.mung.rewrite(p.SequenceNumber, p.Timestamp, now, d.up.clockRate)
	if !ok {
		return nil
	}
	d.rtx.forwarded(now.UnixNano())
	return d.send(p, seq, ts, now, d.ctr)
}

// Resync implements Subscriber: after a drop, restart at the next keyframe
// with continuous sequence numbers.
func (d *downTrack) Resync() {
	d.mu.Lock()
	if d.up.codec != codecNone {
		d.needKF = true
	}
	d.mung.requestResync()
	d.mu.Unlock()
}

// rtpOut is the sending end of one forwarded stream toward one subscriber,
// shared by downTracks and speaker slots. Its owner's mutex guards it.
type rtpOut struct {
	writer webrtc.TrackLocalWriter
	ssrc   uint32
	pt     uint8
	hdr    rtp.Header // reused: no allocation per packet
	// The subscriber connection's bandwidth estimator, which numbers every
	// packet for transport-wide feedback, and the extension id negotiated
	// for that number (0: not negotiated, nothing stamped).
	tw    *bwe.Estimator // set at construction, never changed: read without the lock
	twID  uint8
	twBuf [2]byte // the extension's payload; lives in hdr while it is written
	// The connection's own SRTP egress (egress.go), set once the
	// connection is up. The first packet decides the path for good: an
	// SRTP context must see a stream from its start.
	eg      *atomic.Pointer[egress]
	fast    *fastOut
	decided bool
	sr      srStats
}

// path is the fast path's end for this stream, or nil for Pion's.
func (o *rtpOut) path() *fastOut {
	if !o.decided {
		o.decided = true
		if o.eg != nil {
			if e := o.eg.Load(); e != nil {
				o.fast, _ = e.newOut() // a key Pion accepted cannot fail here
			}
		}
	}
	return o.fast
}

// srtpTagSize is what SRTP adds to a packet (the AES-GCM tag), counted in
// the size the estimator is told.
const srtpTagSize = 16

// bindOut takes what the subscriber's connection negotiated for a track.
func (o *rtpOut) bindOut(ctx webrtc.TrackLocalContext, pt uint8, clockRate uint32) {
	o.writer, o.ssrc, o.pt, o.twID = ctx.WriteStream(), uint32(ctx.SSRC()), pt, 0
	o.sr = srStats{clockRate: clockRate}
	for _, e := range ctx.HeaderExtensions() {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
			o.twID = uint8(e.ID)
		}
	}
}

// send writes p's payload under the subscriber's SSRC and payload type with
// the given sequence number and timestamp, stamped with the next
// transport-wide sequence number. The publisher's header extensions are
// dropped: their ids are negotiated per connection.
func (o *rtpOut) send(p *rtp.Packet, seq uint16, ts uint32, now time.Time, ctr *counters) error {
	ext := o.hdr.Extensions[:0]
	o.hdr = rtp.Header{
		Version:        2,
		Padding:        p.Padding,
		PaddingSize:    p.Header.PaddingSize,
		Marker:         p.Marker,
		PayloadType:    o.pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           o.ssrc,
		Extensions:     ext,
	}
	if o.tw != nil && o.twID != 0 {
		_ = o.hdr.SetExtension(o.twID, o.twBuf[:]) // cannot fail: id 1-14, 2 bytes
		twSeq := o.tw.Sent(now, o.hdr.MarshalSize()+len(p.Payload)+srtpTagSize)
		binary.BigEndian.PutUint16(o.twBuf[:], twSeq)
	}
	var n int
	var err error
	if f := o.path(); f != nil {
		n, err = f.write(&o.hdr, p.Payload)
	} else {
		n, err = o.writer.WriteRTP(&o.hdr, p.Payload)
	}
	if err != nil {
		return err
	}
	o.sr.sent(&o.hdr, len(p.Payload), now)
	ctr.packetsOut.Add(1)
	ctr.bytesOut.Add(uint64(n))
	return nil
}

// rtcpLoop reads the subscriber's RTCP for this track: NACKs are answered
// from the cache, PLI/FIR go to the publisher (throttled there).
func (d *downTrack) rtcpLoop(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				d.log.Debug("rtcp read ended", "err", err)
			}
			return
		}
		now := d.up.clock.Now()
		for _, pkt := range pkts {
			if fb, ok := pkt.(*rtcp.TransportLayerCC); ok {
				if d.tw != nil {
					d.tw.Feedback(fb, now)
				}
				continue
			}
			d.handleRTCP(pkt, now)
		}
	}
}

// handleRTCP reads one RTCP packet about the stream: from rtcpLoop, or,
// when the SFU's ingress took the compound off the socket, from the
// ingress (which gives transport-wide feedback to the estimator itself).
func (d *downTrack) handleRTCP(pkt rtcp.Packet, now time.Time) {
	switch p := pkt.(type) {
	case *rtcp.TransportLayerNack:
		for _, pair := range p.Nacks {
			pair.Range(func(seq uint16) bool {
				d.retransmit(seq)
				return true
			})
		}
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		d.askKeyframe()
	case *rtcp.ReceiverReport:
		d.onReceiverReport(p, now)
	}
}

// retransmit resends one packet the subscriber lost, from the shared cache.
func (d *downTrack) retransmit(outSeq uint16) {
	d.ctr.nacksIn.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.bound || d.closed {
		return
	}
	seq, ok := d.mung.unmap(outSeq)
	if !ok {
		d.ctr.retransmitMisses.Add(1)
		return
	}
	gap := 100 * time.Millisecond
	if rtt := time.Duration(d.rttMicros.Load()) * time.Microsecond; rtt > 0 {
		gap = max(rtt*6/5, 20*time.Millisecond)
	}
	if !d.rtx.allow(outSeq, d.up.clock.Now().UnixNano(), gap) {
		d.ctr.retransmitThrottled.Add(1)
		return
	}
	if d.cache == nil {
		d.ctr.retransmitMisses.Add(1)
		return
	}
	if d.rtxBuf == nil {
		d.rtxBuf = make([]byte, slotSize) // at the first NACK answered
	}
	n := d.cache.get(seq, d.rtxBuf)
	if n == 0 || d.rtxPkt.Unmarshal(d.rtxBuf[:n]) != nil {
		d.ctr.retransmitMisses.Add(1)
		return
	}
	if d.send(&d.rtxPkt, outSeq, d.mung.outTimestamp(d.rtxPkt.Timestamp), d.up.clock.Now(), d.ctr) == nil {
		d.ctr.retransmits.Add(1)
	}
}

// close stops forwarding for good.
func (d *downTrack) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
}

// writesInline implements inliner: a write is encrypted and queued for the
// socket (or Pion's ICE-TCP queue, which drops when full); it never waits.
func (d *downTrack) writesInline() bool { return true }
