package bwe

import "math"

// usage is what the delay detector concludes about the path.
type usage uint8

const (
	usageNormal usage = iota
	usageOver         // queues are building: send less
	usageUnder        // queues are draining: hold
)

// Delay detector constants. The trendline's are WebRTC's; the threshold's
// adaptation rates are draft-ietf-rmcat-gcc's (up fast, down slowly).
// WebRTC's trendline pairs them the other way round (0.0087 up, 0.039
// down), which on a CPU-saturated server read scheduling jitter as
// congestion: at 1+40, 28 of 40 counties were held on the low layer.
const (
	burstNs       = 5_000_000 // packets sent within 5 ms form one group
	trendWindow   = 20        // groups in the trendline's regression
	smoothing     = 0.9       // of the accumulated delay
	trendGain     = 4.0
	maxDeltas     = 60
	overuseTimeMs = 10.0
	thresholdInit = 12.5
	thresholdMin  = 6.0
	thresholdMax  = 600.0
	kUp           = 0.01    // threshold adaptation when the trend is above it
	kDown         = 0.00018 // ... and below it
	maxAdaptMs    = 100.0
)

// group is packets sent within burstNs of the first.
type group struct {
	firstSend, lastSend int64 // ns, sender clock
	lastArrival         int64 // µs, receiver clock
	valid               bool
}

// trendline turns send and arrival times into a usage signal: the slope of
// the smoothed accumulated delay variation between groups, compared with a
// threshold that adapts to the path's jitter.
type trendline struct {
	cur, prev   group
	acc, smooth float64 // ms
	origin      int64   // µs: arrival of the first delta, the x axis' zero
	xs, ys      [trendWindow]float64
	n, head     int
	deltas      int

	threshold   float64
	lastAdapt   int64 // µs
	overMs      float64
	overCount   int
	prevTrend   float64
	state       usage
	originKnown bool
}

func (t *trendline) init() { t.threshold = thresholdInit; t.overMs = -1 }

// add takes one received packet in sequence order.
func (t *trendline) add(sendNs, arrivalUs int64) {
	switch {
	case !t.cur.valid:
		t.cur = group{firstSend: sendNs, lastSend: sendNs, lastArrival: arrivalUs, valid: true}
		return
	case sendNs < t.cur.firstSend:
		return // sent before the current group: reordered, ignore
	case sendNs-t.cur.firstSend <= burstNs:
		t.cur.lastSend = max(t.cur.lastSend, sendNs)
		t.cur.lastArrival = max(t.cur.lastArrival, arrivalUs)
		return
	}
	// sendNs opens a new group: the current one is complete.
	if t.prev.valid {
		sendDelta := float64(t.cur.lastSend-t.prev.lastSend) / 1e6
		arrDelta := float64(t.cur.lastArrival-t.prev.lastArrival) / 1e3
		if arrDelta >= 0 && sendDelta >= 0 {
			t.delta(arrDelta-sendDelta, sendDelta, t.cur.lastArrival)
		}
	}
	t.prev = t.cur
	t.cur = group{firstSend: sendNs, lastSend: sendNs, lastArrival: arrivalUs, valid: true}
}

// delta takes one inter-group delay variation d (ms).
func (t *trendline) delta(d, sendDeltaMs float64, arrivalUs int64) {
	if !t.originKnown {
		t.origin, t.lastAdapt, t.originKnown = arrivalUs, arrivalUs, true
	}
	t.deltas = min(t.deltas+1, 1000)
	t.acc += d
	t.smooth = smoothing*t.smooth + (1-smoothing)*t.acc
	t.xs[t.head] = float64(arrivalUs-t.origin) / 1e3
	t.ys[t.head] = t.smooth
	t.head = (t.head + 1) % trendWindow
	if t.n < trendWindow {
		t.n++
		return
	}
	slope, ok := t.slope()
	if !ok {
		return
	}
	t.detect(slope, sendDeltaMs, arrivalUs)
}

// slope is the least-squares slope of the window.
func (t *trendline) slope() (float64, bool) {
	var sx, sy float64
	for i := 0; i < t.n; i++ {
		sx += t.xs[i]
		sy += t.ys[i]
	}
	mx, my := sx/float64(t.n), sy/float64(t.n)
	var num, den float64
	for i := 0; i < t.n; i++ {
		dx := t.xs[i] - mx
		num += dx * (t.ys[i] - my)
		den += dx * dx
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

// detect compares the trend with the threshold. Overuse needs the trend
// above it for more than overuseTimeMs over at least two groups, and not
// falling; otherwise the previous conclusion stands.
func (t *trendline) detect(slope, sendDeltaMs float64, arrivalUs int64) {
	mt := float64(min(t.deltas, maxDeltas)) * slope * trendGain
	switch {
	case mt > t.threshold:
		if t.overMs < 0 {
			t.overMs = sendDeltaMs / 2
		} else {
			t.overMs += sendDeltaMs
		}
		t.overCount++
		if t.overMs > overuseTimeMs && t.overCount > 1 && slope >= t.prevTrend {
			t.overMs, t.overCount = 0, 0
			t.state = usageOver
		}
	case mt < -t.threshold:
		t.overMs, t.overCount = -1, 0
		t.state = usageUnder
	default:
		t.overMs, t.overCount = -1, 0
		t.state = usageNormal
	}
	t.prevTrend = slope
	t.adapt(mt, arrivalUs)
}

// adapt moves the threshold toward |mt|: slowly up, faster down, and not at
// all for spikes far above it (a sudden jump should stay overuse).
func (t *trendline) adapt(mt float64, arrivalUs int64) {
	a := math.Abs(mt)
	if a > t.threshold+15 {
		t.lastAdapt = arrivalUs
		return
	}
	k := kUp
	if a < t.threshold {
		k = kDown
	}
	dt := math.Min(float64(arrivalUs-t.lastAdapt)/1e3, maxAdaptMs)
	t.threshold += k * (a - t.threshold) * math.Max(dt, 0)
	t.threshold = math.Min(math.Max(t.threshold, thresholdMin), thresholdMax)
	t.lastAdapt = arrivalUs
}
