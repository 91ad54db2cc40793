// Package netshape simulates a weak downlink on a UDP socket: a bottleneck
// rate with a bounded buffer, a one-way delay and random loss, as a county
// office behind a small line has. It wraps the socket below ICE, so DTLS,
// SRTP, NACK, TWCC and the SFU all see a real lossy, slow link.
//
// A Pion peer uses it by building its ICE UDP mux on the shaped conn:
//
//	sock, _ := net.ListenPacket("udp4", "127.0.0.1:0")
//	shaped := netshape.New(sock, netshape.LinkShape{RateKbps: 300}, nil, nil, 1)
//	se := webrtc.SettingEngine{}
//	se.SetIncludeLoopbackCandidate(true)
//	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
//	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, shaped))
package netshape

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// LinkShape is what the simulated link does to what the socket receives.
type LinkShape struct {
	RateKbps int           `json:"rate_kbps"` // bottleneck rate; 0 means unlimited
	Delay    time.Duration `json:"delay_ns"`  // one-way delay added to every packet
	Loss     float64       `json:"loss"`      // fraction (0..1) of SRTP/SRTCP packets dropped at random
	Queue    time.Duration `json:"queue_ns"`  // bottleneck buffer: a packet that would wait longer is dropped; 0 means 200 ms
}

// DefaultQueue is the bottleneck buffer when LinkShape.Queue is 0.
const DefaultQueue = 200 * time.Millisecond

// Active tells whether the shape changes anything at all.
func (s LinkShape) Active() bool { return s.RateKbps > 0 || s.Delay > 0 || s.Loss > 0 }

// Stats is what the simulated link did, in packets.
type Stats struct {
	Delivered  int64 `json:"delivered"`
	LossDrops  int64 `json:"loss_drops"`  // random loss
	QueueDrops int64 `json:"queue_drops"` // tail drops at a full bottleneck buffer
	RingDrops  int64 `json:"ring_drops"`  // the reader fell a whole ring behind
}

// Conn shapes what its socket receives; what it sends passes through.
// A pump goroutine reads the socket into a fixed ring of slots and stamps
// each packet with the time it may leave the simulated link; ReadFrom hands
// packets over no earlier than that. Nothing is allocated per packet.
// ReadFrom is meant for one reader (the ICE mux); deadlines are not
// honoured on reads (the mux does not set any).
type Conn struct {
	net.PacketConn
	shape LinkShape
	now   func() time.Time
	sleep func(time.Duration)
	rng   *rand.Rand // pump goroutine only

	slots []slot
	free  chan int // slot indices the pump may fill
	ready chan int // filled slots in arrival order; closed when the socket fails
	err   error    // why the socket failed; written before ready is closed

	lastDeparture time.Time // pump goroutine only
	closeOnce     sync.Once

	delivered, lossDrops, queueDrops, ringDrops atomic.Int64
	rateKbps                                    atomic.Int64 // the bottleneck now; SetRate changes it
}

type slot struct {
	buf  []byte
	n    int
	addr net.Addr
	due  time.Time
}

// New starts shaping conn and owns it from now on (Close closes it). now
// and sleep are the clock (tests inject a fake one; nil means the real
// clock); seed makes the random loss repeatable.
func New(conn net.PacketConn, shape LinkShape, now func() time.Time, sleep func(time.Duration), seed uint64) *Conn {
	if shape.Queue <= 0 {
		shape.Queue = DefaultQueue
	}
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = time.Sleep
	}
	n := slotCount(shape)
	c := &Conn{
		PacketConn: conn, shape: shape, now: now, sleep: sleep,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		slots: make([]slot, n), free: make(chan int, n), ready: make(chan int, n),
	}
	for i := range c.slots {
		c.slots[i].buf = make([]byte, 1500)
		c.free <- i
	}
	c.rateKbps.Store(int64(shape.RateKbps))
	go c.pump()
	return c
}

// slotCount sizes the ring for what can be in flight on the link: twice
// the bytes the bottleneck holds plus those the delay line holds.
func slotCount(s LinkShape) int {
	if s.RateKbps <= 0 {
		if s.Delay > 0 {
			return 2048 // unknown arrival rate: room for ~2 s of 1 Mbit/s
		}
		return 256
	}
	bytes := float64(s.RateKbps) * 1000 / 8 * (s.Delay + s.Queue).Seconds()
	// At least 256: the rate may be lifted later (SetRate).
	return min(max(int(2*bytes/1200), 256), 4096)
}

// isSRTP tells media (RTP and RTCP) from STUN and DTLS by the first byte
// (RFC 7983). Only media is dropped at random: losing handshakes would
// measure ICE and DTLS retries, not the media path.
func isSRTP(b []byte) bool { return len(b) > 0 && b[0] >= 128 && b[0] <= 191 }

func (c *Conn) pump() {
	scratch := make([]byte, 1500)
	for {
		idx := -1
		select {
		case idx = <-c.free:
		default:
		}
		buf := scratch
		if idx >= 0 {
			buf = c.slots[idx].buf
		}
		n, addr, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			c.err = err
			close(c.ready)
			return
		}
		if idx < 0 {
			c.ringDrops.Add(1)
			continue
		}
		if c.shape.Loss > 0 && isSRTP(buf[:n]) && c.rng.Float64() < c.shape.Loss {
			c.lossDrops.Add(1)
			c.free <- idx
			continue
		}
		now := c.now()
		depart := now
		if rate := c.rateKbps.Load(); rate > 0 {
			start := now
			if c.lastDeparture.After(now) {
				start = c.lastDeparture
			}
			if start.Sub(now) > c.shape.Queue {
				c.queueDrops.Add(1) // tail drop at a full bottleneck buffer
				c.free <- idx
				continue
			}
			depart = start.Add(time.Duration(float64(n*8) / float64(rate*1000) * float64(time.Second)))
			c.lastDeparture = depart
		}
		s := &c.slots[idx]
		s.n, s.addr, s.due = n, addr, depart.Add(c.shape.Delay)
		c.ready <- idx
	}
}

// ReadFrom returns the next packet once the simulated link delivers it.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	idx, ok := <-c.ready
	if !ok {
		return 0, nil, c.err
	}
	s := &c.slots[idx]
	if d := s.due.Sub(c.now()); d > 0 {
		c.sleep(d)
	}
	n, addr := copy(b, s.buf[:s.n]), s.addr
	c.free <- idx
	c.delivered.Add(1)
	return n, addr, nil
}

// Close closes the socket; the pump and any reader then return.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.PacketConn.Close() })
	return err
}

// SetRate changes the bottleneck rate while the link runs (0: unlimited),
// as when a county office's line recovers.
func (c *Conn) SetRate(kbps int) { c.rateKbps.Store(int64(kbps)) }

// Shape is the link being simulated (with the default queue filled in).
func (c *Conn) Shape() LinkShape { return c.shape }

// Stats is what the link did so far; safe to call at any time.
func (c *Conn) Stats() Stats {
	return Stats{Delivered: c.delivered.Load(), LossDrops: c.lossDrops.Load(),
		QueueDrops: c.queueDrops.Load(), RingDrops: c.ringDrops.Load()}
}
