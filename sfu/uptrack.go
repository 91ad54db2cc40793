package sfu

import (
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// SenderReport is the latest RTCP sender report of a published track: the
// publisher's NTP wall clock matched to its RTP clock, for lip sync.
type SenderReport struct {
	NTPTime   uint64
	RTPTime   uint32
	ArrivedAt time.Time
}

// UpTrack is one published track. Its reader goroutine stores each packet
// once in the packet cache and hands the sequence number to fan-out writers;
// it never waits for a subscriber.
type UpTrack struct {
	info        TrackInfo
	ssrc        uint32
	clockRate   uint32
	codec       videoCodec
	codecParams webrtc.RTPCodecParameters
	cache       *packetCache
	clock       Clock
	log         *slog.Logger
	ctr         *counters
	opts        fanoutOptions
	// sendPLI asks the publisher for a keyframe.
	sendPLI func(ssrc uint32)

	writers atomic.Pointer[[]*fanWriter] // read per packet without locking
	sr      atomic.Pointer[SenderReport]
	blocked atomic.Bool // moderation: packets are dropped at the reader
	// Audio level (RFC 6464): the negotiated extension id (0: none), the
	// smoothed loudness (written by the reader only), and whether browsers
	// are spared this track because it is not among the loudest.
	levelExt uint8
	pubRole  string // the publisher's role, for the subscription policy
	loudness atomic.Int32
	gated    atomic.Bool
	seq      uint64 // publication order in the room, set once before the track is shared

	mu        sync.Mutex // guards the fields below
	subs      map[Subscriber]*fanWriter
	closed    bool
	lastKF    time.Time
	kfPending bool
	kfTimer   Timer
}

type fanoutOptions struct {
	queueLen     int // per writer
	perWriter    int // subscribers a writer serves before another is started
	maxWriters   int
	kfMinSpacing time.Duration
}

func newUpTrack(info TrackInfo, ssrc uint32, codec webrtc.RTPCodecParameters, cacheSize int, clock Clock,
	log *slog.Logger, ctr *counters, opts fanoutOptions, sendPLI func(uint32)) *UpTrack {
	u := &UpTrack{
		info: info, ssrc: ssrc, clockRate: codec.ClockRate, codec: codecOf(info.MimeType), codecParams: codec,
		cache: newPacketCache(cacheSize), clock: clock, ctr: ctr, opts: opts, sendPLI: sendPLI,
		log:  log.With("track", info.ID, "kind", info.Kind, "source", info.Source),
		subs: map[Subscriber]*fanWriter{},
	}
	empty := []*fanWriter{}
	u.writers.Store(&empty)
	return u
}

// Info describes the track.
func (u *UpTrack) Info() TrackInfo { return u.info }

// Codec is the publisher's negotiated codec.
func (u *UpTrack) Codec() webrtc.RTPCodecParameters { return u.codecParams }

// ClockRate is the codec's RTP clock rate.
func (u *UpTrack) ClockRate() uint32 { return u.clockRate }

// LastSenderReport returns the newest RTCP sender report, or nil.
func (u *UpTrack) LastSenderReport() *SenderReport { return u.sr.Load() }

func (u *UpTrack) setSenderReport(ntp uint64, rtpTS uint32) {
	u.sr.Store(&SenderReport{NTPTime: ntp, RTPTime: rtpTS, ArrivedAt: u.clock.Now()})
}

// packetSource is what the reader reads from: a *webrtc.TrackRemote in
// production, a plain function in benchmarks.
type packetSource interface {
	Read(b []byte) (int, error)
}

// readLoop is the publisher's reader. It returns when the source fails
// (the track or connection closed).
func (u *UpTrack) readLoop(src packetSource) {
	buf := make([]byte, slotSize)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		u.ingest(buf[:n])
	}
}

// ingest stores one packet and queues it for every writer. It is the hot
// path: no allocation, no lock held while a subscriber runs.
func (u *UpTrack) ingest(pkt []byte) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return
	}
	u.ctr.packetsIn.Add(1)
	u.ctr.bytesIn.Add(uint64(len(pkt)))
	if u.blocked.Load() {
		u.ctr.moderatedDrops.Add(1)
		return
	}
	if u.levelExt != 0 {
		if ext := rtpExtension(pkt, u.levelExt); len(ext) > 0 {
			u.loudness.Store((3*u.loudness.Load() + levelLoudness(ext[0])) / 4)
		}
	}
	seq := binary.BigEndian.Uint16(pkt[2:4])
	switch u.cache.store(seq, pkt) {
	case duplicate:
		u.ctr.duplicates.Add(1)
		return
	case tooOld, tooLarge:
		u.ctr.lateDrops.Add(1)
		return
	}
	for _, w := range *u.writers.Load() {
		w.enqueue(seq)
	}
}

// Subscribe adds a subscriber. For video it also asks the publisher for a
// keyframe so the new subscriber can start decoding quickly.
func (u *UpTrack) Subscribe(s Subscriber) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	if _, ok := u.subs[s]; ok {
		u.mu.Unlock()
		return
	}
	ws := *u.writers.Load()
	var w *fanWriter
	for _, c := range ws {
		if w == nil || c.count() < w.count() {
			w = c
		}
	}
	if w == nil || (w.count() >= u.opts.perWriter && len(ws) < u.opts.maxWriters) {
		w = newFanWriter(u, u.opts.queueLen)
		nws := append(append(make([]*fanWriter, 0, len(ws)+1), ws...), w)
		u.writers.Store(&nws)
		go w.run()
	}
	w.add(s)
	u.subs[s] = w
	u.mu.Unlock()
	u.RequestKeyframe()
}

// Unsubscribe removes a subscriber; its writer stops when it has none left.
func (u *UpTrack) Unsubscribe(s Subscriber) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w, ok := u.subs[s]
	if !ok {
		return
	}
	delete(u.subs, s)
	if w.remove(s) > 0 {
		return
	}
	ws := *u.writers.Load()
	nws := make([]*fanWriter, 0, len(ws))
	for _, c := range ws {
		if c != w {
			nws = append(nws, c)
		}
	}
	u.writers.Store(&nws)
	w.stop()
}

// SubscriberCount is the number of subscribers.
func (u *UpTrack) SubscriberCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.subs)
}

// RequestKeyframe asks the publisher for a keyframe, at most once per
// kfMinSpacing; a request inside the window is deferred to its end rather
// than lost, so a new subscriber never waits for the next periodic keyframe.
func (u *UpTrack) RequestKeyframe() {
	if u.info.Kind != "video" {
		return
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	now := u.clock.Now()
	since := now.Sub(u.lastKF)
	if since >= u.opts.kfMinSpacing {
		u.lastKF = now
		u.mu.Unlock()
		u.firePLI()
		return
	}
	if !u.kfPending {
		u.kfPending = true
		u.kfTimer = u.clock.AfterFunc(u.opts.kfMinSpacing-since, u.deferredPLI)
	}
	u.mu.Unlock()
}

func (u *UpTrack) deferredPLI() {
	u.mu.Lock()
	if u.closed || !u.kfPending {
		u.mu.Unlock()
		return
	}
	u.kfPending = false
	u.lastKF = u.clock.Now()
	u.mu.Unlock()
	u.firePLI()
}

func (u *UpTrack) firePLI() {
	u.ctr.keyframeRequests.Add(1)
	if u.sendPLI != nil {
		u.sendPLI(u.ssrc)
	}
}

// close stops the writers; subscribers are detached by the room.
func (u *UpTrack) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	if u.kfTimer != nil {
		u.kfTimer.Stop()
	}
	ws := *u.writers.Load()
	empty := []*fanWriter{}
	u.writers.Store(&empty)
	clear(u.subs)
	u.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

// subscribers returns the current subscribers (for the room's bookkeeping).
func (u *UpTrack) subscribers() []Subscriber {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]Subscriber, 0, len(u.subs))
	for s := range u.subs {
		out = append(out, s)
	}
	return out
}
