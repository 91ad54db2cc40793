package sfu

import (
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// fanWriter serves a group of subscribers of one track. The reader hands it
// sequence numbers through a bounded queue; the writer copies each packet
// out of the cache once and writes it to every subscriber of its group.
//
// Drop policy: when the queue is full the reader drops the packet for this
// writer and counts it. For video the writer then skips everything up to the
// next keyframe (asking the publisher for one) and tells its subscribers to
// resync, so they see a clean cut instead of a broken frame; audio just
// loses the packet.
//
// A small group whose subscribers never wait (inliner) is written by the
// reader itself while the writer has nothing in hand and the reader keeps
// up with the socket (tryInline): handing one packet to another goroutine
// costs more than writing it to one to a few subscribers (docs/media.md,
// "The media socket").
type fanWriter struct {
	l        *upLayer
	queue    chan uint16
	subs     atomic.Pointer[[]Subscriber]
	overflow atomic.Bool
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex // serialises add/remove (copy-on-write of subs)
	// inline: the group may be written by the reader (few subscribers,
	// all inliners); set by add and remove.
	inline atomic.Bool
	// pending counts packets handed to the goroutine and not yet written,
	// plus one while the reader writes inline: the reader only writes
	// when it is zero, so packets leave in order and the fields below
	// have one user at a time.
	pending      atomic.Int32
	waitKeyframe bool
	// waits: the group's subscribers may wait (not inliners); set at
	// creation, so the two kinds never share a writer.
	waits bool
}

// inliner is a Subscriber whose WriteRTP never waits: for the network
// (queued sends, ICE-TCP's queue that drops), a disk or a slow peer. The
// reader may call it itself.
type inliner interface {
	writesInline() bool
}

// writesInline reports whether s is an inliner that says its writes never
// wait.
func writesInline(s Subscriber) bool {
	i, ok := s.(inliner)
	return ok && i.writesInline()
}

func newFanWriter(l *upLayer, queueLen int, waits bool) *fanWriter {
	w := &fanWriter{l: l, queue: make(chan uint16, queueLen), done: make(chan struct{}), waits: waits}
	empty := []Subscriber{}
	w.subs.Store(&empty)
	return w
}

// enqueue never blocks: a full queue is a drop.
func (w *fanWriter) enqueue(seq uint16) {
	w.pending.Add(1)
	select {
	case w.queue <- seq:
	default:
		w.pending.Add(-1)
		w.overflow.Store(true)
		w.l.track.ctr.queueDrops.Add(1)
	}
}

// tryInline writes the packet just ingested (pkt, parsed) to the group on
// the caller's goroutine, if the group allows it and the writer's
// goroutine has nothing in hand; false: enqueue it instead. Called by the
// layer's reader under ingestMu.
func (w *fanWriter) tryInline(seq uint16, pkt *rtp.Packet) bool {
	if !w.mayInline() || !w.pending.CompareAndSwap(0, 1) {
		return false
	}
	w.deliver(seq, pkt)
	w.pending.Add(-1)
	w.l.track.ctr.inlinePackets.Add(1)
	return true
}

// mayInline: the reader may write this group now (tryInline), as far as
// can be told before it parses the packet for it.
func (w *fanWriter) mayInline() bool {
	b := w.l.track.opts.behind
	return w.inline.Load() && (b == nil || !b.Load()) && w.pending.Load() == 0
}

func (w *fanWriter) count() int { return len(*w.subs.Load()) }

func (w *fanWriter) add(s Subscriber) {
	w.mu.Lock()
	old := *w.subs.Load()
	n := append(append(make([]Subscriber, 0, len(old)+1), old...), s)
	w.store(n)
	w.mu.Unlock()
}

// remove drops s and returns how many subscribers remain.
func (w *fanWriter) remove(s Subscriber) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := *w.subs.Load()
	n := make([]Subscriber, 0, len(old))
	for _, c := range old {
		if c != s {
			n = append(n, c)
		}
	}
	w.store(n)
	return len(n)
}

// store publishes the group; under w.mu.
func (w *fanWriter) store(subs []Subscriber) {
	inline := !w.waits && len(subs) <= w.l.track.opts.inlineMax
	for _, s := range subs {
		inline = inline && writesInline(s)
	}
	w.subs.Store(&subs)
	w.inline.Store(inline)
}

func (w *fanWriter) stop() { w.stopOnce.Do(func() { close(w.done) }) }

func (w *fanWriter) run() {
	buf := make([]byte, slotSize)
	var pkt rtp.Packet
	for {
		select {
		case <-w.done:
			return
		case seq := <-w.queue:
			w.forward(seq, buf, &pkt)
			w.pending.Add(-1)
		}
	}
}

// forward sends one cached packet to the group. It is split from run so the
// benchmark can drive it without goroutines.
func (w *fanWriter) forward(seq uint16, buf []byte, pkt *rtp.Packet) {
	n := w.l.cache.get(seq, buf)
	if n == 0 {
		// Overwritten before this writer got to it: the byte ring was too
		// small for how far the writer lagged (it grows now). Same policy
		// as a full queue: a clean cut at the next keyframe, never a
		// broken frame.
		w.l.track.ctr.queueDrops.Add(1)
		w.overflow.Store(true)
		w.l.cache.markStarved()
		return
	}
	if pkt.Unmarshal(buf[:n]) != nil {
		return
	}
	w.deliver(seq, pkt)
}

// deliver writes one packet to every subscriber of the group.
func (w *fanWriter) deliver(seq uint16, pkt *rtp.Packet) {
	u := w.l.track
	if w.overflow.Swap(false) && u.codec != codecNone {
		w.waitKeyframe = true
		w.l.requestKeyframe()
	}
	subs := *w.subs.Load()
	if w.waitKeyframe {
		if !isKeyframeStart(u.codec, pkt.Payload) {
			u.ctr.keyframeSkips.Add(1)
			return
		}
		w.waitKeyframe = false
		for _, s := range subs {
			s.Resync()
		}
	}
	if c := u.opts.cork; c != nil {
		c.Cork()
		defer c.Uncork()
	}
	for _, s := range subs {
		if s.WriteRTP(pkt) != nil {
			u.ctr.writeErrors.Add(1)
		}
	}
	if d, ok := w.l.arrived.Since(seq, u.clock.Now()); ok {
		u.ctr.fwdDelay.observe(d)
	} else {
		u.ctr.fwdDelay.missed.Add(1)
	}
}
