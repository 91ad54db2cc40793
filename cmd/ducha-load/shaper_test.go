package main

import (
	"net"
	"sync"
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
	closed chan struct{}
	once   sync.Once
}

func newChanConn() *chanConn {
	return &chanConn{in: make(chan []byte, 10000), closed: make(chan struct{})}
}

func (c *chanConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, nil
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
func waitPumped(t *testing.T, c *shapedConn, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.stats()
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
func TestShapedConnRateDelayQueue(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	in := newChanConn()
	// 800 kbit/s: a 1000-byte packet takes 10 ms; the buffer holds 100 ms.
	c := newShapedConn(in, linkShape{RateKbps: 800, Delay: 50 * time.Millisecond, Queue: 100 * time.Millisecond},
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
	if s := c.stats(); s.QueueDrops != 19 {
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
func TestShapedConnLoss(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	in := newChanConn()
	c := newShapedConn(in, linkShape{Loss: 0.2}, clk.now, clk.sleep, 7)
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
	if s := c.stats(); s.LossDrops != int64(n-got[0x80]) || s.RingDrops != 0 {
		t.Errorf("stats %+v", s)
	}
}
