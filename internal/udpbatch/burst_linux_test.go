package udpbatch

import (
	"net"
	"testing"
	"time"
)

// Buffered counts down what one recvmmsg fetched, to zero at the burst's
// end: the SFU's reader ends its cork there.
func TestBufferedCountsTheBurst(t *testing.T) {
	c := newConn(t)
	dst := c.LocalAddr().(*net.UDPAddr).AddrPort()
	tx := listen(t, "udp4", "127.0.0.1:0")
	const sent = 3 // queued on the socket before the first read: one burst
	for i := range uint32(sent) {
		if _, err := tx.WriteToUDPAddrPort(packet(i, 40), dst); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Buffered(); n != 0 {
		t.Fatalf("Buffered = %d before any read", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	for i := range sent {
		if _, _, err := c.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Buffered(), sent-1-i; got != want {
			t.Fatalf("after read %d: Buffered = %d, want %d", i+1, got, want)
		}
	}
}
