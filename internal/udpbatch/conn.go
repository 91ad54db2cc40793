// Package udpbatch writes a UDP socket's outgoing packets in batches
// (sendmmsg on Linux) without a timer: packets queue while the previous batch
// is being written, and the next batch takes everything that queued. Reads
// fetch whatever datagrams are waiting with one recvmmsg.
//
// Why not pion/transport's BatchConn: it flushes every N packets or after a
// fixed interval, so a quiet call waits up to the interval for every packet.
// Here a lone packet leaves as soon as the sender goroutine runs (usually
// when the goroutine that wrote it parks), and batches only grow when the
// server is busy, which is when they pay.
//
// Conn implements net.PacketConn and pion/ice's AddrPortReaderWriter, so
// ice.NewUDPMuxDefault uses its allocation-free netip.AddrPort path.
package udpbatch

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBatch is the most packets one system call carries. A batch that fills
// is written by the goroutine that filled it, which bounds the queue
// without dropping anything and slows writers down to the socket's pace.
const MaxBatch = 64

// ErrClosed is returned by writes after Close.
var ErrClosed = net.ErrClosed

// Stats counts what the sender did, for metrics and benchmarks.
type Stats struct {
	Packets uint64 // packets handed to the kernel
	Batches uint64 // system calls that carried them
	Errors  uint64 // packets the kernel refused (counted, then skipped)
}

// Conn wraps a *net.UDPConn. Reads pass through; writes are copied into a
// queue and written by one sender goroutine.
type Conn struct {
	udp *net.UDPConn
	out sender    // platform part: how a batch reaches the kernel
	in  *receiver // and how bursts of datagrams come out of it

	mu      sync.Mutex
	corks   int      // Cork calls not yet matched by Uncork
	cur     *batch   // being filled
	free    []*batch // written batches, for reuse
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}

	packets, batches, errs atomic.Uint64

	waited func(wait time.Duration, packets int) // WithWaited
}

// Option configures a Conn.
type Option func(*Conn)

// WithWaited has f hear after each system call how long its batch's
// first packet waited in the queue (the longest of the batch) and how
// many packets went out: a sender's last hop before the kernel. f runs on
// the writing goroutine and must not block.
func WithWaited(f func(wait time.Duration, packets int)) Option {
	return func(c *Conn) { c.waited = f }
}

// sender writes a batch and reports how many packets the kernel refused.
type sender interface {
	send(b *batch) (refused int)
}

// New starts the sender goroutine. The Conn owns udp from now on.
func New(udp *net.UDPConn, opts ...Option) (*Conn, error) {
	out, err := newSender(udp)
	if err != nil {
		return nil, err
	}
	in, err := newReceiver(udp)
	if err != nil {
		return nil, err
	}
	c := &Conn{udp: udp, out: out, in: in, cur: newBatch(), wake: make(chan struct{}, 1),
		done: make(chan struct{}), stopped: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	go c.run()
	return c, nil
}

// WriteToAddrPort queues b for addr. It never waits for the network; it
// writes a full batch itself (see MaxBatch).
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	q := c.cur
	if q.n == 0 && c.waited != nil {
		q.firstAt = time.Now()
	}
	q.add(b, addr)
	var full *batch
	if q.n == MaxBatch {
		full = q
		c.cur = c.takeFree()
	}
	wake := q.n == 1 && c.corks == 0
	c.mu.Unlock()
	if full != nil {
		c.write(full)
		c.mu.Lock()
		c.free = append(c.free, full)
		c.mu.Unlock()
		return len(b), nil
	}
	if wake {
		c.wakeSender()
	}
	return len(b), nil
}

// wakeSender has the sender goroutine write what is queued; a wake-up
// already pending covers this one.
func (c *Conn) wakeSender() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// CorkFlush is how many queued packets make the last Uncork write them
// itself; with fewer it wakes the sender, which may combine them with
// other writers' packets. For a packet's fan-out to many subscribers the
// sender's wake-up (a hand-off between threads whenever a processor is
// idle) costs more than the system call; for one to a few copies a call
// of their own costs more than waiting for company. Measured in the
// ninth session: flushing every fan-out itself saved 10 % of the CPU per
// forwarded packet with 40 copies each, nothing with 4, and cost about as
// much in S2, where most packets have one to three copies.
const CorkFlush = 8

// Cork holds what is written from now on for the matching Uncork: the
// sender goroutine is not woken for it. A fan-out writer corks around the
// copies of one packet. Writes by others meanwhile wait for the Uncork
// too (at most one packet's fan-out). Cork calls nest.
func (c *Conn) Cork() {
	c.mu.Lock()
	c.corks++
	c.mu.Unlock()
}

// Uncork ends a Cork. The last one writes everything queued on the
// caller's goroutine when that is at least CorkFlush packets, and wakes
// the sender for it otherwise.
func (c *Conn) Uncork() {
	c.mu.Lock()
	c.corks--
	switch {
	case c.corks > 0 || c.closed || c.cur.n == 0:
		c.mu.Unlock()
	case c.cur.n < CorkFlush:
		c.mu.Unlock()
		c.wakeSender()
	default:
		c.writeQueuedLocked()
	}
}

// UncorkWrite is Uncork for a caller that would rather make the system
// call than wake the sender, however few packets queued: the last one
// writes them on the caller's goroutine. The SFU's reader corks across a
// burst of datagrams it forwards itself and ends it this way, so a burst
// costs one call and no hand-off.
func (c *Conn) UncorkWrite() {
	c.mu.Lock()
	c.corks--
	if c.corks > 0 || c.closed {
		c.mu.Unlock()
		return
	}
	c.writeQueuedLocked()
}

// WriteTo is WriteToAddrPort for callers holding a net.Addr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("not a UDP address")}
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

func (c *Conn) takeFree() *batch {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	return newBatch()
}

func (c *Conn) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			c.flush()
			return
		}
		c.flush()
	}
}

// flush writes whatever queued.
func (c *Conn) flush() {
	c.mu.Lock()
	c.writeQueuedLocked()
}

// writeQueuedLocked writes what is queued, if anything, and unlocks c.mu.
func (c *Conn) writeQueuedLocked() {
	q := c.cur
	if q.n == 0 {
		c.mu.Unlock()
		return
	}
	c.cur = c.takeFree()
	c.mu.Unlock()
	c.write(q)
	c.mu.Lock()
	c.free = append(c.free, q)
	c.mu.Unlock()
}

func (c *Conn) write(q *batch) {
	refused := c.out.send(q)
	c.packets.Add(uint64(q.n - refused))
	c.batches.Add(1)
	if refused > 0 {
		c.errs.Add(uint64(refused))
	}
	if c.waited != nil && q.n > refused {
		c.waited(time.Since(q.firstAt), q.n-refused)
	}
	q.reset()
}

// Stats returns the counters so far.
func (c *Conn) Stats() Stats {
	return Stats{Packets: c.packets.Load(), Batches: c.batches.Load(), Errors: c.errs.Load()}
}

// ReadFromAddrPort returns the next datagram. On Linux one recvmmsg fetches
// every datagram waiting (up to 32) and later calls return them in order.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, ap, _, err := c.in.read(b)
	return n, ap, err
}

// ReadFromAddrPortAt is ReadFromAddrPort with the kernel's receive
// timestamp of the datagram (Linux; zero elsewhere), for
// arrival.TimedReader.
func (c *Conn) ReadFromAddrPortAt(b []byte) (int, netip.AddrPort, time.Time, error) {
	return c.in.read(b)
}

// Buffered is how many datagrams one system call fetched that reads have
// not returned yet: zero after the last of a burst, when the next read
// waits for the network.
func (c *Conn) Buffered() int { return c.in.buffered() }

// ReadFrom is ReadFromAddrPort for callers wanting a net.Addr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, _, err := c.in.read(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// Close writes what is queued, stops the sender and closes the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	<-c.stopped
	return c.udp.Close()
}

// LocalAddr is the socket's address.
func (c *Conn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// SetDeadline sets the read deadline (writes never wait).
func (c *Conn) SetDeadline(t time.Time) error { return c.udp.SetReadDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.udp.SetReadDeadline(t) }

// SetWriteDeadline is accepted and ignored: writes only queue.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
