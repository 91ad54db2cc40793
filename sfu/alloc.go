package sfu

import (
	"sort"
	"time"
)

// The layer allocator decides, for one subscriber connection, which layer
// of each simulcast track it is sent. Two limits apply:
//
//   - the size the page shows the video at (video-size): the smallest layer
//     at least that tall; nothing at 0x0;
//   - the bandwidth estimate toward the subscriber (internal/bwe: Google
//     congestion control over the subscriber's TWCC feedback).
//
// GCC caps its estimate at 1.5 times what it sees delivered, so an
// estimate never proves room for a layer that is not being sent. The
// allocator therefore trusts the estimate for going down and probes going
// up: when nothing has been congested for `hold`, it raises one video by
// one layer. A probe that is followed by congestion within probeWindow
// doubles the hold (up to maxHold), so a link that cannot carry the next
// layer is probed ever more rarely; a probe that holds resets it.
//
// Congestion is a falling estimate that is below what the subscriber is
// sent. A low but steady estimate is not: GCC's estimate lags behind a
// probe by seconds and would undo every upgrade.
//
// The allocator is pure logic with an injected time; the participant feeds
// it on the room's tick.
type allocator struct {
	hold        time.Duration
	lastChange  time.Time
	lastUp      time.Time
	congestedAt time.Time
	prevEst     int
}

const (
	baseHold    = 2 * time.Second
	maxHold     = 16 * time.Second
	probeWindow = 5 * time.Second
	// probeKept: a probe without congestion for this long was right.
	probeKept = 10 * time.Second
)

// layerOption is one layer of a track as the allocator sees it.
type layerOption struct {
	available bool
	bitrate   int // bits per second
	height    int
}

// allocItem is one simulcast subscription.
type allocItem struct {
	layers   [maxLayers]layerOption
	maxLayer int // the largest layer the page's tile needs; -1: not shown
	cur      int // the layer chosen last time (-1: none)
	order    int // tie-break for priority: lower first (publication order)
}

// layerForHeight is the smallest layer at least h pixels tall (the top
// layer when none is); -1 for h == 0.
func layerForHeight(layers [maxLayers]layerOption, h int) int {
	if h <= 0 {
		return -1
	}
	top := -1
	for i, l := range layers {
		if !l.available {
			continue
		}
		top = i
		// 10% slack: a 640x360 layer serves a 380-pixel tile well enough.
		if l.height*11/10 >= h {
			return i
		}
	}
	if top < 0 {
		return maxLayers - 1
	}
	return top
}

// capOf is the layer an item may have at most: the highest available
// layer not above maxLayer, or the lowest available one when none is.
func capOf(it allocItem) int {
	if it.maxLayer < 0 {
		return -1
	}
	lowest := -1
	for i := maxLayers - 1; i >= 0; i-- {
		if !it.layers[i].available {
			continue
		}
		lowest = i
		if i <= it.maxLayer {
			return i
		}
	}
	return lowest
}

// floorOf is the lowest available layer (-1 when none or not shown).
func floorOf(it allocItem) int {
	if it.maxLayer < 0 {
		return -1
	}
	for i, l := range it.layers {
		if l.available {
			return i
		}
	}
	return -1
}

// nextUp is the next available layer above cur, not above lim (-1: none).
func nextUp(it allocItem, cur, lim int) int {
	for i := cur + 1; i <= lim && i < maxLayers; i++ {
		if it.layers[i].available {
			return i
		}
	}
	return -1
}

func rateOf(it allocItem, l int) int {
	if l < 0 {
		return 0
	}
	if r := it.layers[l].bitrate; r > 0 {
		return r
	}
	return nominalBitrate[l]
}

// decide returns the layer for each item. estimate is the bandwidth
// estimate in bits per second (0: none, which means no limit); fixed is
// what the connection carries besides these videos (audio, ordinary
// video).
func (a *allocator) decide(now time.Time, estimate, fixed int, items []allocItem) []int {
	if a.hold == 0 {
		a.hold = baseHold
	}
	out := make([]int, len(items))
	caps := make([]int, len(items))
	used := fixed
	for i, it := range items {
		caps[i] = capOf(it)
		c := it.cur
		if c < 0 || c > caps[i] || !it.layers[c].available {
			c = caps[i]
		}
		out[i] = c
		used += rateOf(it, c)
	}
	if estimate <= 0 {
		copy(out, caps)
		return out
	}
	prio := priorityOrder(items)

	falling := a.prevEst > 0 && estimate < a.prevEst*95/100
	a.prevEst = estimate
	if falling && estimate < used {
		if !a.lastUp.IsZero() && now.Sub(a.lastUp) < probeWindow {
			a.hold = min(2*a.hold, maxHold)
		}
		a.congestedAt = now
		a.lastChange = now
		// Start everyone at the bottom and raise in priority order while
		// the estimate allows.
		used = fixed
		for i, it := range items {
			out[i] = floorOf(it)
			used += rateOf(it, out[i])
		}
		for changed := true; changed; {
			changed = false
			for _, i := range prio {
				n := nextUp(items[i], out[i], caps[i])
				if n < 0 {
					continue
				}
				delta := rateOf(items[i], n) - rateOf(items[i], out[i])
				if used+delta <= estimate {
					used += delta
					out[i] = n
					changed = true
				}
			}
		}
		return out
	}

	if !a.lastUp.IsZero() && now.Sub(a.lastUp) >= probeKept && a.congestedAt.Before(a.lastUp) {
		a.hold = baseHold
	}
	// Upgrades the estimate already covers.
	for _, i := range prio {
		for {
			n := nextUp(items[i], out[i], caps[i])
			if n < 0 {
				break
			}
			delta := rateOf(items[i], n) - rateOf(items[i], out[i])
			if used+delta > estimate {
				break
			}
			used += delta
			out[i] = n
			a.lastChange = now
		}
	}
	// One probe when the link has been calm for long enough.
	if now.Sub(a.lastChange) >= a.hold && now.Sub(a.congestedAt) >= a.hold {
		for _, i := range prio {
			if n := nextUp(items[i], out[i], caps[i]); n >= 0 {
				out[i] = n
				a.lastChange, a.lastUp = now, now
				break
			}
		}
	}
	return out
}

// priorityOrder: larger tiles first (the main speaker view matters more
// than a thumbnail), then publication order.
func priorityOrder(items []allocItem) []int {
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(x, y int) bool {
		a, b := items[idx[x]], items[idx[y]]
		if a.maxLayer != b.maxLayer {
			return a.maxLayer > b.maxLayer
		}
		return a.order < b.order
	})
	return idx
}
