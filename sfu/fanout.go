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
type fanWriter struct {
	l        *upLayer
	queue    chan uint16
	subs     atomic.Pointer[[]Subscriber]
	overflow atomic.Bool
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.Mutex // serialises add/remove (copy-on-write of subs)
}

func newFanWriter(l *upLayer, queueLen int) *fanWriter {
	w := &fanWriter{l: l, queue: make(chan uint16, queueLen), done: make(chan struct{})}
	empty := []Subscriber{}
	w.subs.Store(&empty)
	return w
}

// enqueue never blocks: a full queue is a drop.
func (w *fanWriter) enqueue(seq uint16) {
	select {
	case w.queue <- seq:
	default:
		w.overflow.Store(true)
		w.l.track.ctr.queueDrops.Add(1)
	}
}

func (w *fanWriter) count() int { return len(*w.subs.Load()) }

func (w *fanWriter) add(s Subscriber) {
	w.mu.Lock()
	old := *w.subs.Load()
	n := append(append(make([]Subscriber, 0, len(old)+1), old...), s)
	w.subs.Store(&n)
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
	w.subs.Store(&n)
	return len(n)
}

func (w *fanWriter) stop() { w.stopOnce.Do(func() { close(w.done) }) }

func (w *fanWriter) run() {
	buf := make([]byte, slotSize)
	var pkt rtp.Packet
	waitKeyframe := false
	for {
		select {
		case <-w.done:
			return
		case seq := <-w.queue:
			w.forward(seq, buf, &pkt, &waitKeyframe)
		}
	}
}

// forward sends one cached packet to the group. It is split from run so the
// benchmark can drive it without goroutines.
func (w *fanWriter) forward(seq uint16, buf []byte, pkt *rtp.Packet, waitKeyframe *bool) {
	u := w.l.track
	if w.overflow.Swap(false) && u.codec != codecNone {
		*waitKeyframe = true
		w.l.requestKeyframe()
	}
	n := w.l.cache.get(seq, buf)
	if n == 0 {
		// Overwritten before this writer got to it: the byte ring was too
		// small for how far the writer lagged (it grows now). Same policy
		// as a full queue: a clean cut at the next keyframe, never a
		// broken frame.
		u.ctr.queueDrops.Add(1)
		w.overflow.Store(true)
		w.l.cache.markStarved()
		return
	}
	if pkt.Unmarshal(buf[:n]) != nil {
		return
	}
	subs := *w.subs.Load()
	if *waitKeyframe {
		if !isKeyframeStart(u.codec, pkt.Payload) {
			u.ctr.keyframeSkips.Add(1)
			return
		}
		*waitKeyframe = false
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
