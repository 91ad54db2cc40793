// Package ntp converts between time.Time and the NTP timestamps of RTCP
// (RFC 3550 4): seconds since 1900 with a 32-bit fraction. The SFU writes
// them in its sender reports and reads their middle 32 bits back in
// receiver reports; the recorder reads publishers' sender reports.
package ntp

import "time"

// epochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const epochOffset = 2208988800

// From is t as a 64-bit NTP timestamp.
func From(t time.Time) uint64 {
	secs := uint64(t.Unix()) + epochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1_000_000_000
	return secs<<32 | frac
}

// Compact is the middle 32 bits of t's NTP timestamp (16.16), the form
// receiver reports echo a sender report's time in (LSR, RFC 3550 6.4.1).
func Compact(t time.Time) uint32 { return uint32(From(t) >> 16) }

// Time is the time.Time of a 64-bit NTP timestamp.
func Time(ntp uint64) time.Time {
	secs := int64(ntp>>32) - epochOffset
	nanos := int64((ntp & 0xffffffff) * 1_000_000_000 >> 32)
	return time.Unix(secs, nanos)
}
