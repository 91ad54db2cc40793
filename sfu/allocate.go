package sfu

import "time"

// allocate chooses the layer of every simulcast track this participant
// receives (see alloc.go for the policy).
func (p *Participant) allocate(now time.Time) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	type sub struct {
		sw *layerSwitch
		up *UpTrack
	}
	var subs []sub
	var items []allocItem
	var single []*UpTrack
	for up, e := range p.downs {
		if e.dt.sw == nil {
			single = append(single, up)
			continue
		}
		it := allocItem{cur: e.dt.sw.wanted(), order: int(up.seq), layers: up.layerOptions(now)}
		it.maxLayer = maxLayers - 1
		if sz, ok := p.sizes[up.info.ID]; ok {
			it.maxLayer = layerForHeight(it.layers, sz.h)
		}
		subs = append(subs, sub{sw: e.dt.sw, up: up})
		items = append(items, it)
	}
	bwe := p.bwe
	slots := p.slots
	p.mu.Unlock()
	if len(items) == 0 {
		return
	}
	carried := make([]*UpTrack, 0, len(slots))
	for _, s := range slots {
		if src := s.source(); src != nil {
			carried = append(carried, src)
		}
	}
	fixed := fixedRate(single, carried)
	estimate := 0
	if bwe != nil {
		estimate = bwe.GetTargetBitrate()
	}
	p.allocMu.Lock()
	choice := p.alloc.decide(now, estimate, fixed, items)
	p.allocMu.Unlock()
	for i, s := range subs {
		if choice[i] != items[i].cur {
			p.log.Debug("layer chosen", "track", s.up.info.ID, "layer", choice[i], "was", items[i].cur,
				"estimate", estimate)
		}
		s.sw.setTarget(choice[i])
	}
}

// fixedRate is what a subscriber receives besides its simulcast layers, in
// bits per second: its other tracks, except audio held back because its
// publisher is not a loudest speaker, and what its speaker slots carry.
func fixedRate(single, slotSources []*UpTrack) int {
	fixed := 0
	for _, up := range single {
		if up.gated.Load() {
			continue
		}
		if l := up.base(); l != nil {
			fixed += int(l.rateBps.Load())
		}
	}
	for _, up := range slotSources {
		if l := up.base(); l != nil {
			fixed += int(l.rateBps.Load())
		}
	}
	return fixed
}

// layerOptions describes the track's layers for the allocator.
func (u *UpTrack) layerOptions(now time.Time) [maxLayers]layerOption {
	var out [maxLayers]layerOption
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, l := range u.layers {
		if l == nil {
			continue
		}
		out[i] = layerOption{available: u.availableLocked(l, now), bitrate: int(l.rateBps.Load()),
			height: l.heightOrNominal()}
	}
	return out
}

// tickLayers measures every layer, lets each participant choose its layers,
// then tells publishers which layers are watched.
func (r *Room) tickLayers() {
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		return
	}
	tracks := r.tracksLocked()
	parts := r.othersLocked(nil)
	r.mu.Unlock()

	now := r.sfu.cfg.Clock.Now()
	simulcast := false
	for _, t := range tracks {
		for _, l := range t.layerSnapshot() {
			if l != nil {
				l.measure(now)
			}
		}
		simulcast = simulcast || t.simulcast
	}
	if simulcast {
		for _, p := range parts {
			p.allocate(now)
		}
		for _, t := range tracks {
			t.updateLayers(now)
		}
	}

	r.mu.Lock()
	if !r.dead {
		r.allocTimer = r.sfu.cfg.Clock.AfterFunc(r.sfu.cfg.AllocInterval, r.tickLayers)
	}
	r.mu.Unlock()
}

// simulcastLayers counts the simulcast layer streams received in the room.
func (r *Room) simulcastLayers() int {
	n := 0
	for _, t := range r.Tracks() {
		if !t.simulcast {
			continue
		}
		for _, l := range t.layerSnapshot() {
			if l != nil {
				n++
			}
		}
	}
	return n
}
