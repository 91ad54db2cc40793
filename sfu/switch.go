package sfu

import (
	"sync"
	"time"

	"github.com/pion/rtp"
)

// switchSink receives what a layerSwitch selects: one simulcast layer at a
// time, cut over at a keyframe of the new layer.
type switchSink interface {
	WriteRTP(p *rtp.Packet) error
	Resync()
	// switchLayer comes right before the first packet of a new layer,
	// which is a keyframe start.
	switchLayer(l *upLayer)
	mediaReadier
}

// layerSwitch is one subscriber's view of a simulcast track. It subscribes
// to the layer it forwards (cur) and, while a change is pending, also to
// the layer it wants (target): the current layer keeps flowing until the
// target's first keyframe arrives, so a switch never freezes the picture.
// Target -1 means nothing is forwarded (the subscriber does not show it).
//
// Before anything is forwarded, a change of target keeps the previous
// target subscribed as well (first): the subscription starts on the top
// layer and the page's tile size, which comes a moment later, usually
// moves it down, after the top layer's keyframe was asked for. Whichever
// keyframe comes first is the subscriber's first picture; the switch then
// goes on to the target at the target's keyframe. Dropping the earlier
// layer made a browser joining a call wait for a second keyframe
// (docs/benchmarks.md, seventh session).
type layerSwitch struct {
	u    *UpTrack
	sink switchSink

	mu       sync.Mutex
	taps     [maxLayers]*layerTap
	tapLayer [maxLayers]*upLayer
	cur      int
	target   int
	first    int // while cur is -1: a previous target whose keyframe may come first (-1: none)
	kfAsk    time.Time
	closed   bool
}

// layerTap is the Subscriber a switch registers with one layer.
type layerTap struct {
	sw  *layerSwitch
	idx int
}

func (t *layerTap) WriteRTP(p *rtp.Packet) error { return t.sw.write(t.idx, p) }
func (t *layerTap) Resync()                      { t.sw.resync(t.idx) }
func (t *layerTap) mediaReady() bool             { return t.sw.sink.mediaReady() }

// writesInline implements inliner for a browser's switch, not the recorder's.
func (t *layerTap) writesInline() bool {
	i, ok := t.sw.sink.(inliner)
	return ok && i.writesInline()
}

func newLayerSwitch(u *UpTrack, sink switchSink) *layerSwitch {
	return &layerSwitch{u: u, sink: sink, cur: -1, target: -1, first: -1}
}

// setTarget chooses the layer to forward (-1: none). The change happens at
// the target's next keyframe, which is asked for now.
func (s *layerSwitch) setTarget(t int) {
	if t >= maxLayers {
		t = maxLayers - 1
	}
	layers := s.u.layerSnapshot()
	s.mu.Lock()
	if s.closed || t == s.target {
		s.mu.Unlock()
		return
	}
	switch {
	case t < 0:
		s.cur, s.first = -1, -1
	case s.cur < 0 && s.target >= 0:
		s.first = s.target
	}
	s.target = t
	var sub *upLayer
	var subTap *layerTap
	if t >= 0 && s.taps[t] == nil && layers[t] != nil {
		subTap = &layerTap{sw: s, idx: t}
		s.taps[t], s.tapLayer[t] = subTap, layers[t]
		sub = layers[t]
	}
	drops := s.dropTapsLocked()
	s.mu.Unlock()
	for _, d := range drops {
		d.l.unsubscribe(d.tap)
	}
	if sub != nil {
		sub.subscribe(subTap) // also asks for a keyframe
	}
	if t >= 0 {
		s.u.resume(t)
	}
}

type tapRef struct {
	l   *upLayer
	tap *layerTap
}

// dropTapsLocked detaches taps that are neither the current, the target
// nor the first-picture layer; the caller unsubscribes them after
// unlocking.
func (s *layerSwitch) dropTapsLocked() []tapRef {
	var out []tapRef
	for i, tap := range s.taps {
		if tap != nil && i != s.cur && i != s.target && i != s.first {
			out = append(out, tapRef{l: s.tapLayer[i], tap: tap})
			s.taps[i], s.tapLayer[i] = nil, nil
		}
	}
	return out
}

// write is the packet path of a simulcast subscription.
func (s *layerSwitch) write(idx int, p *rtp.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if idx == s.cur {
		return s.sink.WriteRTP(p)
	}
	fallback := s.cur < 0 && idx == s.first && idx != s.target
	if (idx != s.target && !fallback) || s.taps[idx] == nil {
		return nil // a packet in flight from a layer just left
	}
	if !isKeyframeStart(s.u.codec, p.Payload) {
		if fallback {
			return nil // the target is the layer asked for again
		}
		// Ask again now and then: the first keyframe may have gone by
		// before this tap was subscribed. Not while the subscriber's
		// connection is coming up: it asks once it is (requestKeyframes).
		if now := s.u.clock.Now(); now.Sub(s.kfAsk) >= keyframeRetry && s.sink.mediaReady() {
			s.kfAsk = now
			go s.tapLayer[idx].requestKeyframe()
		}
		return nil
	}
	if !s.sink.mediaReady() {
		// A keyframe someone else asked for, before this subscriber can
		// take media: cutting over now would spend it on nothing (the
		// sink drops it) and leave the subscriber waiting for the next
		// one, a keyframeRetry or more. It asks when it is up.
		return nil
	}
	s.cur, s.first = idx, -1
	s.u.ctr.layerSwitches.Add(1)
	s.sink.switchLayer(s.tapLayer[idx])
	for _, d := range s.dropTapsLocked() {
		// Safe under s.mu: unsubscribing takes only the layer's and the
		// writer's locks, never a switch's.
		d.l.unsubscribe(d.tap)
	}
	return s.sink.WriteRTP(p)
}

func (s *layerSwitch) resync(idx int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx == s.cur && !s.closed {
		s.sink.Resync()
	}
}

// wanted is the layer this subscriber asks for (-1: none).
func (s *layerSwitch) wanted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.target
}

// current is the layer forwarded now (-1: none yet).
func (s *layerSwitch) current() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// requestKeyframe asks for a keyframe of the layer the subscriber waits for
// (the target while a switch is pending, else the current one).
func (s *layerSwitch) requestKeyframe() {
	s.mu.Lock()
	idx := s.target
	if idx < 0 {
		idx = s.cur
	}
	var l *upLayer
	if idx >= 0 {
		l = s.tapLayer[idx]
	}
	s.mu.Unlock()
	if l != nil {
		l.requestKeyframe()
	}
}

func (s *layerSwitch) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	var drops []tapRef
	for i, tap := range s.taps {
		if tap != nil {
			drops = append(drops, tapRef{l: s.tapLayer[i], tap: tap})
			s.taps[i], s.tapLayer[i] = nil, nil
		}
	}
	s.mu.Unlock()
	for _, d := range drops {
		d.l.unsubscribe(d.tap)
	}
}

// continuousSink turns a switch's output into one continuous stream for a
// plain Subscriber (the recorder): sequence numbers run on across switches,
// and timestamps are mapped onto the first layer's timeline through the
// layers' sender reports (by wall clock when a report is missing), so
// LastSenderReport stays valid for lip sync.
type continuousSink struct {
	u       *UpTrack
	out     Subscriber
	m       munger
	pkt     rtp.Packet // reused: the packet passed on with rewritten numbers
	started bool
}

func newContinuousSink(u *UpTrack, out Subscriber) *continuousSink {
	return &continuousSink{u: u, out: out}
}

// mediaReady: the recorder takes media from the start.
func (c *continuousSink) mediaReady() bool { return true }

func (c *continuousSink) switchLayer(l *upLayer) {
	c.m.requestResync()
	if off, ok := c.u.timelineOffset(l); ok {
		c.m.hintTSOffset(off)
	}
	if c.started {
		c.out.Resync()
	}
}

func (c *continuousSink) Resync() { c.out.Resync() }

func (c *continuousSink) WriteRTP(p *rtp.Packet) error {
	seq, ts, ok := c.m.rewrite(p.SequenceNumber, p.Timestamp, c.u.clock.Now(), c.u.clockRate)
	if !ok {
		return nil
	}
	c.started = true
	c.pkt = *p
	c.pkt.SequenceNumber, c.pkt.Timestamp = seq, ts
	return c.out.WriteRTP(&c.pkt)
}

// timelineOffset is what to add to layer l's RTP timestamps to put them on
// the reference layer's timeline, from both layers' sender reports.
func (u *UpTrack) timelineOffset(l *upLayer) (uint32, bool) {
	ref := u.ref.Load()
	if ref == nil || ref == l {
		return 0, ref == l
	}
	a, b := ref.sr.Load(), l.sr.Load()
	if a == nil || b == nil || u.clockRate == 0 {
		return 0, false
	}
	// At b's NTP time the reference clock reads a.RTP + elapsed*rate.
	elapsed := float64(int64(b.NTPTime-a.NTPTime)) / (1 << 32)
	refAtB := int64(a.RTPTime) + int64(elapsed*float64(u.clockRate))
	return uint32(refAtB - int64(b.RTPTime)), true
}
