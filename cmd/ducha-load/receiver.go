package main

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/ducha-dev/ducha/internal/arrival"
	"github.com/ducha-dev/ducha/signaling/client"
)

// seqWindow is how many sequence numbers a receiver remembers, to tell
// retransmissions and duplicates apart: 40 s of a 1 Mbit/s video stream,
// in 512 bytes.
const seqWindow = 4096

// recvTrack is what one participant received on one remote track. Only the
// track's reader goroutine writes; the runner reads the atomics at any time.
type recvTrack struct {
	streamID string
	video    bool
	hist     *delayHist // shared by the participant's tracks; send to arrival at the socket
	// stackHist: send to the packet's read from Pion, after the client's
	// own receive chain (the delay measured before socket arrivals).
	stackHist *delayHist
	arrived   *arrival.Ring // when the track's packets reached the socket; nil: not timed there
	now       func() time.Time
	slot      *slotStats // a speaker slot's; nil for a participant's track

	packets atomic.Int64 // every packet read, duplicates included
	bytes   atomic.Int64
	unique  atomic.Int64 // distinct sequence numbers within the window
	dups    atomic.Int64
	tooLate atomic.Int64 // older than the window: cannot be told from a duplicate
	lowest  atomic.Int64 // first extended sequence number; valid once started
	highest atomic.Int64
	started atomic.Bool
	// Publisher counters from the trailers: the SFU rewrites sequence
	// numbers (and hides its own drops from them), the counters it cannot.
	// Each simulcast layer counts its own packets, so the counters run in
	// segments, one per stretch of one layer: ctrFirst, ctrLast and
	// ctrUnique are the current segment's, ctrDoneExp and ctrDoneUniq
	// sum the finished ones.
	ctrFirst, ctrLast       atomic.Int64
	ctrUnique               atomic.Int64 // distinct packets of the segment
	ctrDoneExp, ctrDoneUniq atomic.Int64
	ctrStarted              atomic.Bool
	layer                   atomic.Int64 // trailer layer of the newest packet: index, layerPlain or layerUnknown
	layerSwitches           atomic.Int64 // changes of layer after the first
	keyWidth, keyHeight     atomic.Int64 // picture size of the newest keyframe
	firstFrameAt            atomic.Int64 // Unix ns when the first keyframe was complete; 0 before
	plis                    atomic.Int64 // keyframe requests sent
	// untimed: in-order packets with a send time but no socket arrival
	// (the ring slot was reused: the reader lagged its socket by
	// arrival.Slots packets); their delay is taken at the read.
	untimed atomic.Int64

	// requestKeyframe sends a PLI for this track (nil: never).
	requestKeyframe func()

	// Reader goroutine only.
	seen       [seqWindow / 64]uint64
	ctrFromSeq int64 // extended sequence number where the counter segment starts
	kfStart    int64 // first keyframe: extended sequence numbers of its start and end, -1 unknown
	kfEnd      int64
	lastPLI    time.Time

	// In-order packets without a trailer since the last trailer: how many,
	// and the first one's extended sequence number.
	untrailered, untraileredFrom int64
}

// pliInterval spaces the keyframe requests of a receiver that has no
// decodable start, as a browser's video receiver does.
const pliInterval = 500 * time.Millisecond

func newRecvTrack(streamID string, video bool, hist, stackHist *delayHist, arrived *arrival.Ring,
	now func() time.Time) *recvTrack {
	t := &recvTrack{streamID: streamID, video: video, hist: hist, stackHist: stackHist, arrived: arrived, now: now,
		kfStart: -1, kfEnd: -1}
	t.layer.Store(layerUnknown)
	return t
}

// packetReader is what the loop reads: a *webrtc.TrackRemote.
type packetReader interface {
	Read(b []byte) (int, error)
}

// readLoop reads until the track ends. It allocates nothing per packet.
func (t *recvTrack) readLoop(src packetReader) {
	buf := make([]byte, 1600)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		t.onPacket(buf[:n], t.now())
	}
}

// rtpFields parses what the receiver needs from an RTP packet without
// allocating: sequence number, marker, payload.
func rtpFields(b []byte) (seq uint16, marker bool, payload []byte, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, false, nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // header extension: 4-byte header, then length in words
		if len(b) < off+4 {
			return 0, false, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 { // padding: the last byte says how much
		end -= int(b[end-1])
	}
	if off > end {
		return 0, false, nil, false
	}
	return binary.BigEndian.Uint16(b[2:4]), b[1]&0x80 != 0, b[off:end], true
}

func (t *recvTrack) onPacket(b []byte, now time.Time) {
	seq, marker, payload, ok := rtpFields(b)
	if !ok {
		return
	}
	t.packets.Add(1)
	t.bytes.Add(int64(len(b)))
	ext, fresh, inOrder := t.mark(seq)
	if !fresh {
		return
	}
	switch tr, ok := client.ParseTrailer(payload); {
	case ok:
		// Retransmissions carry their first send time: their delay is the
		// repair's, not the forwarding's.
		if inOrder {
			sent := time.Unix(0, tr.SendUnixNano)
			d := t.sinceSent(seq, sent, now)
			t.hist.record(d)
			t.stackHist.record(now.Sub(sent))
			if t.slot != nil {
				t.slot.hist.record(d)
			}
		}
		t.onTrailer(tr, ext, inOrder)
		if t.slot != nil {
			t.slot.onPacket(slotSource(payload))
		}
		if ext >= t.ctrFromSeq {
			t.ctrUnique.Add(1)
		}
	case inOrder:
		// The start of a large keyframe has no trailer. Which segment it
		// belongs to shows with the next trailer: after a layer switch,
		// the new one.
		if t.untrailered == 0 {
			t.untraileredFrom = ext
		}
		t.untrailered++
	case t.ctrStarted.Load() && ext >= t.ctrFromSeq:
		t.ctrUnique.Add(1) // a late repair
	}
	if t.video {
		if w, h, ok := client.VP8KeyframeSize(payload); ok && inOrder {
			t.keyWidth.Store(int64(w))
			t.keyHeight.Store(int64(h))
		}
		if t.firstFrameAt.Load() == 0 {
			t.trackFirstFrame(ext, marker, payload, now)
		}
	}
}

// sinceSent is packet seq's delay from its send time to its arrival at
// the socket, or to now (its read) when the socket's time is gone.
func (t *recvTrack) sinceSent(seq uint16, sent, now time.Time) time.Duration {
	if t.arrived != nil {
		if ago, ok := t.arrived.Since(seq, now); ok {
			return now.Sub(sent) - ago
		}
	}
	t.untimed.Add(1)
	return now.Sub(sent)
}

// onTrailer records the publisher's counter and the layer.
func (t *recvTrack) onTrailer(tr client.Trailer, ext int64, inOrder bool) {
	ctr, layer := int64(tr.Counter), int64(tr.Layer)
	// A segment that starts here starts with the untrailered packets just
	// before; the SFU keeps sequence numbers continuous, so their counters
	// follow from the distance (lost ones included).
	from, first, pending := ext, ctr, int64(0)
	if inOrder && t.untrailered > 0 {
		from, first, pending = t.untraileredFrom, ctr-(ext-t.untraileredFrom), t.untrailered
	}
	if inOrder {
		t.untrailered = 0
	}
	cur := t.layer.Load()
	switch {
	case !t.ctrStarted.Load():
		t.startSegment(first, ctr, from, pending)
		t.layer.Store(layer)
		t.ctrStarted.Store(true)
	case layer != cur && inOrder:
		// The SFU switched layers (at a keyframe of the new one): close
		// the old layer's segment.
		exp := t.ctrLast.Load() - t.ctrFirst.Load() + 1
		t.ctrDoneExp.Add(exp)
		t.ctrDoneUniq.Add(min(t.ctrUnique.Load(), exp))
		t.startSegment(first, ctr, from, pending)
		t.layer.Store(layer)
		t.layerSwitches.Add(1)
	case layer != cur:
		// A late repair of the layer left behind: no counter to compare.
	default:
		t.ctrUnique.Add(pending)
		if ctr > t.ctrLast.Load() {
			t.ctrLast.Store(ctr)
		}
	}
}

func (t *recvTrack) startSegment(first, last, fromSeq, unique int64) {
	t.ctrFirst.Store(first)
	t.ctrLast.Store(last)
	t.ctrUnique.Store(unique)
	t.ctrFromSeq = fromSeq
}

// mark records an extended sequence number. fresh is false for duplicates
// and for packets too old to judge; inOrder is true when it is the newest.
func (t *recvTrack) mark(seq uint16) (ext int64, fresh, inOrder bool) {
	if !t.started.Load() {
		ext = int64(seq) + 1<<16 // room below for packets that arrive late
		t.lowest.Store(ext)
		t.highest.Store(ext)
		t.started.Store(true)
		t.setBit(ext)
		t.unique.Add(1)
		return ext, true, true
	}
	hi := t.highest.Load()
	ext = hi + int64(int16(seq-uint16(hi)))
	switch {
	case ext > hi:
		if ext-hi >= seqWindow {
			clear(t.seen[:])
		} else {
			for s := hi + 1; s < ext; s++ {
				t.clearBit(s)
			}
		}
		t.highest.Store(ext)
		t.setBit(ext)
		t.unique.Add(1)
		return ext, true, true
	case hi-ext >= seqWindow:
		t.tooLate.Add(1)
		return ext, false, false
	case t.bit(ext):
		t.dups.Add(1)
		return ext, false, false
	}
	t.setBit(ext)
	t.unique.Add(1)
	if ext < t.lowest.Load() {
		t.lowest.Store(ext)
	}
	return ext, true, false
}

func (t *recvTrack) bit(s int64) bool { return t.seen[(s/64)%(seqWindow/64)]&(1<<(s%64)) != 0 }
func (t *recvTrack) setBit(s int64)   { t.seen[(s/64)%(seqWindow/64)] |= 1 << (s % 64) }
func (t *recvTrack) clearBit(s int64) { t.seen[(s/64)%(seqWindow/64)] &^= 1 << (s % 64) }

// trackFirstFrame notes when the first keyframe is complete: its start,
// its last packet and everything between received.
func (t *recvTrack) trackFirstFrame(ext int64, marker bool, payload []byte, now time.Time) {
	// A later keyframe replaces one that ended incomplete: its lost
	// packets may never be repaired (a weak link, a layer switch), and a
	// decoder would start from the later one.
	if t.kfStart < 0 || ext < t.kfStart || (t.kfEnd >= 0 && ext > t.kfEnd) {
		if vp8KeyframeStart(payload) {
			t.kfStart, t.kfEnd = ext, -1
		} else if t.kfStart < 0 {
			// Video that does not start with a keyframe cannot be decoded:
			// a browser asks for one, and so do we.
			if t.requestKeyframe != nil && now.Sub(t.lastPLI) >= pliInterval {
				t.lastPLI = now
				t.plis.Add(1)
				t.requestKeyframe()
			}
			return
		}
	}
	if marker && ext >= t.kfStart && (t.kfEnd < 0 || ext < t.kfEnd) {
		t.kfEnd = ext
	}
	if t.kfEnd < 0 || t.highest.Load()-t.kfStart >= seqWindow {
		return
	}
	for s := t.kfStart; s <= t.kfEnd; s++ {
		if !t.bit(s) {
			return
		}
	}
	t.firstFrameAt.Store(now.UnixNano())
}

// vp8KeyframeStart reports whether a VP8 RTP payload (RFC 7741) starts a
// keyframe: S set, partition 0, and the frame tag's P bit clear.
func vp8KeyframeStart(p []byte) bool {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 {
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte and what it announces
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // picture id, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 {
			i++
		}
		if x&0x30 != 0 {
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0
}

// trackCounts is a snapshot of a recvTrack's counters.
type trackCounts struct {
	packets, bytes, unique, expected int64
	ctrExpected, ctrUnique           int64
	plis, untimed                    int64
	layer, layerSwitches             int64
	keyWidth, keyHeight              int64
	// Speaker slots: packets by source, and speaker changes.
	heard       map[uint32]int64
	slotChanges int64
}

func (t *recvTrack) counts() trackCounts {
	c := trackCounts{packets: t.packets.Load(), bytes: t.bytes.Load(), unique: t.unique.Load(), plis: t.plis.Load(),
		untimed: t.untimed.Load()}
	if t.started.Load() {
		c.expected = t.highest.Load() - t.lowest.Load() + 1
	}
	if t.ctrStarted.Load() {
		exp := t.ctrLast.Load() - t.ctrFirst.Load() + 1
		c.ctrExpected = t.ctrDoneExp.Load() + exp
		c.ctrUnique = t.ctrDoneUniq.Load() + min(t.ctrUnique.Load(), exp)
	}
	c.layer, c.layerSwitches = t.layer.Load(), t.layerSwitches.Load()
	c.keyWidth, c.keyHeight = t.keyWidth.Load(), t.keyHeight.Load()
	if t.slot != nil {
		c.heard, c.slotChanges = t.slot.snapshot(), t.slot.changes.Load()
	}
	return c
}
