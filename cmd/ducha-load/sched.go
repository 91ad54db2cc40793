package main

import (
	"cmp"
	"math"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
)

// Scheduling latency: how long goroutines waited, runnable, for a thread.
// On a box the server and the simulated participants share, the delay
// tail can come from either side's CPU queue rather than from forwarding;
// both processes' figures over the window say which.

// schedMetric is the Go runtime's histogram as the server exports it
// (client_golang's Go collector with the scheduler metrics).
const schedMetric = "go_sched_latencies_seconds"

// fwdDelayMetric is the server's own delay per forwarded packet, from its
// arrival at the server's socket to the last copy handed on: the part of
// the end-to-end delay that is the server's alone.
const fwdDelayMetric = "ducha_sfu_forward_delay_seconds"

// sendWaitMetric is the rest of the server's own delay: a forwarded
// packet's wait in the send batch for the system call.
const sendWaitMetric = "ducha_sfu_send_wait_seconds"

// cumBuckets is a cumulative histogram: count of observations <= le,
// sorted by le.
type cumBuckets []bucket

type bucket struct{ le, count float64 }

// promBuckets collects the buckets of histogram name from Prometheus text
// lines (name_bucket{le="..."} count); nil if there are none.
func promBuckets(lines map[string]float64, name string) cumBuckets {
	var out cumBuckets
	prefix := name + `_bucket{le="`
	for k, v := range lines {
		le, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		le, _, _ = strings.Cut(le, `"`)
		f, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		out = append(out, bucket{le: f, count: v})
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	return out
}

// selfSchedBuckets reads this process's scheduling latency histogram.
func selfSchedBuckets() cumBuckets {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	h := s[0].Value.Float64Histogram()
	out := make(cumBuckets, 0, len(h.Counts))
	var cum float64
	for i, c := range h.Counts {
		cum += float64(c)
		// Buckets[i+1] is bucket i's upper bound (+Inf for the last).
		out = append(out, bucket{le: h.Buckets[i+1], count: cum})
	}
	return out
}

// windowQuantile is the q-quantile, in milliseconds, of what was observed
// between two readings of the same histogram: the upper bound of the
// bucket it falls in (so an upper estimate). 0 when nothing was observed or
// the readings do not match.
func windowQuantile(start, end cumBuckets, q float64) float64 {
	if len(end) == 0 || (len(start) != 0 && len(start) != len(end)) {
		return 0
	}
	delta := func(i int) float64 {
		if len(start) == 0 {
			return end[i].count
		}
		return end[i].count - start[i].count
	}
	total := delta(len(end) - 1)
	if total <= 0 {
		return 0
	}
	for i := range end {
		if delta(i) >= q*total {
			if math.IsInf(end[i].le, 1) && i > 0 {
				return end[i-1].le * 1000
			}
			return end[i].le * 1000
		}
	}
	return 0
}

// msText prints a latency in milliseconds with the precision it has.
func msText(ms float64) string {
	if ms >= 10 {
		return strconv.FormatFloat(ms, 'f', 0, 64)
	}
	return strconv.FormatFloat(ms, 'f', 3, 64)
}
