package main

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// linkShape is a weak downlink, as a county office behind a small line has:
// a bottleneck of RateKbps with a buffer of Queue, then Delay, and random
// Loss. It acts below ICE, on the client's one UDP socket, so DTLS, SRTP,
// NACK, TWCC and the SFU all see a real lossy, slow link.
type linkShape struct {
	RateKbps int           `json:"rate_kbps"` // bottleneck rate; 0 means unlimited
	Delay    time.Duration `json:"delay_ns"`  // one-way delay added to every packet
	Loss     float64       `json:"loss"`      // fraction (0..1) of SRTP/SRTCP packets dropped at random
	Queue    time.Duration `json:"queue_ns"`  // bottleneck buffer: a packet that would wait longer is dropped
}

func (s linkShape) active() bool { return s.RateKbps > 0 || s.Delay > 0 || s.Loss > 0 }

// shapedConn shapes what the client receives; what it sends passes through.
// A pump goroutine reads the socket into a fixed ring of slots and stamps
// each packet with the time it may leave the simulated link; ReadFrom hands
// packets over no earlier than that. Nothing is allocated per packet.
type shapedConn struct {
	net.PacketConn
	shape linkShape
	now   func() time.Time
	sleep func(time.Duration)
	rng   *rand.Rand // pump goroutine only

	slots []shapeSlot
	free  chan int // slot indices the pump may fill
	ready chan int // filled slots in arrival order; closed when the socket fails
	err   error    // why the socket failed; written before ready is closed

	lastDeparture time.Time // pump goroutine only
	closeOnce     sync.Once

	delivered, lossDrops, queueDrops, ringDrops atomic.Int64
}

type shapeSlot struct {
	buf  []byte
	n    int
	addr net.Addr
	due  time.Time
}

// newShapedConn starts shaping conn. now and sleep are the clock (tests
// inject a fake one); seed makes the random loss repeatable.
func newShapedConn(conn net.PacketConn, shape linkShape, now func() time.Time, sleep func(time.Duration), seed uint64) *shapedConn {
	if shape.Queue <= 0 {
		shape.Queue = 200 * time.Millisecond
	}
	n := slotCount(shape)
	c := &shapedConn{
		PacketConn: conn, shape: shape, now: now, sleep: sleep,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		slots: make([]shapeSlot, n), free: make(chan int, n), ready: make(chan int, n),
	}
	for i := range c.slots {
		c.slots[i].buf = make([]byte, 1500)
		c.free <- i
	}
	go c.pump()
	return c
}

// slotCount sizes the ring for what can be in flight on the link: twice
// the bytes the bottleneck holds plus those the delay line holds.
func slotCount(s linkShape) int {
	if s.RateKbps <= 0 {
		if s.Delay > 0 {
			return 2048 // unknown arrival rate: room for ~2 s of 1 Mbit/s
		}
		return 256
	}
	bytes := float64(s.RateKbps) * 1000 / 8 * (s.Delay + s.Queue).Seconds()
	return min(max(int(2*bytes/1200), 64), 4096)
}

// isSRTP tells media (RTP and RTCP) from STUN and DTLS by the first byte
// (RFC 7983). Only media is dropped at random: losing handshakes would
// measure ICE and DTLS retries, not the media path.
func isSRTP(b []byte) bool { return len(b) > 0 && b[0] >= 128 && b[0] <= 191 }

func (c *shapedConn) pump() {
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
			c.ringDrops.Add(1) // the reader fell behind by a whole ring
			continue
		}
		if c.shape.Loss > 0 && isSRTP(buf[:n]) && c.rng.Float64() < c.shape.Loss {
			c.lossDrops.Add(1)
			c.free <- idx
			continue
		}
		now := c.now()
		depart := now
		if c.shape.RateKbps > 0 {
			start := now
			if c.lastDeparture.After(now) {
				start = c.lastDeparture
			}
			if start.Sub(now) > c.shape.Queue {
				c.queueDrops.Add(1) // tail drop at a full bottleneck buffer
				c.free <- idx
				continue
			}
			depart = start.Add(time.Duration(float64(n*8) / float64(c.shape.RateKbps*1000) * float64(time.Second)))
			c.lastDeparture = depart
		}
		s := &c.slots[idx]
		s.n, s.addr, s.due = n, addr, depart.Add(c.shape.Delay)
		c.ready <- idx
	}
}

// ReadFrom returns the next packet once the simulated link delivers it.
func (c *shapedConn) ReadFrom(b []byte) (int, net.Addr, error) {
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
func (c *shapedConn) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.PacketConn.Close() })
	return err
}

// shapeStats is what the simulated link did.
type shapeStats struct {
	Delivered  int64 `json:"delivered"`
	LossDrops  int64 `json:"loss_drops"`
	QueueDrops int64 `json:"queue_drops"`
	RingDrops  int64 `json:"ring_drops"`
}

func (c *shapedConn) stats() shapeStats {
	return shapeStats{Delivered: c.delivered.Load(), LossDrops: c.lossDrops.Load(),
		QueueDrops: c.queueDrops.Load(), RingDrops: c.ringDrops.Load()}
}
