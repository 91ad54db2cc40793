package sfu

import (
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

// UpTrack is one published track. It has one upLayer per RTP stream: one
// for an ordinary track, up to three for a simulcast one (rids q, h, f).
// Subscribers of an ordinary track hang directly off its layer; those of a
// simulcast track go through a layerSwitch that picks one layer at a time.
type UpTrack struct {
	info        TrackInfo
	clockRate   uint32
	codec       videoCodec
	codecParams webrtc.RTPCodecParameters
	clock       Clock
	log         *slog.Logger
	ctr         *counters
	opts        fanoutOptions
	simulcast   bool
	mid         string // the publisher's media section, for `layers`
	// sendPLI asks the publisher for a keyframe of one stream.
	sendPLI func(ssrc uint32)
	// notifyLayers tells the publisher which layers somebody receives.
	notifyLayers func(active []string)

	blocked atomic.Bool // moderation: packets are dropped at the reader
	// Audio level (RFC 6464): the negotiated extension id (0: none), the
	// smoothed loudness (written by the reader only), and whether browsers
	// are spared this track because it is not among the loudest.
	levelExt uint8
	pubRole  string // the publisher's role, for the subscription policy
	loudness atomic.Int32
	levelAt  atomic.Int64 // Unix ns of the last level read (loudnessAt)
	gated    atomic.Bool
	seq      uint64 // publication order in the room, set once before the track is shared
	// ref is the first layer: the timeline of LastSenderReport. Atomic:
	// read on the packet path under a switch's lock, where taking mu could
	// deadlock against updateLayers.
	ref atomic.Pointer[upLayer]

	mu       sync.Mutex // guards the fields below
	layers   [maxLayers]*upLayer
	switches map[*layerSwitch]struct{}
	generic  map[Subscriber]*layerSwitch // Subscribe on a simulcast track (the recorder)
	closed   bool
	// Layer pausing: what the publisher was last told, and when each layer
	// was last asked to resume.
	announced    uint8 // bit per layer index
	announcedSet bool  // a `layers` was sent at all
	resumedAt    [maxLayers]time.Time

	// layersMu runs one announce at a time, notification included, so the
	// publisher hears the announcements in the order they were decided.
	layersMu sync.Mutex
	// layersDue: an announce outside the room tick is on its way (resume).
	layersDue atomic.Bool
}

type fanoutOptions struct {
	queueLen     int // per writer
	perWriter    int // subscribers a writer serves before another is started
	maxWriters   int
	inlineMax    int // groups this small are written by the reader (fanWriter.tryInline); 0: none
	kfMinSpacing time.Duration
	socket       *socketTimes // nil: arrivals are timed at ingest
	// cork holds the media socket's send batch while a writer hands on one
	// packet's copies (udpbatch.Conn.Cork); nil with direct sends.
	cork corker
	// behind is set while the mux's reader lags the socket (takeDatagram):
	// it then leaves every group to its writer, spread over the cores.
	// nil: never.
	behind *atomic.Bool
}

// corker is udpbatch.Conn's Cork and Uncork.
type corker interface {
	Cork()
	Uncork()
}

// newUpTrack makes an ordinary (not simulcast) track with its one stream.
func newUpTrack(info TrackInfo, ssrc uint32, codec webrtc.RTPCodecParameters, cacheSize int, clock Clock,
	log *slog.Logger, ctr *counters, opts fanoutOptions, sendPLI func(uint32)) *UpTrack {
	u := newTrack(info, codec, clock, log, ctr, opts, sendPLI)
	u.addLayer("", 0, ssrc, cacheSize)
	return u
}

func newTrack(info TrackInfo, codec webrtc.RTPCodecParameters, clock Clock, log *slog.Logger, ctr *counters,
	opts fanoutOptions, sendPLI func(uint32)) *UpTrack {
	return &UpTrack{
		info: info, clockRate: codec.ClockRate, codec: codecOf(info.MimeType), codecParams: codec,
		clock: clock, ctr: ctr, opts: opts, sendPLI: sendPLI,
		log:      log.With("track", info.ID, "kind", info.Kind, "source", info.Source),
		switches: map[*layerSwitch]struct{}{}, generic: map[Subscriber]*layerSwitch{},
	}
}

// addLayer adds the stream of layer idx; nil when that layer exists already
// or the track is closed.
func (u *UpTrack) addLayer(rid string, idx int, ssrc uint32, cacheSize int) *upLayer {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || idx < 0 || idx >= maxLayers || u.layers[idx] != nil {
		return nil
	}
	l := newUpLayer(u, rid, idx, ssrc, cacheSize)
	u.opts.socket.register(ssrc, &l.arrived)
	u.layers[idx] = l
	u.ref.CompareAndSwap(nil, l)
	return l
}

// removeLayer drops a layer whose stream ended; switches fall back to the
// others at the next allocation.
func (u *UpTrack) removeLayer(l *upLayer) (empty bool) {
	u.mu.Lock()
	if u.layers[l.idx] == l {
		u.layers[l.idx] = nil
	}
	empty = true
	for _, o := range u.layers {
		if o != nil {
			empty = false
		}
	}
	u.mu.Unlock()
	l.close()
	return empty
}

// layerSnapshot returns the current layers (nil where absent).
func (u *UpTrack) layerSnapshot() [maxLayers]*upLayer {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.layers
}

// base is the stream of an ordinary track.
func (u *UpTrack) base() *upLayer {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.layers[0]
}

// Info describes the track.
func (u *UpTrack) Info() TrackInfo { return u.info }

// Simulcast reports whether the track is sent as several layers.
func (u *UpTrack) Simulcast() bool { return u.simulcast }

// Codec is the publisher's negotiated codec.
func (u *UpTrack) Codec() webrtc.RTPCodecParameters { return u.codecParams }

// ClockRate is the codec's RTP clock rate.
func (u *UpTrack) ClockRate() uint32 { return u.clockRate }

// LastSenderReport returns the newest RTCP sender report, or nil. For a
// simulcast track it is that of the first layer, whose timeline the
// packets a Subscriber receives are mapped onto.
func (u *UpTrack) LastSenderReport() *SenderReport {
	ref := u.ref.Load()
	if ref == nil {
		return nil
	}
	return ref.sr.Load()
}

func (l *upLayer) setSenderReport(ntp uint64, rtpTS uint32) {
	now := l.track.clock.Now()
	l.sr.Store(&SenderReport{NTPTime: ntp, RTPTime: rtpTS, ArrivedAt: now})
	l.ingestMu.Lock()
	l.rx.SenderReport(ntp, now.UnixNano())
	l.ingestMu.Unlock()
}

// packetSource is what a reader reads from: a *webrtc.TrackRemote in
// production, a plain function in benchmarks.
type packetSource interface {
	Read(b []byte) (int, error)
}

// Subscribe adds a subscriber (the recorder). On a simulcast track it
// receives the highest layer the publisher sends, as one continuous stream.
func (u *UpTrack) Subscribe(s Subscriber) {
	if !u.simulcast {
		if l := u.base(); l != nil {
			l.subscribe(s)
		}
		return
	}
	u.mu.Lock()
	if u.closed || u.generic[s] != nil {
		u.mu.Unlock()
		return
	}
	sw := newLayerSwitch(u, newContinuousSink(u, s))
	u.generic[s] = sw
	u.switches[sw] = struct{}{}
	u.mu.Unlock()
	sw.setTarget(u.topAvailable(u.clock.Now()))
}

// Unsubscribe removes a subscriber added with Subscribe.
func (u *UpTrack) Unsubscribe(s Subscriber) {
	if !u.simulcast {
		if l := u.base(); l != nil {
			l.unsubscribe(s)
		}
		return
	}
	u.mu.Lock()
	sw := u.generic[s]
	delete(u.generic, s)
	u.mu.Unlock()
	if sw != nil {
		u.dropSwitch(sw)
	}
}

// addSwitch makes a switch for a subscriber that manages its own layer
// choice (a downTrack).
func (u *UpTrack) addSwitch(sink switchSink) *layerSwitch {
	sw := newLayerSwitch(u, sink)
	u.mu.Lock()
	if !u.closed {
		u.switches[sw] = struct{}{}
	}
	u.mu.Unlock()
	return sw
}

func (u *UpTrack) dropSwitch(sw *layerSwitch) {
	u.mu.Lock()
	delete(u.switches, sw)
	u.mu.Unlock()
	sw.close()
}

// SubscriberCount is the number of subscribers.
func (u *UpTrack) SubscriberCount() int {
	if !u.simulcast {
		if l := u.base(); l != nil {
			return l.subscriberCount()
		}
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.switches)
}

// RequestKeyframe asks the publisher for a keyframe of every stream.
func (u *UpTrack) RequestKeyframe() {
	for _, l := range u.layerSnapshot() {
		if l != nil {
			l.requestKeyframe()
		}
	}
}

// close stops every stream and switch; subscribers are detached by the room.
func (u *UpTrack) close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	layers := u.layers
	sws := u.switches
	u.switches = map[*layerSwitch]struct{}{}
	clear(u.generic)
	u.mu.Unlock()
	for sw := range sws {
		sw.close()
	}
	for _, l := range layers {
		if l != nil {
			l.close()
		}
	}
}

// available reports whether layer l can be chosen now: it is sending, or
// we paused it ourselves (it comes back when asked), or it was asked to
// resume a moment ago.
func (u *UpTrack) availableLocked(l *upLayer, now time.Time) bool {
	if l == nil || l.isClosed() {
		return false
	}
	last := time.Unix(0, l.lastPkt.Load())
	if now.Sub(last) < layerIdle {
		return true
	}
	if u.announcedSet && u.announced&(1<<l.idx) == 0 {
		return true // paused by us
	}
	return now.Sub(u.resumedAt[l.idx]) < layerIdle
}

// layerIdle: a layer without packets for this long is taken as stopped by
// its publisher (browsers drop top layers when their uplink or CPU cannot
// carry them).
const layerIdle = 1500 * time.Millisecond

// resume has the publisher send layer i again now, if it was told to pause
// it, rather than at the next room tick (up to AllocInterval later): a
// subscriber just chose the layer and waits for its keyframe, and a browser
// ignores keyframe requests for a layer it does not encode. The first
// county to join a waiting supervisor waited up to half a second for this.
// Asynchronous: the caller may hold locks that announcing must not wait on,
// or be updateLayers itself.
func (u *UpTrack) resume(i int) {
	if !u.simulcast || i < 0 || i >= maxLayers {
		return
	}
	u.mu.Lock()
	paused := u.announcedSet && u.announced&(1<<i) == 0 && u.layers[i] != nil && !u.closed
	u.mu.Unlock()
	if !paused || !u.layersDue.CompareAndSwap(false, true) {
		return
	}
	go func() {
		u.layersDue.Store(false)
		u.announce(u.clock.Now(), true)
	}()
}

// topAvailable is the highest layer that can be chosen, or -1.
func (u *UpTrack) topAvailable(now time.Time) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := maxLayers - 1; i >= 0; i-- {
		if u.availableLocked(u.layers[i], now) {
			return i
		}
	}
	return -1
}

// updateLayers runs on the room tick: the recorder's switches follow the
// highest available layer, and the publisher is told which layers anybody
// receives so it can stop encoding the others.
func (u *UpTrack) updateLayers(now time.Time) {
	if !u.simulcast {
		return
	}
	top := u.topAvailable(now)
	u.mu.Lock()
	generic := make([]*layerSwitch, 0, len(u.generic))
	for _, sw := range u.generic {
		generic = append(generic, sw)
	}
	u.mu.Unlock()
	for _, sw := range generic {
		sw.setTarget(top)
	}
	u.announce(now, false)
}

// announce tells the publisher which layers the switches want. With
// resumeOnly it only adds layers: between ticks one subscriber's choice
// must not pause a layer that another is about to choose in the same
// tick, which would cost the publisher a restart and a keyframe.
func (u *UpTrack) announce(now time.Time, resumeOnly bool) {
	u.layersMu.Lock()
	defer u.layersMu.Unlock()
	// The switches' wishes are read without holding u.mu: a switch calls
	// into the track (LastSenderReport via the recorder) while holding its
	// own lock.
	u.mu.Lock()
	sws := make([]*layerSwitch, 0, len(u.switches))
	for sw := range u.switches {
		sws = append(sws, sw)
	}
	u.mu.Unlock()
	var watched uint8
	for _, sw := range sws {
		if t := sw.wanted(); t >= 0 {
			watched |= 1 << t
		}
	}
	u.mu.Lock()
	if resumeOnly {
		watched |= u.announced
	}
	if (u.announcedSet && watched == u.announced) || u.closed {
		u.mu.Unlock()
		return
	}
	var active []string
	for i, l := range u.layers {
		if l == nil {
			// Not received yet: browsers add upper layers only once their
			// uplink estimate allows, and a layer paused before it was
			// ever sent would never be seen, nor resumed.
			active = append(active, defaultRIDs[i])
			continue
		}
		if watched&(1<<i) != 0 {
			active = append(active, l.rid)
			if u.announced&(1<<i) == 0 {
				u.resumedAt[i] = now
			}
		}
	}
	u.announced, u.announcedSet = watched, true
	notify := u.notifyLayers
	u.mu.Unlock()
	if notify != nil {
		notify(active)
	}
}
