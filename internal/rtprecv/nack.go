package rtprecv

// nackLog remembers which of the last size sequence numbers arrived, and
// how often each missing one was NACKed. Positions are the number modulo
// size; size divides 2^16, so a 16-bit number and its extended form share
// a position and the wrap from 65535 to 0 needs no care.
type nackLog struct {
	bits   []uint64 // one bit per position: received
	counts []uint8  // NACKs sent per position, saturating
	mask   int64
	// start is the oldest extended number that can be missing: nothing
	// before the first packet, or before a reset, was ever expected here.
	start int64
	// gap is the newest number that was ever found missing (below start
	// while none was): a number can be missing only if it was skipped, so
	// Missing need not scan a window that lies wholly after gap, which is
	// what a lossless stream's window always does.
	gap int64
}

func (l *nackLog) init(size int) {
	if size == 0 {
		return
	}
	l.bits = make([]uint64, size/64)
	l.counts = make([]uint8, size)
	l.mask = int64(size - 1)
}

func (l *nackLog) size() int { return len(l.counts) }

func (l *nackLog) has(ext int64) bool {
	p := ext & l.mask
	return l.bits[p>>6]&(1<<(p&63)) != 0
}

func (l *nackLog) set(ext int64) {
	p := ext & l.mask
	l.bits[p>>6] |= 1 << (p & 63)
}

// reset forgets everything but ext, the newest number.
func (l *nackLog) reset(ext int64) {
	if l.bits == nil {
		return
	}
	clear(l.bits)
	clear(l.counts)
	l.start = ext
	l.gap = ext - 1
	l.set(ext)
}

// advance records that the highest number went from hi to newHi: the
// numbers skipped are missing, with a fresh count (their positions held
// numbers a window older). A jump past the whole window resets the log:
// that much loss at once is an outage or a discontinuity, and NACKing a
// window's worth of packets would only add load.
func (l *nackLog) advance(hi, newHi int64) {
	if l.bits == nil {
		return
	}
	if newHi-hi > int64(len(l.counts)) {
		l.reset(newHi)
		return
	}
	for e := hi + 1; e < newHi; e++ {
		p := e & l.mask
		l.bits[p>>6] &^= 1 << (p & 63)
		l.counts[p] = 0
	}
	if newHi-hi > 1 {
		l.gap = newHi - 1
	}
	l.set(newHi)
}

// late records a packet behind the highest but inside the window, and
// reports whether it is new (false for a duplicate). A number before
// start (a packet overtaken by the first one, or by the one that reset
// the log) moves start back: the numbers between are now expected too.
// Their positions have not been touched since the reset, so they read as
// missing with no NACK sent.
func (l *nackLog) late(ext int64) bool {
	if l.has(ext) {
		return false
	}
	l.set(ext)
	if ext < l.start {
		// The numbers between were never seen: missing now.
		l.gap = max(l.gap, l.start-1)
		l.start = ext
	}
	return true
}

// Missing appends to dst the sequence numbers that are missing, oldest first, and returns dst: those in the window of the last nackWindow sequence numbers up to the highest received, not received, and NACKed fewer than maxNacks times so far (each call that returns a number counts as one NACK of it; maxNacks 0 means no limit). A number newer than the highest received is never missing. Nothing for a stream made with nackWindow 0. Should allocate nothing when dst has capacity.
//
// Counts saturate at 255, so a maxNacks above 255 means no limit too.
// The NACK timing (how often to call, how long to wait before the first
// NACK) is the caller's: it knows the round trip time.
func (s *Stream) Missing(dst []uint16, maxNacks int) []uint16 {
	l := &s.nack
	if !s.started || l.bits == nil {
		return dst
	}
	hi := s.highest()
	from := max(l.start, hi-int64(len(l.counts))+1)
	for e := from; e < hi && e <= l.gap; e++ {
		p := e & l.mask
		// Skip whole words of received numbers: a large window is
		// mostly ones and is scanned on every NACK tick.
		if p&63 == 0 && e+63 < hi && l.bits[p>>6] == ^uint64(0) {
			e += 63
			continue
		}
		if l.bits[p>>6]&(1<<(p&63)) != 0 {
			continue
		}
		if maxNacks > 0 && int(l.counts[p]) >= maxNacks {
			continue
		}
		if l.counts[p] < 255 {
			l.counts[p]++
		}
		dst = append(dst, uint16(e))
	}
	return dst
}
