package netshape

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock whose sleep moves time on instead of waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// chanConn is a PacketConn fed by the test.
type chanConn struct {
	in     chan []byte
	from   net.Addr
	closed chan struct{}
	once   sync.Once
}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan []byte, 10000), closed: make(chan struct{}),
		from: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}}
}

func (c *chanConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p), c.from, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}
func (c *chanConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (c *chanConn) Close() error                              { c.once.Do(func() { close(c.closed) }); return nil }
func (c *chanConn) LocalAddr() net.Addr                       { return &net.UDPAddr{} }
func (c *chanConn) SetDeadline(time.Time) error               { return nil }
func (c *chanConn) SetReadDeadline(time.Time) error           { return nil }
func (c *chanConn) SetWriteDeadline(time.Time) error          { return nil }

// waitPumped waits until the pump has handled n packets.
func waitPumped(t *testing.T, c *Conn, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.Stats()
		if int64(len(c.ready))+s.Delivered+s.LossDrops+s.QueueDrops+s.RingDrops >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pump handled %+v (+%d queued) of %d packets", s, len(c.ready), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A burst into a capped link: what fits in the buffer leaves at the link's
// rate after the delay; the rest is dropped at the tail.
func TestConnRateDelayQueue(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	in := newChanConn()
	// 800 kbit/s: a 1000-byte packet takes 10 ms; the buffer holds 100 ms.
	c := New(in, LinkShape{RateKbps: 800, Delay: 50 * time.Millisecond, Queue: 100 * time.Millisecond},
		clk.now, clk.sleep, 1)
	defer c.Close()
	pkt := make([]byte, 1000)
	pkt[0] = 0x80
	for i := 0; i < 30; i++ {
		in.in <- pkt
	}
	waitPumped(t, c, 30)
	// Departures at 10, 20, ... ms; a packet may wait at most 100 ms, so
	// the 11th (starting at 100 ms) is the last that fits.
	if s := c.Stats(); s.QueueDrops != 19 {
		t.Errorf("queue drops %d, want 19", s.QueueDrops)
	}
	buf := make([]byte, 1500)
	for i := 1; i <= 11; i++ {
		n, addr, err := c.ReadFrom(buf)
		if err != nil || n != 1000 || addr == nil {
			t.Fatalf("read %d: n %d addr %v err %v", i, n, addr, err)
		}
		want := time.Unix(0, 0).Add(time.Duration(i)*10*time.Millisecond + 50*time.Millisecond)
		if got := clk.now(); !got.Equal(want) {
			t.Errorf("packet %d delivered at %v, want %v", i, got.Sub(time.Unix(0, 0)), want.Sub(time.Unix(0, 0)))
		}
	}
	in.Close()
	if _, _, err := c.ReadFrom(buf); err == nil {
		t.Error("read after close succeeded")
	}
}

// Random loss hits only media (RTP/RTCP), never STUN or DTLS.
func TestConnLoss(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	in := newChanConn()
	c := New(in, LinkShape{Loss: 0.2}, clk.now, clk.sleep, 7)
	defer c.Close()
	media, stun := []byte{0x80, 96, 0, 1}, []byte{0x00, 0x01, 0, 0}
	const n = 5000
	got := map[byte]int{}
	buf := make([]byte, 1500)
	for sent := 0; sent < 2*n; {
		// Keep the ring from filling: read as we go.
		for i := 0; i < 100; i++ {
			in.in <- media
			in.in <- stun
			sent += 2
		}
		waitPumped(t, c, int64(sent))
		for len(c.ready) > 0 {
			k, _, err := c.ReadFrom(buf)
			if err != nil || k == 0 {
				t.Fatal(err)
			}
			got[buf[0]]++
		}
	}
	if got[0x00] != n {
		t.Errorf("%d of %d STUN packets delivered; none may be lost", got[0x00], n)
	}
	if lost := n - got[0x80]; lost < n*15/100 || lost > n*25/100 {
		t.Errorf("%d of %d media packets lost, want about 20%%", lost, n)
	}
	if s := c.Stats(); s.LossDrops != int64(n-got[0x80]) || s.RingDrops != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The per-packet path allocates nothing: neither the pump nor ReadFrom.
// AllocsPerRun counts every goroutine's allocations, the pump's included.
func TestConnNoAllocPerPacket(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	in := newChanConn()
	c := New(in, LinkShape{RateKbps: 1000, Delay: 20 * time.Millisecond}, clk.now, clk.sleep, 3)
	defer c.Close()
	pkt := make([]byte, 1200)
	pkt[0] = 0x80
	buf := make([]byte, 1500)
	allocs := testing.AllocsPerRun(2000, func() {
		in.in <- pkt
		if n, _, err := c.ReadFrom(buf); err != nil || n != len(pkt) {
			t.Fatalf("read %d bytes: %v", n, err)
		}
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per packet, want 0", allocs)
	}
}

// On a real loopback socket a 300 kbit/s link delivers about 300 kbit/s
// however fast the sender goes, and drops the excess at the tail.
func TestConnRealSocketRate(t *testing.T) {
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := New(sock, LinkShape{RateKbps: 300, Queue: 100 * time.Millisecond}, nil, nil, 1)
	defer c.Close()
	tx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			got.Add(int64(n))
		}
	}()
	// 1 Mbit/s for 1 s: 1000-byte packets every 8 ms.
	pkt := make([]byte, 1000)
	pkt[0] = 0x80
	start := time.Now()
	for i := 0; i < 125; i++ {
		if _, err := tx.WriteTo(pkt, sock.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 8 * time.Millisecond)))
	}
	elapsed := time.Since(start)
	kbps := float64(got.Load()*8) / elapsed.Seconds() / 1000
	// Buffered bytes (100 ms at 300 kbit/s) may leave after the sender
	// stopped; the generous band still tells a cap from no cap (1000).
	if kbps < 200 || kbps > 400 {
		t.Errorf("delivered %.0f kbit/s through a 300 kbit/s link", kbps)
	}
	if s := c.Stats(); s.QueueDrops == 0 {
		t.Errorf("no tail drops with 3x the link rate offered: %+v", s)
	}
	c.Close()
	<-done
}
