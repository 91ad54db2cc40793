package arrival

import (
	"sync/atomic"
	"time"
)

// Ring remembers when a stream's last packets arrived, by sequence
// number, for whoever handles them later to tell how long they took: the
// SFU's fan-out writers (one ring per layer) and the load tool's track
// readers (one per received stream). Writers and readers share it without
// a lock. A slot packs the arrival in microseconds (48 bits, compared
// modulo 2^48: 8.9 years) with the sequence number, so a reader that fell
// more than Slots packets behind reads a mismatch and skips the sample
// instead of timing a newer packet. 256 slots (2 KiB) cover a keyframe
// burst queued in a receive chain and then in a writer's queue.
type Ring [Slots]atomic.Uint64

// Slots is how many packets a Ring remembers.
const Slots = 256

const usMask = 1<<48 - 1

// Put records that packet seq arrived at unixNano.
func (r *Ring) Put(seq uint16, unixNano int64) {
	r[seq%Slots].Store(uint64(unixNano/1000)<<16 | uint64(seq))
}

// Holds reports whether packet seq's arrival is in its slot.
func (r *Ring) Holds(seq uint16) bool {
	v := r[seq%Slots].Load()
	return v != 0 && uint16(v) == seq
}

// Since returns how long before now packet seq arrived, or false if its
// slot holds another packet (or none).
func (r *Ring) Since(seq uint16, now time.Time) (time.Duration, bool) {
	v := r[seq%Slots].Load()
	if v == 0 || uint16(v) != seq {
		return 0, false
	}
	us := (uint64(now.UnixNano()/1000) - v>>16) & usMask
	return time.Duration(us) * time.Microsecond, true
}
