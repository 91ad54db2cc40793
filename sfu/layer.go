package sfu

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ducha-dev/ducha/internal/arrival"
	"github.com/ducha-dev/ducha/internal/rtpraw"
	"github.com/ducha-dev/ducha/internal/rtprecv"
	"github.com/ducha-dev/ducha/internal/twccfb"
	"github.com/pion/rtp"
)

// maxLayers is the number of simulcast layers a track can have (rids q, h, f).
const maxLayers = 3

// defaultRIDs are the rids of PROTOCOL.md, by layer index.
var defaultRIDs = [maxLayers]string{"q", "h", "f"}

// layerIndex orders simulcast rids from the smallest layer up. Unknown rids
// (another client's naming) are placed by their order of arrival instead.
func layerIndex(rid string) (int, bool) {
	switch rid {
	case "q", "l", "low", "0":
		return 0, true
	case "h", "m", "mid", "1":
		return 1, true
	case "f", "hi", "high", "2":
		return 2, true
	}
	return 0, false
}

// Nominal layer sizes and rates, for layers whose keyframes have not told us
// their size yet and paused layers whose rate cannot be measured.
var (
	nominalHeight  = [maxLayers]int{180, 360, 720}
	nominalBitrate = [maxLayers]int{150_000, 500_000, 1_500_000}
)

// upLayer is one RTP stream of a published track: the whole track when it
// is not simulcast, one simulcast layer otherwise. Its reader stores each
// packet once in the packet cache and hands the sequence number to fan-out
// writers; it never waits for a subscriber.
type upLayer struct {
	track *UpTrack
	rid   string
	idx   int
	ssrc  uint32
	cache *packetCache

	// The receive side: ingest runs under ingestMu, called by the track's
	// reader (Pion's path) and by the ingress (ours) alike; rx keeps what
	// NACKs and receiver reports need (inbound.go), fb and twccID the
	// transport-wide feedback of the publisher's connection.
	ingestMu sync.Mutex
	rx       *rtprecv.Stream
	fb       *twccfb.Feedback // set before the layer is read
	twccID   uint8
	// inlinePkt is the packet being ingested, parsed for the groups the
	// reader writes itself (fanWriter.tryInline).
	inlinePkt rtp.Packet

	writers atomic.Pointer[[]*fanWriter] // read per packet without locking
	sr      atomic.Pointer[SenderReport]
	lastPkt atomic.Int64  // unix nanoseconds of the newest packet (or of the layer's start)
	arrived arrival.Ring  // when the last packets came, for the forwarding delay
	bytes   atomic.Uint64 // payload bytes in, for the layer's bitrate
	width   atomic.Uint32 // from the newest VP8 keyframe; 0 when unknown
	height  atomic.Uint32

	mu        sync.Mutex // guards the fields below
	subs      map[Subscriber]*fanWriter
	closed    bool
	lastKF    time.Time
	kfPending bool
	kfTimer   Timer
	// The bitrate, smoothed: measured by the room tick (which alone uses
	// rateBits, rateAt and rate), read by allocations.
	rateBits, rateAt int64
	rate             float64
	rateBps          atomic.Int64
}

func newUpLayer(u *UpTrack, rid string, idx int, ssrc uint32, cacheSize int) *upLayer {
	// The byte ring starts at about two seconds of what the stream
	// typically carries (audio 5 KB/s; simulcast q, h and a full layer or
	// ordinary video) and grows when it carries more.
	initBytes := 8 << 10
	if u.info.Kind == "video" {
		initBytes = 64 << 10
		if rid != "" {
			initBytes = [maxLayers]int{16 << 10, 32 << 10, 64 << 10}[idx]
		}
	}
	l := &upLayer{track: u, rid: rid, idx: idx, ssrc: ssrc, cache: newPacketCache(cacheSize, initBytes),
		rx: rtprecv.New(ssrc, u.clockRate, nackWindow(u.info.Kind)), subs: map[Subscriber]*fanWriter{}}
	empty := []*fanWriter{}
	l.writers.Store(&empty)
	// A new layer counts as sending: its first packet is being read.
	l.lastPkt.Store(u.clock.Now().UnixNano())
	return l
}

// readLoop is the layer's reader on Pion's path. It returns when the
// source fails (the track or connection closed).
func (l *upLayer) readLoop(src packetSource) {
	buf := make([]byte, slotSize)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		l.ingestAt(buf[:n], l.arrivedAt(buf[:n], l.track.clock.Now()))
	}
}

// arrivedAt is when a packet read from Pion reached the server: the
// socket's time where it took one (socketTimes), else now.
func (l *upLayer) arrivedAt(pkt []byte, now time.Time) time.Time {
	if len(pkt) >= 12 {
		if d, ok := l.arrived.Since(binary.BigEndian.Uint16(pkt[2:4]), now); ok && d < maxSocketAge {
			return now.Add(-d)
		}
	}
	return now
}

// ingestAt stores one packet and queues it for every writer; at is when it
// reached the server's socket. It is the hot path: no allocation, no lock
// held while a subscriber runs (ingestMu only orders the two readers of a
// layer: Pion's path and the ingress).
func (l *upLayer) ingestAt(pkt []byte, at time.Time) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return
	}
	l.ingestMu.Lock()
	defer l.ingestMu.Unlock()
	u := l.track
	u.ctr.packetsIn.Add(1)
	u.ctr.bytesIn.Add(uint64(len(pkt)))
	seq, atNs := binary.BigEndian.Uint16(pkt[2:4]), at.UnixNano()
	// Received, as far as the publisher's reports and feedback go, even
	// when moderation drops it below.
	l.rx.Received(seq, binary.BigEndian.Uint32(pkt[4:8]), atNs)
	if l.fb != nil && l.twccID != 0 {
		l.fb.RecordPacket(pkt, l.twccID, at)
	}
	if u.blocked.Load() {
		u.ctr.moderatedDrops.Add(1)
		return
	}
	now := u.clock.Now().UnixNano()
	if u.levelExt != 0 {
		if ext := rtpraw.Extension(pkt, u.levelExt); len(ext) > 0 {
			u.loudness.Store((3*u.loudness.Load() + levelLoudness(ext[0])) / 4)
			u.levelAt.Store(now)
		}
	}
	switch l.cache.store(seq, pkt, now) {
	case duplicate:
		u.ctr.duplicates.Add(1)
		return
	case tooOld, tooLarge:
		u.ctr.lateDrops.Add(1)
		return
	}
	l.lastPkt.Store(now)
	l.bytes.Add(uint64(len(pkt)))
	if u.simulcast && u.codec == codecVP8 { // layer sizes serve the allocator only
		if w, h, ok := vp8KeyframeSize(rtpPayload(pkt)); ok {
			l.width.Store(uint32(w))
			l.height.Store(uint32(h))
		}
	}
	l.arrived.Put(seq, atNs)
	parsed := false
	for _, w := range *l.writers.Load() {
		// Parsed once, and only for a group the reader may write: not while
		// it is behind the socket or the writer has packets in hand.
		if !parsed && w.mayInline() {
			parsed = l.inlinePkt.Unmarshal(pkt) == nil
		}
		if !parsed || !w.tryInline(seq, &l.inlinePkt) {
			w.enqueue(seq)
		}
	}
}

// subscribe adds a subscriber to this layer. For video it also asks the
// publisher for a keyframe so the new subscriber can start decoding quickly.
func (l *upLayer) subscribe(s Subscriber) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if _, ok := l.subs[s]; ok {
		l.mu.Unlock()
		return
	}
	// A subscriber that may wait (the recorder) never shares a writer with
	// browsers: it would hold them up, and keep their group from being
	// written by the reader (fanWriter.tryInline).
	opts, waits := l.track.opts, !writesInline(s)
	ws := *l.writers.Load()
	var w *fanWriter
	kind := 0 // writers of s's kind
	for _, c := range ws {
		if c.waits != waits {
			continue
		}
		kind++
		if w == nil || c.count() < w.count() {
			w = c
		}
	}
	if w == nil || (w.count() >= opts.perWriter && kind < opts.maxWriters) {
		w = newFanWriter(l, opts.queueLen, waits)
		nws := append(append(make([]*fanWriter, 0, len(ws)+1), ws...), w)
		l.writers.Store(&nws)
		go w.run()
	}
	w.add(s)
	l.subs[s] = w
	l.mu.Unlock()
	if r, ok := s.(mediaReadier); !ok || r.mediaReady() {
		l.requestKeyframe()
	}
}

// mediaReadier is a Subscriber that can tell it cannot deliver media yet
// (its connection is still coming up). A keyframe asked for it then would
// reach nobody and cost every other subscriber of the layer a keyframe's
// worth of bandwidth; it asks when it becomes ready instead
// (Participant.requestKeyframes).
type mediaReadier interface {
	mediaReady() bool
}

// unsubscribe removes a subscriber; its writer stops when it has none left.
func (l *upLayer) unsubscribe(s Subscriber) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.subs[s]
	if !ok {
		return
	}
	delete(l.subs, s)
	if w.remove(s) > 0 {
		return
	}
	ws := *l.writers.Load()
	nws := make([]*fanWriter, 0, len(ws))
	for _, c := range ws {
		if c != w {
			nws = append(nws, c)
		}
	}
	l.writers.Store(&nws)
	w.stop()
}

func (l *upLayer) subscriberCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// requestKeyframe asks the publisher for a keyframe of this layer, at most
// once per kfMinSpacing; a request inside the window is deferred to its end
// rather than lost, so a new subscriber never waits for the next periodic
// keyframe.
func (l *upLayer) requestKeyframe() {
	u := l.track
	if u.info.Kind != "video" {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	now := u.clock.Now()
	since := now.Sub(l.lastKF)
	if since >= u.opts.kfMinSpacing {
		l.lastKF = now
		l.mu.Unlock()
		l.firePLI()
		return
	}
	if !l.kfPending {
		l.kfPending = true
		l.kfTimer = u.clock.AfterFunc(u.opts.kfMinSpacing-since, l.deferredPLI)
	}
	l.mu.Unlock()
}

func (l *upLayer) deferredPLI() {
	l.mu.Lock()
	if l.closed || !l.kfPending {
		l.mu.Unlock()
		return
	}
	l.kfPending = false
	l.lastKF = l.track.clock.Now()
	l.mu.Unlock()
	l.firePLI()
}

func (l *upLayer) firePLI() {
	l.track.ctr.keyframeRequests.Add(1)
	if l.track.sendPLI != nil {
		l.track.sendPLI(l.ssrc)
	}
}

// close stops the writers; subscribers are detached by their owners.
func (l *upLayer) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	if l.kfTimer != nil {
		l.kfTimer.Stop()
	}
	l.track.opts.socket.unregister(l.ssrc, &l.arrived)
	ws := *l.writers.Load()
	empty := []*fanWriter{}
	l.writers.Store(&empty)
	clear(l.subs)
	l.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

func (l *upLayer) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// measure updates the layer's smoothed bitrate; called by the room tick.
func (l *upLayer) measure(now time.Time) float64 {
	bits := int64(l.bytes.Load() * 8)
	at := now.UnixNano()
	if l.rateAt != 0 && at > l.rateAt {
		inst := float64(bits-l.rateBits) * 1e9 / float64(at-l.rateAt)
		if l.rate == 0 {
			l.rate = inst
		} else {
			l.rate = 0.6*l.rate + 0.4*inst
		}
	}
	l.rateBits, l.rateAt = bits, at
	l.rateBps.Store(int64(l.rate))
	return l.rate
}

// heightOrNominal is the layer's picture height from its keyframes, or the
// nominal height of its index.
func (l *upLayer) heightOrNominal() int {
	if h := l.height.Load(); h > 0 {
		return int(h)
	}
	return nominalHeight[l.idx]
}

// rtpPayload returns the payload of a raw RTP packet (nil if malformed).
func rtpPayload(pkt []byte) []byte {
	if len(pkt) < 12 {
		return nil
	}
	off := 12 + int(pkt[0]&0x0f)*4
	if pkt[0]&0x10 != 0 {
		if len(pkt) < off+4 {
			return nil
		}
		off += 4 + int(binary.BigEndian.Uint16(pkt[off+2:off+4]))*4
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 && end > off {
		end -= int(pkt[end-1])
	}
	if off > end {
		return nil
	}
	return pkt[off:end]
}
