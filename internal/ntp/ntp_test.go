package ntp

import (
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 250_000_000, time.UTC)
	if got := Time(From(at)); got.Sub(at).Abs() > time.Microsecond {
		t.Fatalf("round trip: %v, want %v", got, at)
	}
	// 12:00:00.25 UTC on 2026-11-27 is 4004769600.25 s after 1900.
	if f := From(at); f>>32 != 4004769600 || f&0xffffffff != 1<<30 {
		t.Fatalf("From: %d.%x", f>>32, f&0xffffffff)
	}
	if c := Compact(at); c != uint32(4004769600&0xffff)<<16|1<<14 {
		t.Fatalf("Compact: %x", c)
	}
}
