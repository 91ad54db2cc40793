package udpbatch

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func listen(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(8 << 20)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newConn is a Conn on a loopback socket, closed at the end of the test
// (a test's own Close comes first; the second one only reports ErrClosed).
func newConn(t *testing.T) *Conn {
	t.Helper()
	c, err := New(listen(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// receive reads until it has want packets or the deadline passes, and
// returns the packets' numbers (first 4 bytes) as a set.
func receive(t *testing.T, rx *net.UDPConn, want int) map[uint32]int {
	t.Helper()
	return receiveCounting(t, rx, want, nil)
}

// receiveCounting is receive, adding every packet read to done (for
// writers that must not outrun the receiver's socket buffer).
func receiveCounting(t *testing.T, rx *net.UDPConn, want int, done *atomic.Int64) map[uint32]int {
	t.Helper()
	got := map[uint32]int{}
	buf := make([]byte, 8192)
	_ = rx.SetReadDeadline(time.Now().Add(20 * time.Second))
	for n := 0; n < want; n++ {
		k, _, err := rx.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d packets: %v", n, want, err)
		}
		if k < 4 {
			t.Fatalf("short packet of %d bytes", k)
		}
		id := binary.BigEndian.Uint32(buf)
		if int(binary.BigEndian.Uint32(buf[k-4:])) != k {
			t.Fatalf("packet %d arrived with %d bytes, not the length it was sent with", id, k)
		}
		got[id]++
		if done != nil {
			done.Add(1)
		}
	}
	return got
}

func packet(id uint32, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, id)
	binary.BigEndian.PutUint32(p[size-4:], uint32(size))
	return p
}

// Concurrent writers, packets of varied sizes (one larger than the slot's
// first capacity): everything arrives intact, and under this load the
// sender carries more than one packet per system call.
func TestConcurrentWritesAllArrive(t *testing.T) {
	rx := listen(t, "udp4", "127.0.0.1:0")
	c := newConn(t)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	const writers, each = 8, 2000
	// Loopback drops what the receiver's buffer cannot hold, so writers
	// keep at most a few hundred packets in flight.
	var sent, received atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := uint32(w*each + i)
				size := 8 + int(id%1200)
				if id%997 == 0 {
					size = 4000
				}
				for sent.Load()-received.Load() > 256 {
					time.Sleep(50 * time.Microsecond)
				}
				sent.Add(1)
				if _, err := c.WriteToAddrPort(packet(id, size), dst); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := receiveCounting(t, rx, writers*each, &received)
	wg.Wait()
	for id := range uint32(writers * each) {
		if got[id] != 1 {
			t.Fatalf("packet %d arrived %d times", id, got[id])
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Packets != writers*each || st.Errors != 0 {
		t.Fatalf("stats %+v, want %d packets and no errors", st, writers*each)
	}
	if st.Batches >= st.Packets {
		t.Fatalf("stats %+v: no batching happened", st)
	}
	t.Logf("%d packets in %d system calls", st.Packets, st.Batches)
}

// A destination the socket cannot reach is counted and skipped; the
// packets around it still leave.
func TestRefusedPacketSkipped(t *testing.T) {
	rx := listen(t, "udp4", "127.0.0.1:0")
	c := newConn(t)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.MustParseAddrPort("[2001:db8::1]:9") // IPv6 on an IPv4 socket
	for i := range uint32(10) {
		if i == 5 {
			_, _ = c.WriteToAddrPort(packet(999, 100), bad)
		}
		if _, err := c.WriteToAddrPort(packet(i, 100), dst); err != nil {
			t.Fatal(err)
		}
	}
	got := receive(t, rx, 10)
	if len(got) != 10 {
		t.Fatalf("got %v", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Errors != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := c.Stats(); st.Errors != 1 || st.Packets != 10 {
		t.Fatalf("stats %+v, want 10 packets and 1 error", st)
	}
}

// An IPv6 (dual-stack) socket writes IPv4 peers as v4-mapped addresses.
func TestDualStackSocket(t *testing.T) {
	tx, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	if tx.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		t.Skip("no IPv6 socket on this host")
	}
	rx := listen(t, "udp4", "127.0.0.1:0")
	c, err := New(tx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToAddrPort(packet(7, 64), rx.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, rx, 1); got[7] != 1 {
		t.Fatalf("got %v", got)
	}
}

// Close writes what was queued; writes after it fail with ErrClosed.
func TestCloseFlushes(t *testing.T) {
	rx := listen(t, "udp4", "127.0.0.1:0")
	c := newConn(t)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range uint32(MaxBatch * 3) {
		if _, err := c.WriteToAddrPort(packet(i, 200), dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, rx, MaxBatch*3); len(got) != MaxBatch*3 {
		t.Fatalf("%d distinct packets", len(got))
	}
	if _, err := c.WriteToAddrPort(packet(1, 10), dst); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// Reads pass through with the sender's address.
func TestReadPassesThrough(t *testing.T) {
	c := newConn(t)
	tx := listen(t, "udp4", "127.0.0.1:0")
	if _, err := tx.WriteToUDPAddrPort([]byte("hello"), c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, from, err := c.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != tx.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("read %q from %v: %v", buf[:n], from, err)
	}
}

// Once its slots have buffers, queueing a packet allocates nothing.
func TestWriteAllocatesNothing(t *testing.T) {
	rx := listen(t, "udp4", "127.0.0.1:0")
	c := newConn(t)
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	p := packet(1, 1200)
	for range 20 * MaxBatch { // warm every batch's slots
		_, _ = c.WriteToAddrPort(p, dst)
	}
	allocs := testing.AllocsPerRun(5000, func() { _, _ = c.WriteToAddrPort(p, dst) })
	if allocs > 0.01 {
		t.Fatalf("%.3f allocations per write", allocs)
	}
}

func BenchmarkWrite(b *testing.B) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	p := packet(1, 1200)
	b.Run("direct", func(b *testing.B) {
		tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Close()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = tx.WriteToUDPAddrPort(p, dst)
		}
	})
	b.Run("batched", func(b *testing.B) {
		tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		c, err := New(tx)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.WriteToAddrPort(p, dst)
		}
		b.ReportMetric(float64(c.Stats().Packets)/float64(max(1, c.Stats().Batches)), "packets/syscall")
	})
}

// A burst from two senders comes out in order per sender, whole, with each
// datagram's own source address, however many one system call fetched.
func TestBurstReads(t *testing.T) {
	c := newConn(t)
	dst := c.LocalAddr().(*net.UDPAddr).AddrPort()
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	const each = 100 // several recvmmsg batches' worth
	for i := range uint32(each) {
		for j, tx := range []*net.UDPConn{a, b} {
			if _, err := tx.WriteToUDPAddrPort(packet(uint32(j)<<16|i, 20+int(i)), dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	from := map[netip.AddrPort]uint32{
		a.LocalAddr().(*net.UDPAddr).AddrPort(): 0, b.LocalAddr().(*net.UDPAddr).AddrPort(): 1 << 16,
	}
	next := map[netip.AddrPort]uint32{}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	for range 2 * each {
		n, src, err := c.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		base, ok := from[src]
		if !ok {
			t.Fatalf("datagram from unknown address %v", src)
		}
		want := base | next[src]
		if id := binary.BigEndian.Uint32(buf); id != want || n != 20+int(next[src]) {
			t.Fatalf("from %v: got packet %x of %d bytes, want %x of %d", src, id, n, want, 20+next[src])
		}
		next[src]++
	}
}

// A read deadline ends a wait with a timeout, as on a plain socket (the ICE
// mux relies on os.IsTimeout), and Close ends it with net.ErrClosed.
func TestReadDeadlineAndClose(t *testing.T) {
	c := newConn(t)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 100)
	if _, _, err := c.ReadFromAddrPort(buf); !os.IsTimeout(err) {
		t.Fatalf("want a timeout, got %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(buf)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still blocked after Close")
	}
}

func TestReadAllocatesNothing(t *testing.T) {
	c := newConn(t)
	tx := listen(t, "udp4", "127.0.0.1:0")
	dst := c.LocalAddr().(*net.UDPAddr).AddrPort()
	p := packet(1, 1200)
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = tx.WriteToUDPAddrPort(p, dst)
		if _, _, err := c.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("%.1f allocations per read", allocs)
	}
}

// Each datagram of a burst read with recvmmsg carries the time the kernel
// received it, not the time of the read.
func TestReadTimestamps(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skip("kernel receive timestamps are read on 64-bit Linux only")
	}
	c := newConn(t)
	dst := c.LocalAddr().(*net.UDPAddr).AddrPort()
	tx := listen(t, "udp4", "127.0.0.1:0")
	time.Sleep(100 * time.Millisecond) // the kernel turns stamping on from a work queue
	sent := time.Now()
	for i := range uint32(5) {
		if _, err := tx.WriteToUDPAddrPort(packet(i, 40), dst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	for i := range 5 {
		_, _, at, err := c.ReadFromAddrPortAt(buf)
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(sent) || time.Since(at) < 90*time.Millisecond {
			t.Fatalf("datagram %d: received at %v, sent at %v, read %v later", i, at, sent, time.Since(at))
		}
	}
}

// WithWaited hears of every packet that went out, with its batch's wait.
func TestWaitedCountsEveryPacket(t *testing.T) {
	var mu sync.Mutex
	var packets, calls int
	var longest time.Duration
	c, err := New(listen(t, "udp4", "127.0.0.1:0"), WithWaited(func(wait time.Duration, n int) {
		mu.Lock()
		defer mu.Unlock()
		packets += n
		calls++
		longest = max(longest, wait)
	}))
	if err != nil {
		t.Fatal(err)
	}
	rx := listen(t, "udp4", "127.0.0.1:0")
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	const total = 3*MaxBatch + 5 // full batches written by the writer, and a rest by the sender
	for i := range uint32(total) {
		if _, err := c.WriteToAddrPort(packet(i, 100), dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if packets != total || calls == 0 || longest < 0 || longest > 10*time.Second {
		t.Fatalf("waited heard of %d packets in %d calls (longest wait %v), want %d", packets, calls, longest, total)
	}
}

// What is written while corked leaves with the last Uncork, in one system
// call made by the uncorking goroutine (CorkFlush packets or more; fewer
// are left to the sender); until then nothing is sent.
func TestCorkHoldsUntilLastUncork(t *testing.T) {
	c := newConn(t)
	rx := listen(t, "udp4", "127.0.0.1:0")
	to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	before := c.Stats()

	c.Cork()
	c.Cork() // nested: the inner Uncork must not write
	for i := uint32(0); i < CorkFlush; i++ {
		if _, err := c.WriteToAddrPort(packet(i, 200), to); err != nil {
			t.Fatal(err)
		}
	}
	c.Uncork()
	_ = rx.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := rx.ReadFromUDPAddrPort(make([]byte, 1500)); err == nil {
		t.Fatalf("a %d-byte packet left while still corked", n)
	}
	if got := c.Stats().Batches - before.Batches; got != 0 {
		t.Fatalf("%d system calls while corked", got)
	}

	c.Uncork()
	if got := c.Stats(); got.Batches-before.Batches != 1 || got.Packets-before.Packets != CorkFlush {
		t.Fatalf("after the last Uncork: %d packets in %d calls, want %d in 1 (written by Uncork itself)",
			got.Packets-before.Packets, got.Batches-before.Batches, CorkFlush)
	}
	if got := receive(t, rx, CorkFlush); len(got) != CorkFlush {
		t.Fatalf("received %v, want packets 0 to %d", got, CorkFlush-1)
	}

	// A corked packet or two are left to the sender, and still leave.
	c.Cork()
	if _, err := c.WriteToAddrPort(packet(100, 200), to); err != nil {
		t.Fatal(err)
	}
	c.Uncork()
	if got := receive(t, rx, 1); got[100] != 1 {
		t.Fatalf("received %v, want packet 100", got)
	}

	// UncorkWrite writes even a lone packet itself, once the last cork ends.
	for deadline := time.Now().Add(10 * time.Second); c.Stats().Packets-before.Packets != CorkFlush+1; {
		if time.Now().After(deadline) {
			t.Fatal("the sender did not count packet 100")
		}
		time.Sleep(time.Millisecond)
	}
	c.Cork()
	c.Cork()
	if _, err := c.WriteToAddrPort(packet(101, 200), to); err != nil {
		t.Fatal(err)
	}
	mid := c.Stats()
	c.UncorkWrite()
	if got := c.Stats().Batches - mid.Batches; got != 0 {
		t.Fatalf("UncorkWrite under another cork made %d system calls", got)
	}
	c.UncorkWrite()
	if got := c.Stats(); got.Batches-mid.Batches != 1 || got.Packets-mid.Packets != 1 {
		t.Fatalf("after the last UncorkWrite: %d packets in %d calls, want 1 in 1 (written by UncorkWrite itself)",
			got.Packets-mid.Packets, got.Batches-mid.Batches)
	}
	if got := receive(t, rx, 1); got[101] != 1 {
		t.Fatalf("received %v, want packet 101", got)
	}

	// Uncorked again: a lone write is sent by the sender goroutine.
	if _, err := c.WriteToAddrPort(packet(9, 200), to); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, rx, 1); got[9] != 1 {
		t.Fatalf("received %v, want packet 9", got)
	}
}
