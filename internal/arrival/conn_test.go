package arrival

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// Over a real loopback socket: the wrapped conn keeps the address-port
// methods Pion's mux reads with, and the observer sees every datagram
// read, by either path.
func TestWrapObservesReads(t *testing.T) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var seen [][]byte
	w := Wrap(udp, time.Now, func(b []byte, _ time.Time) { seen = append(seen, append([]byte(nil), b...)) })
	ap, ok := w.(interface {
		ReadFromAddrPort([]byte) (int, netip.AddrPort, error)
		WriteToAddrPort([]byte, netip.AddrPort) (int, error)
	})
	if !ok {
		t.Fatal("a wrapped *net.UDPConn lost the address-port methods")
	}
	to := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := ap.WriteToAddrPort([]byte("one"), to); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo([]byte("two"), udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = w.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, _, err := ap.ReadFromAddrPort(buf); err != nil || string(buf[:n]) != "one" {
		t.Fatalf("ReadFromAddrPort: %q %v", buf[:n], err)
	}
	if n, _, err := w.ReadFrom(buf); err != nil || string(buf[:n]) != "two" {
		t.Fatalf("ReadFrom: %q %v", buf[:n], err)
	}
	if len(seen) != 2 || string(seen[0]) != "one" || string(seen[1]) != "two" {
		t.Fatalf("observed %q", seen)
	}
	// A conn without those methods is read through ReadFrom only.
	if _, ok := Wrap(plainOnly{udp}, time.Now, func([]byte, time.Time) {}).(interface {
		ReadFromAddrPort([]byte) (int, netip.AddrPort, error)
	}); ok {
		t.Error("a plain conn's wrapper claims the address-port path")
	}
}

type plainOnly struct{ net.PacketConn }

// A Taker keeps the datagrams it takes from the reader, by every read
// path (address-port, ReadFrom, a plain conn, the kernel-timed socket),
// and sees the sender's address.
func TestWrapTakingSkipsTaken(t *testing.T) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	self := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	var taken []string
	take := func(b []byte, from netip.AddrPort, _ time.Time) bool {
		if from != self {
			t.Errorf("from %v, want %v", from, self)
		}
		if b[0] == 't' {
			taken = append(taken, string(b))
			return true
		}
		return false
	}
	wraps := map[string]net.PacketConn{
		"udp":    WrapTaking(udp, time.Now, take),
		"plain":  WrapTaking(plainOnly{udp}, time.Now, take),
		"kernel": WrapUDPTaking(udp, time.Now, take),
	}
	for name, w := range wraps {
		taken = nil
		for _, m := range []string{"take1", "keep1", "take2", "take3", "keep2"} {
			if _, err := udp.WriteToUDPAddrPort([]byte(m), self); err != nil {
				t.Fatal(err)
			}
		}
		_ = udp.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		var got []string
		for range 2 {
			n, _, err := w.ReadFrom(buf)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = append(got, string(buf[:n]))
		}
		if len(got) != 2 || got[0] != "keep1" || got[1] != "keep2" || len(taken) != 3 {
			t.Errorf("%s: read %q, taken %q; want keep1, keep2 read and three taken", name, got, taken)
		}
	}
}

func TestRTP(t *testing.T) {
	rtp := []byte{0x80, 96, 0x12, 0x34, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	if ssrc, seq, ok := RTP(rtp); !ok || ssrc != 0xdeadbeef || seq != 0x1234 {
		t.Errorf("RTP: %x %x %v", ssrc, seq, ok)
	}
	marked := append([]byte{0x80, 96 | 0x80}, rtp[2:]...) // marker bit set, still RTP
	if _, _, ok := RTP(marked); !ok {
		t.Error("a marked RTP packet was refused")
	}
	for name, b := range map[string][]byte{
		"RTCP receiver report": {0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2},
		"RTCP sender report":   {0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 2},
		"STUN":                 {0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0},
		"DTLS":                 {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"short":                {0x80, 96, 0, 1},
	} {
		if _, _, ok := RTP(b); ok {
			t.Errorf("%s taken for RTP", name)
		}
	}
}

// The kernel's timestamp is when the datagram arrived, not when it was
// read: a reader that comes 100 ms late still gets the arrival time.
func TestWrapUDPKernelTime(t *testing.T) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if !EnableTimestamps(udp) {
		t.Skip("no kernel receive timestamps on this platform")
	}
	var got time.Time
	w := WrapUDP(udp, time.Now, func(_ []byte, at time.Time) { got = at })
	// The first socket to ask turns the kernel's stamping on from a work
	// queue, a moment later (before that, recvmsg stamps at the read).
	time.Sleep(100 * time.Millisecond)
	sent := time.Now()
	if _, err := w.WriteTo([]byte("x"), udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	_ = w.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	ap := w.(interface {
		ReadFromAddrPort([]byte) (int, netip.AddrPort, error)
	})
	if _, _, err := ap.ReadFromAddrPort(buf); err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	if got.Before(sent.Add(-time.Second)) || read.Sub(got) < 90*time.Millisecond {
		t.Fatalf("arrival %v: sent %v, read %v; want the kernel's time, about the send", got, sent, read)
	}
	// ReadFrom goes the same way.
	if _, err := w.WriteTo([]byte("y"), udp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, _, err := w.ReadFrom(buf); err != nil || time.Since(got) < 40*time.Millisecond {
		t.Fatalf("ReadFrom: %v, arrival %v ago", err, time.Since(got))
	}
}

func TestKernelTimeParse(t *testing.T) {
	if _, ok := KernelTime(nil); ok {
		t.Error("a time from no control message")
	}
	if _, ok := KernelTime([]byte{0xff, 0xff}); ok {
		t.Error("a time from a truncated control message")
	}
}

// timedConn says when its datagrams arrived, as udpbatch.Conn does.
type timedConn struct {
	net.PacketConn
	at time.Time
}

func (c timedConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	panic("read through ReadFromAddrPortAt")
}

func (c timedConn) WriteToAddrPort(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }

func (c timedConn) ReadFromAddrPortAt(b []byte) (int, netip.AddrPort, time.Time, error) {
	return copy(b, "z"), netip.AddrPort{}, c.at, nil
}

// A conn that knows its arrival times gives them to the observer; one
// that does not know a datagram's leaves it to the read time.
func TestWrapTimedReader(t *testing.T) {
	kernel, read := time.Unix(1_800_000_000, 0), time.Unix(1_800_000_001, 0)
	for _, c := range []struct{ at, want time.Time }{{kernel, kernel}, {time.Time{}, read}} {
		var got time.Time
		w := Wrap(timedConn{at: c.at}, func() time.Time { return read }, func(_ []byte, at time.Time) { got = at })
		buf := make([]byte, 4)
		if _, _, err := w.(addrPortRW).ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(c.want) {
			t.Errorf("conn says %v: observed %v, want %v", c.at, got, c.want)
		}
	}
}
