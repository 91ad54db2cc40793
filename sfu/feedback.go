package sfu

import (
	"context"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"

	"github.com/ducha-dev/ducha/internal/arrival"
	"github.com/ducha-dev/ducha/internal/twccfb"
)

// feedbackFactory builds, per connection, the interceptor that sends a
// publisher its transport-wide congestion control feedback
// (internal/twccfb), in place of Pion's twcc.SenderInterceptor. The
// publisher's bandwidth estimate (the browser's GCC) reads the arrival
// times in it: taken from the kernel where the socket timed the packet
// (socketTimes), the server's own wait for a CPU and Pion's receive chain
// stay out of them and do not read as congestion on the county's uplink.
type feedbackFactory struct {
	now      func() time.Time
	socket   *socketTimes // nil: arrivals are timed at the read
	interval time.Duration
}

// maxSocketAge bounds how long before the read a socket's timestamp may
// be and still be taken: older means the ring slot is from an earlier lap
// of the sequence numbers, not this packet.
const maxSocketAge = time.Second

func (f feedbackFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	ctx, cancel := context.WithCancel(context.Background())
	return &feedbackInterceptor{f: f, fb: twccfb.New(f.now()), ctx: ctx, cancel: cancel}, nil
}

type feedbackInterceptor struct {
	interceptor.NoOp
	f  feedbackFactory
	fb *twccfb.Feedback

	mu      sync.Mutex // orders BindRTCPWriter against Close
	ctx     context.Context
	cancel  context.CancelFunc
	running bool
	wg      sync.WaitGroup
}

// BindRTCPWriter starts the connection's feedback loop (Pion calls it once
// per connection).
func (i *feedbackInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.running || i.ctx.Err() != nil {
		return w
	}
	i.running = true
	i.wg.Add(1)
	go func() {
		defer i.wg.Done()
		tick := time.NewTicker(i.f.interval)
		defer tick.Stop()
		i.fb.Run(i.ctx, tick.C, func(p []rtcp.Packet) error {
			_, err := w.Write(p, nil)
			return err
		})
	}()
	return w
}

// BindRemoteStream records every packet of a stream that carries the
// negotiated transport-wide sequence number, on the stream's reader.
func (i *feedbackInterceptor) BindRemoteStream(info *interceptor.StreamInfo, rd interceptor.RTPReader) interceptor.RTPReader {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 256 {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return rd
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := rd.Read(b, a)
		if err == nil {
			i.fb.RecordPacket(b[:n], id, i.f.arrivedAt(b[:n]))
		}
		return n, a, err
	})
}

// arrivedAt is when packet pkt reached the server: the socket's timestamp
// if it took one, else now.
func (f feedbackFactory) arrivedAt(pkt []byte) time.Time {
	now := f.now()
	if f.socket == nil {
		return now
	}
	ssrc, seq, ok := arrival.RTP(pkt)
	if !ok {
		return now
	}
	return f.socket.arrivedAt(ssrc, seq, now)
}

// Close stops the feedback loop.
func (i *feedbackInterceptor) Close() error {
	i.mu.Lock()
	i.cancel()
	i.mu.Unlock()
	i.wg.Wait()
	return nil
}
