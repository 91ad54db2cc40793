package udpbatch

import (
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU is the calling OS thread's CPU time, user and system
// (getrusage RUSAGE_THREAD).
func threadCPU(b *testing.B) time.Duration {
	const rusageThread = 1
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKernelSend is what the kernel charges the sending thread per
// 1200-byte datagram written with sendmmsg over loopback, in batches of
// 26, to 40 sockets each read by its own goroutine (a 1-to-40 fan-out:
// the subscribers' sockets, whose delivery on loopback runs in the
// sender's system call). "back-to-back" writes batch after batch;
// "paced" writes a batch every 3 ms (8,700 datagrams a second, a 1.75
// Mbit/s video to 40 viewers), as media leaves an SFU. The figure is the
// sending thread's CPU time (cpu-ns/datagram), which includes the system
// call and everything the kernel does inside it; paced, also the thread's
// sleep and wake between batches, as the SFU's sender parks between them.
//
//	go test -run '^$' -bench KernelSend -benchtime 20000x ./internal/udpbatch/
func BenchmarkKernelSend(b *testing.B) {
	const receivers, perBatch = 40, 26
	var dsts []netip.AddrPort
	for range receivers {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		_ = rx.SetReadBuffer(4 << 20)
		defer rx.Close()
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
			}
		}()
		dsts = append(dsts, rx.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	p := packet(1, 1200)
	for _, mode := range []struct {
		name string
		gap  time.Duration
	}{{"back-to-back", 0}, {"paced", 3 * time.Millisecond}} {
		b.Run(mode.name, func(b *testing.B) {
			tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			s, err := newSender(tx)
			if err != nil {
				b.Fatal(err)
			}
			q := newBatch()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU(b)
			sent, next := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				q.add(p, dsts[next%receivers])
				next++
				if q.n < perBatch {
					continue
				}
				if refused := s.send(q); refused != 0 {
					b.Fatalf("%d datagrams refused", refused)
				}
				sent += q.n
				q.reset()
				if mode.gap > 0 {
					time.Sleep(mode.gap)
				}
			}
			if sent > 0 {
				b.ReportMetric(float64(threadCPU(b)-start)/float64(sent), "cpu-ns/datagram")
			}
		})
	}
}
