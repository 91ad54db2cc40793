package main

import (
	"sync/atomic"
	"time"
)

// Histogram bucket layout (microseconds): fine where the SFU's added delay
// lives, coarser beyond, so percentiles stay exact to the bucket width.
const (
	histFineWidth   = 20     // us, up to histFineEnd
	histFineEnd     = 10_000 // 10 ms
	histMidWidth    = 500    // us, up to histMidEnd
	histMidEnd      = 200_000
	histCoarseWidth = 10_000 // us, up to histCoarseEnd
	histCoarseEnd   = 5_000_000
	histFine        = histFineEnd / histFineWidth
	histMid         = (histMidEnd - histFineEnd) / histMidWidth
	histCoarse      = (histCoarseEnd - histMidEnd) / histCoarseWidth
	histBuckets     = histFine + histMid + histCoarse + 1 // + overflow
)

// delayHist counts durations in fixed buckets with atomic adds: the track
// goroutines of one participant record into one, and the runner reads it
// while they do. Windows are differences of snapshots.
type delayHist struct {
	b [histBuckets]atomic.Uint64
}

func histBucket(d time.Duration) int {
	us := d.Microseconds()
	switch {
	case us < 0:
		return 0
	case us < histFineEnd:
		return int(us / histFineWidth)
	case us < histMidEnd:
		return histFine + int((us-histFineEnd)/histMidWidth)
	case us < histCoarseEnd:
		return histFine + histMid + int((us-histMidEnd)/histCoarseWidth)
	}
	return histBuckets - 1
}

// bucketUpper is the upper edge of bucket i: percentiles report it, so they
// never understate.
func bucketUpper(i int) time.Duration {
	var us int64
	switch {
	case i < histFine:
		us = int64(i+1) * histFineWidth
	case i < histFine+histMid:
		us = histFineEnd + int64(i-histFine+1)*histMidWidth
	case i < histBuckets-1:
		us = histMidEnd + int64(i-histFine-histMid+1)*histCoarseWidth
	default:
		us = histCoarseEnd
	}
	return time.Duration(us) * time.Microsecond
}

func (h *delayHist) record(d time.Duration) { h.b[histBucket(d)].Add(1) }

// histSnap is a plain copy of the counts.
type histSnap [histBuckets]uint64

func (h *delayHist) snapshot(into *histSnap) {
	for i := range h.b {
		into[i] = h.b[i].Load()
	}
}

// add adds o into s.
func (s *histSnap) add(o *histSnap) {
	for i := range s {
		s[i] += o[i]
	}
}

// sub subtracts an earlier snapshot.
func (s *histSnap) sub(o *histSnap) {
	for i := range s {
		s[i] -= o[i]
	}
}

func (s *histSnap) count() uint64 {
	var n uint64
	for _, c := range s {
		n += c
	}
	return n
}

// percentile returns the upper edge of the bucket holding the p-th
// percentile (0 < p <= 100), or 0 for an empty histogram.
func (s *histSnap) percentile(p float64) time.Duration {
	total := s.count()
	if total == 0 {
		return 0
	}
	rank := uint64(float64(total)*p/100 + 0.5)
	rank = min(max(rank, 1), total)
	var seen uint64
	for i, c := range s {
		seen += c
		if seen >= rank {
			return bucketUpper(i)
		}
	}
	return bucketUpper(histBuckets - 1)
}

// max returns the upper edge of the highest non-empty bucket.
func (s *histSnap) max() time.Duration {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] > 0 {
			return bucketUpper(i)
		}
	}
	return 0
}
