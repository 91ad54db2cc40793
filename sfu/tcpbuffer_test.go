package sfu

import (
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallGate stands in for a county's TCP path that stops draining: while
// stalled, writes to the server's accepted ICE-TCP connections block, as
// writes to a real socket block once the peer's window and the send buffer
// are full.
type stallGate struct {
	mu      sync.Mutex
	gate    chan struct{} // closed: writes pass
	blocked atomic.Int64  // writes waiting at the gate now
}

func newStallGate() *stallGate {
	g := &stallGate{gate: make(chan struct{})}
	close(g.gate)
	return g
}

func (g *stallGate) stall() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *stallGate) release() {
	g.mu.Lock()
	close(g.gate)
	g.mu.Unlock()
}

func (g *stallGate) wrap(c net.Conn) net.Conn {
	return &stallConn{Conn: c, g: g, closed: make(chan struct{})}
}

type stallConn struct {
	net.Conn
	g         *stallGate
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *stallConn) Write(b []byte) (int, error) {
	c.g.mu.Lock()
	gate := c.g.gate
	c.g.mu.Unlock()
	select {
	case <-gate:
	default:
		c.g.blocked.Add(1)
		select {
		case <-gate:
		case <-c.closed:
		}
		c.g.blocked.Add(-1)
	}
	return c.Conn.Write(b)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// A county on ICE-TCP whose link stops draining must not hold up the
// counties that share its fan-out writer: its packets queue (a bounded
// time's worth), then drop, and the others keep receiving. When its link
// drains again it receives again.
func TestStalledTCPSubscriberDoesNotHoldUpOthers(t *testing.T) {
	g := newStallGate()
	// Small buffers, so that the test need not stall for long: 32 KiB is
	// about 30 of the test's packets, and the cache answers NACKs for the
	// last 64.
	s := newTestSFUConfig(t, Config{tcpConnHook: g.wrap, TCPWriteBuffer: 32 << 10, VideoCacheSize: 64})
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
	defer pub.close()
	tcpSub, _ := newTestClient(t, s, "r", "tcpsub", RoleCounty, clientOpts{tcpOnly: true})
	defer tcpSub.close()
	udpSub, _ := newTestClient(t, s, "r", "udpsub", RoleCounty, clientOpts{})
	defer udpSub.close()
	pub.publish("video")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	received := func(c *testClient) int64 {
		if r := c.track(publishedBy(s, "r", pub.part.info.ID, "video")); r != nil {
			return r.packets.Load()
		}
		return 0
	}
	eventually(t, 30*time.Second, "both subscribers receive video", func() bool {
		return received(tcpSub) > 30 && received(udpSub) > 30
	})
	// Both take the own SRTP egress: the UDP county's straight to the
	// socket, the TCP county's through Pion's ICE connection.
	if e := tcpSub.part.egress.Load(); e == nil || e.dst.Load() != nil {
		t.Fatalf("the TCP county's egress: %+v", e)
	}
	if e := udpSub.part.egress.Load(); e == nil || e.dst.Load() == nil {
		t.Fatalf("the UDP county's egress: %+v", e)
	}

	g.stall()
	eventually(t, 20*time.Second, "a write to the stalled county blocks", func() bool { return g.blocked.Load() > 0 })
	// About 3 s of the test's 90 packets a second, all while the TCP
	// county's writes are blocked.
	from := received(udpSub)
	eventually(t, 30*time.Second, "the UDP county keeps receiving", func() bool {
		return received(udpSub)-from >= 270 && g.blocked.Load() > 0
	})

	g.release()
	from = received(tcpSub)
	eventually(t, 30*time.Second, "the TCP county receives again", func() bool { return received(tcpSub)-from >= 90 })
	// What waited in its buffer arrived; what came after the buffer was
	// full was dropped, not delivered seconds late: more than the cache
	// can repair is missing. (With Pion's default of 4 MB nothing would
	// be: the whole stall would arrive, late.)
	time.Sleep(time.Second) // NACK repairs
	r := tcpSub.track(publishedBy(s, "r", pub.part.info.ID, "video"))
	r.mu.Lock()
	seqs := slices.Sorted(maps.Keys(r.seqs))
	r.mu.Unlock()
	if missing := seqSpan(seqs) - len(seqs); missing < 64 {
		t.Fatalf("%d packets missing at the stalled county, want at least 64: its buffer held the stall", missing)
	}
}

// seqSpan is how many sequence numbers the sorted set spans, allowing for
// a wrap (the largest gap, around the circle, lies outside the span).
func seqSpan(sorted []uint16) int {
	if len(sorted) == 0 {
		return 0
	}
	outside := int(sorted[0]) + 1<<16 - int(sorted[len(sorted)-1])
	for i := 1; i < len(sorted); i++ {
		outside = max(outside, int(sorted[i])-int(sorted[i-1]))
	}
	return 1<<16 - outside + 1
}

func TestSeqSpan(t *testing.T) {
	for _, c := range []struct {
		seqs []uint16
		want int
	}{
		{nil, 0},
		{[]uint16{7}, 1},
		{[]uint16{10, 11, 12}, 3},
		{[]uint16{10, 14}, 5},
		{[]uint16{0, 1, 65534, 65535}, 4},
		{[]uint16{2, 65530}, 9}, // 65530-65535 and 0-2
	} {
		if got := seqSpan(c.seqs); got != c.want {
			t.Errorf("seqSpan(%v) = %d, want %d", c.seqs, got, c.want)
		}
	}
}
